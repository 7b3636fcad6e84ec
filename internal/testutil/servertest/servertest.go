// Package servertest starts a real shoal server on a loopback port for tests
// and hands out aws-sdk-go-v2 Kinesis clients pointed at it.
package servertest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/server"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// Endpoint is the server's base URL, http://127.0.0.1:port.
	Endpoint string
	// Config is the configuration the server was started with.
	Config server.Config
}

// Start runs a server with cfg on 127.0.0.1:0. An empty cfg.DataDir becomes a
// temporary directory and a nil cfg.Logger logs through t. The server is shut
// down when the test ends.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &Server{Server: srv, Endpoint: "http://" + ln.Addr().String(), Config: cfg}
}

// Client returns an aws-sdk-go-v2 Kinesis client for endpoint with fake
// static credentials, as a user would configure one for shoal.
//
// Its *http.Client has a one-minute overall Timeout, which would cut a
// SubscribeToShard event stream after a minute; a test whose subscriptions
// may last longer uses StreamingClient.
func Client(endpoint string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return newClient(endpoint, sdkhttp.NewClient(16), optFns) // hides smithy-go's WriteTo; see sdkhttp.NewClient
}

// StreamingClient is Client without the overall HTTP Timeout (see
// sdkhttp.NewStreamingClient): for enhanced fan-out readers, whose event
// streams last up to the server's SubscriptionLifetime. Each call's ctx
// bounds it; the wait for response headers is bounded to a minute.
func StreamingClient(endpoint string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return newClient(endpoint, sdkhttp.NewStreamingClient(16), optFns)
}

func newClient(endpoint string, hc *http.Client, optFns []func(*kinesis.Options)) *kinesis.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		HTTPClient:  hc,
	}
	opts := append([]func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) }}, optFns...)
	return kinesis.NewFromConfig(cfg, opts...)
}

// Client returns a Kinesis client for this server.
func (s *Server) Client(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return Client(s.Endpoint, optFns...)
}

// StreamingClient returns a StreamingClient for this server.
func (s *Server) StreamingClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return StreamingClient(s.Endpoint, optFns...)
}
