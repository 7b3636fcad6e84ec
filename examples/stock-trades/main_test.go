package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// expectedReports computes, straight from the generator, the report of
// every window of the first n trades, in time order.
func expectedReports(cfg config, n int) []string {
	gen := newGenerator(cfg.Seed, cfg.Start, cfg.Tick)
	byWindow := map[time.Time]*windowStats{}
	for range n {
		t := gen.Next()
		w := windowOf(t.Time, cfg.Window)
		if byWindow[w] == nil {
			byWindow[w] = newWindowStats(w, cfg.Window)
		}
		byWindow[w].add(t)
	}
	var reps []string
	for _, w := range slices.SortedFunc(func(yield func(time.Time) bool) {
		for w := range byWindow {
			if !yield(w) {
				return
			}
		}
	}, time.Time.Compare) {
		reps = append(reps, byWindow[w].report())
	}
	return reps
}

// reports returns the window reports in out, each with its indented lines.
func reports(out string) []string {
	var reps []string
	for line := range strings.Lines(out) {
		switch {
		case strings.HasPrefix(line, "window "):
			reps = append(reps, line)
		case strings.HasPrefix(line, "  ") && len(reps) > 0:
			reps[len(reps)-1] += line
		}
	}
	return reps
}

func baseConfig(t *testing.T) config {
	_, schema := pgtest.New(t)
	return config{
		Mode:        modeBoth,
		DatabaseURL: pgtest.URL(),
		Schema:      schema,
		Table:       "stock_trades_leases",
		Stream:      "stock-trades",
		Shards:      2,
		Application: "stock-trades-test",
		Seed:        42,
		Start:       time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC),
		Tick:        100 * time.Millisecond,
		Window:      10 * time.Second,
		Lateness:    10 * time.Second,
		Timeout:     60 * time.Second,
	}
}

// TestBoth puts trades at a steady rate while the consumer reads them, and
// checks that every window's report is exactly the one computed from the
// generated trades: no trade lost, counted twice or put in the wrong window.
func TestBoth(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Trades = 600 // six windows of 100 trades
	cfg.Rate = 400   // over 1.5 s, so that windows are reported while trades still arrive

	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	got, want := reports(out.String()), expectedReports(cfg, cfg.Trades)
	if len(want) != 6 {
		t.Fatalf("the generator made %d windows, want 6", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("reports differ\ngot:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	for _, line := range []string{
		"produced 600 trades (0 failed) to stream stock-trades",
		"consumed 600 trades in 6 windows; dropped 0 duplicates, 0 late trades, 0 bad records",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

// TestProduceThenConsume runs the two halves as separate programs against
// one server, as the tutorial does. The consumer reports the windows that
// the watermark closes, then the last one, marked incomplete, when it is
// stopped.
func TestProduceThenConsume(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	cfg := baseConfig(t)
	cfg.Endpoint = srv.Endpoint
	cfg.Trades = 300
	cfg.Timeout = 0
	cfg.Lateness = 0

	cfg.Mode = modeProduce
	var pout bytes.Buffer
	if err := run(context.Background(), cfg, &pout); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if want := "produced 300 trades (0 failed) to stream stock-trades\n"; pout.String() != want {
		t.Errorf("produce printed %q, want %q", pout.String(), want)
	}

	cfg.Mode = modeConsume
	want := expectedReports(cfg, cfg.Trades)
	if len(want) != 3 {
		t.Fatalf("the generator made %d windows, want 3", len(want))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out exkit.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()
	// Each shard's last trade is in the last window, 09:30:20 to 09:30:30,
	// so without lateness the watermark passes 09:30:20: the first two
	// windows are complete, the third is not.
	wait.Eventually(t, 30*time.Second, func() error {
		if n := len(reports(out.String())); n < 2 {
			return fmt.Errorf("%d windows reported so far", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consume: %v", err)
	}
	got := reports(out.String())
	want[2] += "  (at shutdown: may be incomplete)\n"
	if !slices.Equal(got, want) {
		t.Errorf("reports differ\ngot:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	if line := "consumed 300 trades in 3 windows"; !strings.Contains(out.String(), line) {
		t.Errorf("output lacks %q:\n%s", line, out.String())
	}
}

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-mode", "both", "-trades", "50", "-seed", "7", "-start", "2025-03-04T10:00:00Z"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trades != 50 || cfg.Seed != 7 || !cfg.Start.Equal(time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("flags not applied: %+v", cfg)
	}
	for _, args := range [][]string{
		{"-mode", "produce"},              // needs -endpoint
		{"-mode", "both", "-trades", "0"}, // would never stop
		{"-mode", "sideways"},
		{"-window", "0"},
		{"-start", "yesterday"},
	} {
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
