package exkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/server"
)

// FallbackDatabaseURL is the database the examples use when neither a flag
// nor DATABASE_URL names one.
const FallbackDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DatabaseURL returns DATABASE_URL, or FallbackDatabaseURL when it is unset.
func DatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return FallbackDatabaseURL
}

// Logger returns a development logger on stderr when verbose, else a no-op
// logger: the examples are quiet by default.
func Logger(verbose bool) *zap.Logger {
	if !verbose {
		return zap.NewNop()
	}
	l, err := zap.NewDevelopment()
	if err != nil {
		return zap.NewNop()
	}
	return l
}

// Client returns an aws-sdk-go-v2 Kinesis client for a shoal server at
// endpoint (http://host:port). Shoal does not check credentials, so any
// static ones do.
func Client(endpoint string) *kinesis.Client {
	return newClient(endpoint, sdkhttp.NewClient(16))
}

// FanOutClient is Client for enhanced fan-out readers: its HTTP client has
// no overall Timeout, which would otherwise cut every SubscribeToShard
// subscription short (see the fanout package's caveats). Each call is still
// bounded by its ctx.
func FanOutClient(endpoint string) *kinesis.Client {
	hc := sdkhttp.NewClient(16)
	hc.Timeout = 0
	return newClient(endpoint, hc)
}

func newClient(endpoint string, hc *http.Client) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("example", "example", ""),
		// sdkhttp's client works around an aws-sdk-go-v2 connection reuse
		// bug (see its doc); any *http.Client works otherwise.
		HTTPClient: hc,
	})
}

// ForgetLeases deletes the leases (and so the checkpoints) of a consumer
// application. An example run on a new embedded server has a new stream,
// whose records an earlier run's checkpoints do not name: left in place
// they would stall its shards (see the consumer package's caveats).
func ForgetLeases(ctx context.Context, store *checkpoint.PGStore, app string) error {
	leases, err := store.ListLeases(ctx, app)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	for _, l := range leases {
		if err := store.DeleteLease(ctx, app, l.ShardID); err != nil {
			return fmt.Errorf("delete lease %s: %w", l.ShardID, err)
		}
	}
	return nil
}

// Server is an embedded shoal server listening on a loopback port.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:port.
	Endpoint string

	srv     *server.Server
	served  chan error
	tempDir string // removed by Stop; "" if the caller gave the data dir
}

// StartServer starts an embedded server on 127.0.0.1 with an OS-chosen
// port. dataDir holds its streams; "" means a new temporary directory,
// removed by Stop. logger may be nil.
func StartServer(dataDir string, logger *zap.Logger) (*Server, error) {
	s := &Server{served: make(chan error, 1)}
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "shoal-example-")
		if err != nil {
			return nil, fmt.Errorf("start server: %w", err)
		}
		dataDir, s.tempDir = dir, dir
	}
	srv, err := server.New(server.Config{DataDir: dataDir, Logger: logger})
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Shutdown(context.Background())
		s.removeTemp()
		return nil, fmt.Errorf("start server: %w", err)
	}
	s.srv, s.Endpoint = srv, "http://"+ln.Addr().String()
	go func() { s.served <- srv.Serve(ln) }()
	return s, nil
}

// Stop shuts the server down, waits for it, and removes its temporary data
// directory if StartServer made one.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	s.removeTemp()
	if err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	return nil
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}

// EnsureStream creates the stream with the given number of shards unless it
// exists, and waits until it is ACTIVE (or ctx ends). An existing stream is
// used as it is, whatever its shard count.
func EnsureStream(ctx context.Context, client *kinesis.Client, name string, shards int32) error {
	_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	for {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for stream %s: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
