package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/consumer"
)

var t0 = time.Date(2024, 1, 2, 9, 30, 0, 0, time.UTC)

func TestWindowStats(t *testing.T) {
	s := newWindowStats(t0, 10*time.Second)
	trades := []Trade{
		{ID: 1, Ticker: "MSFT", Type: Buy, Quantity: 10, Price: 1},
		{ID: 2, Ticker: "AAPL", Type: Buy, Quantity: 500, Price: 2.5},
		{ID: 3, Ticker: "AAPL", Type: Buy, Quantity: 20, Price: 3},
		{ID: 4, Ticker: "MSFT", Type: Buy, Quantity: 500, Price: 4}, // ties #2: the earlier trade stays largest
		{ID: 5, Ticker: "KO", Type: Sell, Quantity: 7, Price: 5},
		{ID: 6, Ticker: "JPM", Type: Sell, Quantity: 9, Price: 6.125},
	}
	for _, tr := range trades {
		if !s.add(tr) {
			t.Fatalf("trade %d not counted", tr.ID)
		}
	}
	if s.add(trades[2]) {
		t.Error("a duplicate of trade 3 was counted")
	}
	// AAPL and MSFT have 2 buys each: the alphabetically first wins; JPM
	// and KO 1 sell each.
	want := "window 2024-01-02 09:30:00 to 09:30:10 UTC: 6 trades\n" +
		"  most popular stock being bought: AAPL, 2 buys\n" +
		"  most popular stock being sold: JPM, 1 sells\n" +
		"  largest buy order: #2 BUY 500 AAPL @ 2.50\n" +
		"  largest sell order: #6 SELL 9 JPM @ 6.12\n"
	if got := s.report(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	empty := newWindowStats(t0, time.Minute).report()
	if !strings.Contains(empty, "being sold: none") || !strings.Contains(empty, "largest buy order: none") {
		t.Errorf("empty window report:\n%s", empty)
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b, c := newGenerator(9, t0, time.Second), newGenerator(9, t0, time.Second), newGenerator(10, t0, time.Second)
	differs := false
	for i := range 100 {
		x, y, z := a.Next(), b.Next(), c.Next()
		if x != y {
			t.Fatalf("trade %d differs for one seed: %+v vs %+v", i, x, y)
		}
		if x != z {
			differs = true
		}
		if x.ID != int64(i) || !x.Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("trade %d has id %d and time %v", i, x.ID, x.Time)
		}
		if x.Quantity < 1 || x.Quantity > maxQuantity || (x.Type != Buy && x.Type != Sell) {
			t.Errorf("trade %d out of range: %+v", i, x)
		}
	}
	if !differs {
		t.Error("seeds 9 and 10 made the same trades")
	}
}

func records(t *testing.T, trades ...Trade) []consumer.Record {
	t.Helper()
	var rs []consumer.Record
	for _, tr := range trades {
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, consumer.Record{PartitionKey: tr.Ticker, Data: b})
	}
	return rs
}

func trade(id int64, sec int) Trade {
	return Trade{ID: id, Ticker: "KO", Type: Buy, Quantity: 1, Time: t0.Add(time.Duration(sec) * time.Second)}
}

// TestAggregatorWatermark checks that a window is reported only once every
// shard has moved past it (plus the lateness), and that late and duplicate
// trades are left out.
func TestAggregatorWatermark(t *testing.T) {
	var out bytes.Buffer
	a := newAggregator(&out, []string{"s0", "s1"}, 10*time.Second, 5*time.Second, 0, zap.NewNop())

	a.add("s0", records(t, trade(0, 1), trade(1, 12), trade(2, 30)))
	if out.Len() != 0 {
		t.Fatalf("reported before shard s1 delivered anything:\n%s", out.String())
	}
	a.add("s1", records(t, trade(3, 2), trade(4, 14)))
	// Watermark: min(30, 14) - 5 = 9 s: window [0,10) may still get trades.
	if out.Len() != 0 {
		t.Fatalf("reported window 0 with the watermark at 9s:\n%s", out.String())
	}
	a.add("s1", records(t, trade(5, 9), trade(3, 2), trade(6, 16)))
	// s1's trade at 9 s arrived out of order but before the report; trade 3
	// is a duplicate. Watermark min(30, 16) - 5 = 11 s: window 0 is done.
	reps := reports(out.String())
	if len(reps) != 1 || !strings.HasPrefix(reps[0], "window 2024-01-02 09:30:00 to 09:30:10 UTC: 3 trades\n") {
		t.Fatalf("after the watermark passed 10s:\n%s", out.String())
	}
	a.add("s1", records(t, trade(7, 5))) // window 0 was reported: late
	a.flush("at shutdown")
	reps = reports(out.String())
	if len(reps) != 3 {
		t.Fatalf("after flush, %d reports:\n%s", len(reps), out.String())
	}
	if !strings.HasPrefix(reps[1], "window 2024-01-02 09:30:10 to 09:30:20 UTC: 3 trades\n") ||
		!strings.HasPrefix(reps[2], "window 2024-01-02 09:30:30 to 09:30:40 UTC: 1 trades\n") ||
		!strings.HasSuffix(reps[2], "  (at shutdown)\n") {
		t.Errorf("flushed reports:\n%s", strings.Join(reps[1:], ""))
	}
	if got, want := a.summary(), "consumed 7 trades in 3 windows; dropped 1 duplicates, 1 late trades, 0 bad records"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}
