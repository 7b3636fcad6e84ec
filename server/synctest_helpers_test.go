package server_test

// A test environment for a testing/synctest bubble, for the tests of what
// the server does on timers (subscription keep-alives and lifetimes, the
// takeover and call-rate windows of SubscribeToShard, auto-split windows).
//
// In a bubble the time package runs on a fake clock that advances only when
// every goroutine of the bubble is durably blocked (see the package doc of
// testing/synctest). A goroutine blocked on a loopback socket is not, so
// the server and its SDK clients talk over in-memory connections
// (net.Pipe), whose reads and writes block on channels of the bubble. A
// test then sleeps through a keep-alive or a window in no real time, and
// what it observes no longer depends on how fast the machine is: time does
// not move while the server is still working on a request.

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// pipeListener is a net.Listener of in-memory connections: each dial hands
// Accept the server's end of a new net.Pipe.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial is the clients' http.Transport.DialContext.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, srv := net.Pipe()
	select {
	case l.conns <- srv:
		return client, nil
	case <-l.closed:
		_, _ = client.Close(), srv.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		_, _ = client.Close(), srv.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "shoal.test:80" }

// readCloserOnly hides a request body's WriteTo, as sdkhttp.NewClient does
// for the loopback clients (smithy-go closes the body once Do returns, and
// net/http would take WriteTo's io.EOF for a failed write).
type readCloserOnly struct{ rc io.ReadCloser }

func (b readCloserOnly) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readCloserOnly) Close() error               { return b.rc.Close() }

type bodyFixTransport struct{ base http.RoundTripper }

func (t bodyFixTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	r2 := new(http.Request)
	*r2 = *req
	r2.Body = readCloserOnly{req.Body}
	return t.base.RoundTrip(r2)
}

// newBubbleEnv starts a server (defaults as newEnv's) on in-memory
// connections and returns an env whose clients reach it through them. It
// must be called inside synctest.Test, and the env's calls made from the
// bubble. e.ctx is t.Context(): it ends before the cleanups run, which
// releases the connections of responses nobody closed (the SDK leaves the
// body of an event-stream operation's error response open), so that every
// goroutine of the bubble can exit.
func newBubbleEnv(t *testing.T, cfg server.Config) *env {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	srv, err := server.New(cfg)
	noErr(t, err, "server.New")
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{DialContext: ln.dial, DisableCompression: true}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		noErr(t, srv.Shutdown(ctx), "Shutdown")
		noErr(t, <-served, "Serve")
		tr.CloseIdleConnections()
	})
	const endpoint = "http://shoal.test"
	hc := &http.Client{Transport: bodyFixTransport{base: tr}}
	newClient := func(optFns ...func(*kinesis.Options)) *kinesis.Client {
		opts := append([]func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) }}, optFns...)
		return kinesis.NewFromConfig(aws.Config{
			Region:      "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
			HTTPClient:  hc,
		}, opts...)
	}
	return &env{
		t:         t,
		srv:       &servertest.Server{Server: srv, Endpoint: endpoint, Config: cfg},
		c:         newClient(),
		nr:        newClient(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }),
		newClient: newClient,
		ctx:       t.Context(),
	}
}
