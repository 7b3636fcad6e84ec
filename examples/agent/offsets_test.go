package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

// savedOffset returns the offset the state file holds for path, or -1.
func savedOffset(t *testing.T, stateFile, path string) int64 {
	t.Helper()
	st, err := loadState(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st {
		if f.Path == path {
			return f.Offset
		}
	}
	return -1
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestOffsetsOnlyAfterAck drives the agent's loop by hand: lines read while
// the server is down are in flight, and the saved offset stays before them;
// an agent that then crashes (its producer abandoned) loses nothing, since
// its successor reads them again from the saved offset. A last line without
// its newline is not shipped until the newline comes.
func TestOffsetsOnlyAfterAck(t *testing.T) {
	srv := servertest.StartRestartable(t, server.Config{})
	client := srv.Client()
	ctx := context.Background()
	if err := exkit.EnsureStream(ctx, client, "logs", 1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	cfg := config{
		Stream: "logs", Globs: []string{path}, StateFile: filepath.Join(dir, "state.json"),
		KeyMode: keyFile, Poll: 10 * time.Millisecond, MaxLineBytes: 1024, StopTimeout: 10 * time.Second,
	}
	newAgentT := func() (*agent, *producer.Producer) {
		p, err := producer.New(client, producer.Config{
			StreamName: "logs", MaxBufferedTime: 5 * time.Millisecond,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		a, err := newAgent(cfg, p, io.Discard, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return a, p
	}
	pollUntilSaved := func(a *agent, want int64) {
		t.Helper()
		wait.Eventually(t, 30*time.Second, func() error {
			if err := a.poll(ctx); err != nil {
				t.Fatalf("poll: %v", err)
			}
			if got := savedOffset(t, cfg.StateFile, path); got != want {
				return errorf("saved offset %d, want %d", got, want)
			}
			return nil
		})
	}

	appendLines(t, path, "x", 0, 10)
	a1, p1 := newAgentT()
	pollUntilSaved(a1, size(t, path))
	acked := size(t, path)

	srv.Stop()
	appendLines(t, path, "x", 10, 20)
	for range 10 {
		if err := a1.poll(ctx); err != nil {
			t.Fatalf("poll: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := a1.files[a1.sorted()[0].id].read; got != size(t, path) {
		t.Fatalf("agent read to %d, want %d (the lines should be in flight)", got, size(t, path))
	}
	// Save now, as an acknowledgement of another file's lines would make
	// the agent do: the offset must stay before the lines in flight.
	if err := a1.save(); err != nil {
		t.Fatal(err)
	}
	if got := savedOffset(t, cfg.StateFile, path); got != acked {
		t.Fatalf("saved offset %d while the server was down, want %d: lines not acknowledged were saved", got, acked)
	}

	// Crash: the producer is abandoned with its lines unsent.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = p1.Close(cancelled)
	a1.closeFiles()

	srv.Start()
	a2, p2 := newAgentT()
	pollUntilSaved(a2, size(t, path))

	// A line without its newline waits.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := f.WriteString("x 20"); err != nil {
		t.Fatal(err)
	}
	complete := size(t, path) - int64(len("x 20"))
	for range 5 {
		if err := a2.poll(ctx); err != nil {
			t.Fatalf("poll: %v", err)
		}
	}
	if err := a2.stop(); err != nil {
		t.Fatal(err)
	}
	if got := savedOffset(t, cfg.StateFile, path); got != complete {
		t.Fatalf("saved offset %d with an incomplete last line, want %d", got, complete)
	}
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	pollUntilSaved(a2, size(t, path))
	if err := a2.stop(); err != nil {
		t.Fatal(err)
	}
	a2.closeFiles()
	if err := p2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	lines, err := readStream(ctx, client, "logs")
	if err != nil {
		t.Fatal(err)
	}
	if err := check(lines, []expectation{{"x", "app.log", 21}}); err != nil {
		t.Error(err)
	}
}

// TestRandomKeys ships with a random partition key per line: every line
// arrives once, spread over the shards.
func TestRandomKeys(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "r.log")
	appendLines(t, path, "r", 0, 100)
	cfg := config{
		Endpoint: srv.Endpoint, Stream: "logs", Shards: 2, Globs: []string{path},
		StateFile: filepath.Join(dir, "state.json"), KeyMode: keyRandom,
		Poll: 10 * time.Millisecond, MaxLineBytes: 1024, StopTimeout: 10 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, io.Discard) }()
	wait.Eventually(t, 30*time.Second, func() error {
		if got := savedOffset(t, cfg.StateFile, path); got != size(t, path) {
			return errorf("saved offset %d", got)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines, err := readStream(context.Background(), srv.Client(), "logs")
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	keys := map[string]bool{}
	for _, l := range lines {
		data = append(data, l.data)
		keys[l.key] = true
	}
	slices.SortFunc(data, func(x, y string) int { return strings.Compare(x, y) })
	var want []string
	for i := range 100 {
		want = append(want, "r "+itoa(i))
	}
	slices.Sort(want)
	if !slices.Equal(data, want) {
		t.Errorf("lines read back (sorted):\n%v\nwant:\n%v", data, want)
	}
	if len(keys) < 90 {
		t.Errorf("%d distinct partition keys for 100 lines; want random keys", len(keys))
	}
}
