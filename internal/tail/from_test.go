package tail_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/tail"
	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
	"github.com/shoalstream/shoal/server"
)

func TestParseFrom(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 89e6, time.UTC)
	for in, want := range map[string]tail.From{
		"LATEST":                        {Kind: tail.Latest},
		"latest":                        {Kind: tail.Latest},
		"TRIM_HORIZON":                  {Kind: tail.TrimHorizon},
		"trim_horizon":                  {Kind: tail.TrimHorizon},
		"2025-03-04T05:06:07.089Z":      {Kind: tail.AtTimestamp, Time: ts},
		"2025-03-04T06:06:07.089+01:00": {Kind: tail.AtTimestamp, Time: ts},
		"49661234567890123456789012345678901234567": {Kind: tail.AtSequence, Sequence: "49661234567890123456789012345678901234567"},
	} {
		got, err := tail.ParseFrom(in)
		if err != nil || got.Kind != want.Kind || !got.Time.Equal(want.Time) || got.Sequence != want.Sequence {
			t.Errorf("ParseFrom(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "now", "AT_TIMESTAMP", "2025-03-04", "-5m", "12a", strings.Repeat("9", 129)} {
		if got, err := tail.ParseFrom(in); err == nil {
			t.Errorf("ParseFrom(%q) = %+v, want an error", in, got)
		}
	}
}

// TestFromLatest prints only what is put after the start, children of a
// later split included.
func TestFromLatest(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	old := e.putRound("s", "old", 3, 0, 5)
	out := newSink()
	r := start(t, tail.Config{Client: e.c, Stream: "s", Format: tail.JSON, Out: out})

	// Records put before Run got its LATEST iterator are not printed: put
	// probes until one is, each waited for a little.
	var probes []put
	for i := 0; len(out.lines()) == 0; i++ {
		if i == 500 {
			t.Fatal("no probe printed")
		}
		probes = append(probes, e.put("s", eighth(1), fmt.Sprintf("probe-%d", i)))
		select {
		case <-out.changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
	first := parseJSON(t, out.lines())[0]
	var want []put
	for i, p := range probes {
		if p.data == string(first.Data) {
			want = probes[i:] // the first probe printed and every later one
		}
	}
	if want == nil {
		t.Fatalf("first line %q is no probe", first.Data)
	}
	want = append(want, e.putRound("s", "new", 3, 0, 5)...)
	e.split("s", "shardId-000000000000", 4)
	want = append(want, e.putRound("s", "child", 3, 0, 5)...)

	out.wait(t, "the records put after the start", hasData(t, want))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	check(t, parseJSON(t, out.lines()), want, e.parents("s"))
	if s := out.String(); strings.Contains(s, old[0].seq) {
		t.Errorf("a record put before the start was printed:\n%s", s)
	}
}

// TestFromTimestamp prints, from every shard, the records that arrived at
// or after the time; the server's clock is the test's.
func TestFromTimestamp(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	clk := fakeclock.New(t0)
	e := newEnv(t, server.Config{Now: clk.Now})
	e.createStream("s", 2)
	e.putRound("s", "early", 3, 0, 2, 5)
	clk.Advance(time.Minute)
	e.split("s", "shardId-000000000000", 2)
	want := e.putRound("s", "late", 3, 0, 2, 5)
	if got := shardsOf(want); len(got) != 3 {
		t.Fatalf("late records in shards %v", got)
	}

	out := newSink()
	r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.AtTimestamp, Time: t0.Add(30 * time.Second)}, Format: tail.JSON, Out: out})
	out.wait(t, "the late records", hasData(t, want))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := parseJSON(t, out.lines())
	check(t, lines, want, e.parents("s"))
	for _, l := range lines {
		if l.Arrival != "2025-03-04T05:07:07.000Z" {
			t.Errorf("%q arrived at %s", l.Data, l.Arrival)
		}
	}
}

// TestFromSequence starts at a record of shard 0 and then reads its
// children, with and without --shard.
func TestFromSequence(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 2)
	rs := e.putRound("s", "r", 6, 1)
	e.putRound("s", "other", 2, 5)
	e.split("s", "shardId-000000000000", 2)
	kids := e.putRound("s", "kid", 2, 0, 3)
	from := tail.From{Kind: tail.AtSequence, Sequence: rs[3].seq}
	want := append(rs[3:], kids...)

	for _, shard := range []string{"", "shardId-000000000000"} {
		t.Run("shard="+shard, func(t *testing.T) {
			out := newSink()
			r := start(t, tail.Config{Client: e.c, Stream: "s", From: from, Shard: shard, Format: tail.JSON, Out: out})
			out.wait(t, "r-3 on", hasData(t, want))
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			check(t, parseJSON(t, out.lines()), want, e.parents("s"))
		})
	}
	t.Run("wrong shard", func(t *testing.T) {
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: from, Shard: "shardId-000000000001", Out: newSink()})
		if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "InvalidArgumentException") {
			t.Fatalf("Run = %v, want InvalidArgumentException", err)
		}
	})
	t.Run("in no shard", func(t *testing.T) {
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.AtSequence, Sequence: "1"}, Out: newSink()})
		if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "no shard of stream s holds sequence number 1") {
			t.Fatalf("Run = %v, want no shard holds it", err)
		}
	})
}

// TestExpiredIterator: a shard iterator that expires (the server's clock
// jumps 6 minutes) is replaced by one after the last record printed.
func TestExpiredIterator(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	e := newEnv(t, server.Config{Now: clk.Now})
	e.createStream("s", 1)
	want := e.putRound("s", "a", 3, 0)
	out, log := newSink(), newSink()
	api := &counting{API: e.c}
	r := start(t, tail.Config{Client: api, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: tail.JSON, Out: out, Log: log})
	out.wait(t, "the first records", hasData(t, want))
	clk.Advance(6 * time.Minute)
	want = append(want, e.putRound("s", "b", 3, 0)...)
	out.wait(t, "the records put after the jump", hasData(t, want))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	check(t, parseJSON(t, out.lines()), want, nil)
	if _, errs := api.snapshot(); errs["ExpiredIteratorException"] == 0 {
		t.Errorf("no iterator expired: %v", errs)
	}
	if !strings.Contains(log.String(), "shard iterator expired") {
		t.Errorf("log: %q", log.String())
	}
}
