package server_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoalstream/shoal/server"
)

// A client connection that never sends a request must not hold Shutdown up:
// net/http alone would wait until it is five seconds old.
func TestShutdownClosesIdleNewConnections(t *testing.T) {
	srv, err := server.New(server.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// One request makes sure Serve runs; then a connection that stays silent.
	resp, err := http.Post("http://"+ln.Addr().String(), "application/x-amz-json-1.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	time.Sleep(50 * time.Millisecond) // let the server accept it (not an assertion)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Shutdown took %v with a silent connection open", took)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
