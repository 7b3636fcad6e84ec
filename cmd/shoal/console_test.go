package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

// TestAdminConsole: the admin listener serves the console at /console/
// (and redirects /console there) beside /metrics; stopping it closes the
// console.
func TestAdminConsole(t *testing.T) {
	t.Parallel()
	registry, prom := newMetrics()
	hist := console.NewHistory(nil)
	srv := servertest.Start(t, server.Config{Metrics: server.TeeMetrics(prom, hist)})
	// A call over loopback: servertest's Shutdown must find it serving.
	if _, err := srv.Client().ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{Server: srv.Server, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	stop, bound, err := serveAdmin("127.0.0.1:0", true, registry, srv.Server, con, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := "http://" + bound.String()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	if code, h, _ := get("/console"); code != http.StatusMovedPermanently || h.Get("Location") != "/console/" {
		t.Errorf("/console: %d %q", code, h.Get("Location"))
	}
	if code, h, body := get("/console/"); code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") {
		t.Errorf("/console/: %d %s", code, h.Get("Content-Type"))
	}
	if code, _, body := get("/console/api/session"); code != http.StatusOK || !strings.Contains(body, `"history":true`) {
		t.Errorf("/console/api/session: %d %s", code, body)
	}
	if code, _, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d", code)
	}
	stop()
	if err := con.Close(); err != nil { // closed by stop already: a no-op
		t.Errorf("second Close: %v", err)
	}
}

// TestConsoleFlags: --lease-database-url, from the command line, the
// environment or the config file, reaches the console (a URL that does not
// parse stops the start, without repeating it).
func TestConsoleFlags(t *testing.T) {
	bad := "postgres://user:hunter2@[bad"
	base := []string{"--storage", "memory", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}
	for name, args := range map[string][]string{
		"flag":   {"--lease-database-url", bad},
		"config": {"--config", writeFile(t, `{"lease-database-url": "`+bad+`", "lease-table": "leases"}`)},
	} {
		err := runServer(context.Background(), append(base, args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--console") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v; want a --console error without the URL", name, err)
		}
	}
	t.Setenv("SHOAL_LEASE_DATABASE_URL", bad)
	if err := runServer(context.Background(), base, io.Discard); err == nil || !strings.Contains(err.Error(), "--console") {
		t.Errorf("environment: %v; want a --console error", err)
	}
}
