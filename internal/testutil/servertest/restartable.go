package servertest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/server"
)

// Restartable is a test server that can be stopped and started again on
// the same address and data directory, as a crash-free restart of the
// shoal binary would.
type Restartable struct {
	t    testing.TB
	cfg  server.Config
	mu   sync.Mutex // guards the fields below
	addr string
	srv  *server.Server
	done chan error
}

// StartRestartable runs a server with cfg on 127.0.0.1:0 (defaults as
// Start) and stops it when the test ends.
func StartRestartable(t testing.TB, cfg server.Config) *Restartable {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	r := &Restartable{t: t, cfg: cfg, addr: "127.0.0.1:0"}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server on its address (the first start picks a free
// port), retrying while the old listener's port is still in use.
func (r *Restartable) Start() {
	r.t.Helper()
	srv, err := server.New(r.cfg)
	if err != nil {
		r.t.Fatalf("server.New: %v", err)
	}
	r.mu.Lock()
	addr := r.addr
	r.mu.Unlock()
	var ln net.Listener
	for i := 0; ; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if i > 200 {
			r.t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	r.mu.Lock()
	r.srv, r.done, r.addr = srv, done, ln.Addr().String()
	r.mu.Unlock()
}

// Stop shuts the server down gracefully; a stopped server stays stopped
// until Start. Stop is a no-op when the server is not running.
func (r *Restartable) Stop() {
	r.mu.Lock()
	srv, done := r.srv, r.done
	r.srv = nil
	r.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		r.t.Errorf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		r.t.Errorf("serve: %v", err)
	}
}

// Restart stops the server and starts it again on the same address.
func (r *Restartable) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

// Endpoint returns the server's base URL.
func (r *Restartable) Endpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://" + r.addr
}

// Client returns a Kinesis client for the server; it keeps working across
// restarts.
func (r *Restartable) Client(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return Client(r.Endpoint(), optFns...)
}

// StreamingClient returns a StreamingClient for the server; it keeps
// working across restarts.
func (r *Restartable) StreamingClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return StreamingClient(r.Endpoint(), optFns...)
}
