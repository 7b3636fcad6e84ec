package tail_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/tail"
	"github.com/shoalstream/shoal/server"
)

// check asserts that lines hold exactly the records of want, each once,
// with the shard and sequence number Kinesis gave it, in order within each
// shard, and every shard's lines after all of its parents' lines. It
// returns the shards printed, in the order of their first line.
func check(t *testing.T, lines []jsonLine, want []put, parents map[string][]string) []string {
	t.Helper()
	byData := map[string]put{}
	for _, p := range want {
		byData[p.data] = p
	}
	seen := map[string]int{}
	first, last := map[string]int{}, map[string]int{}
	var order []string
	lastSeq := map[string]string{}
	for i, l := range lines {
		d := string(l.Data)
		p, ok := byData[d]
		switch {
		case !ok:
			t.Errorf("line %d: record %q was not expected", i, d)
			continue
		case seen[d] > 0:
			t.Errorf("line %d: record %q printed again", i, d)
		case l.ShardID != p.shard || l.SequenceNumber != p.seq:
			t.Errorf("line %d: record %q at %s %s, put at %s %s", i, d, l.ShardID, l.SequenceNumber, p.shard, p.seq)
		}
		seen[d]++
		if prev, ok := lastSeq[l.ShardID]; ok && !seqLess(prev, l.SequenceNumber) {
			t.Errorf("line %d: %s: sequence number %s after %s", i, l.ShardID, l.SequenceNumber, prev)
		}
		lastSeq[l.ShardID] = l.SequenceNumber
		if _, ok := first[l.ShardID]; !ok {
			first[l.ShardID] = i
			order = append(order, l.ShardID)
		}
		last[l.ShardID] = i
	}
	for _, p := range want {
		if seen[p.data] == 0 {
			t.Errorf("record %q (%s) not printed", p.data, p.shard)
		}
	}
	for child, ps := range parents {
		for _, p := range ps {
			if _, ok := first[child]; !ok {
				continue
			}
			if l, ok := last[p]; ok && l > first[child] {
				t.Errorf("child %s printed from line %d, before its parent %s ended at line %d", child, first[child], p, l)
			}
		}
	}
	return order
}

// seqLess compares decimal sequence numbers.
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func shardsOf(ps []put) []string {
	var ids []string
	for _, p := range ps {
		if !slices.Contains(ids, p.shard) {
			ids = append(ids, p.shard)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestReshards follows a stream from TRIM_HORIZON while it is split and
// merged, with records put before, between and after the reshards: every
// record once, in order, parents first.
//
//	shard 0 [eighths 0-3] -> split at 2 -> shard 2 [0-1], shard 3 [2-3]
//	shard 1 [eighths 4-7] -> merged with shard 3 -> shard 4 [2-7]
func TestReshards(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 2)
	want := e.putRound("s", "before", 5, 0, 2, 5)

	out := newSink()
	r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: tail.JSON, Out: out})
	out.wait(t, "the records put before", hasData(t, want))

	want = append(want, e.putRound("s", "during", 5, 0, 2, 5)...)
	e.split("s", "shardId-000000000000", 2)
	want = append(want, e.putRound("s", "split", 5, 0, 2, 5)...)
	e.merge("s", "shardId-000000000003", "shardId-000000000001")
	want = append(want, e.putRound("s", "after", 5, 0, 2, 5)...)
	if got := shardsOf(want); !slices.Equal(got, []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003", "shardId-000000000004"}) {
		t.Fatalf("records went to shards %v", got)
	}

	lines := out.wait(t, "every record", hasData(t, want))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines = append(lines, out.lines()[len(lines):]...) // anything printed before the stop
	check(t, parseJSON(t, lines), want, e.parents("s"))
}

// reshardedStream makes the stream of TestReshards, resharded before the
// tail starts, and returns the records put, 3 per eighth 0, 2, 5 and
// stage.
func reshardedStream(e *env) []put {
	e.createStream("s", 2)
	want := e.putRound("s", "before", 3, 0, 2, 5)
	e.split("s", "shardId-000000000000", 2)
	want = append(want, e.putRound("s", "split", 3, 0, 2, 5)...)
	e.merge("s", "shardId-000000000003", "shardId-000000000001")
	return append(want, e.putRound("s", "after", 3, 0, 2, 5)...)
}

func only(ps []put, shards ...string) []put {
	return slices.DeleteFunc(slices.Clone(ps), func(p put) bool { return !slices.Contains(shards, p.shard) })
}

// TestShard follows one shard and its descendants only.
func TestShard(t *testing.T) {
	e := newEnv(t, server.Config{})
	all := reshardedStream(e)
	parents := e.parents("s")
	for _, tc := range []struct {
		shard  string
		follow []string
	}{
		{"shardId-000000000000", []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000003", "shardId-000000000004"}},
		// Shard 4 is a child of 1 and 3: it waits only for 1.
		{"shardId-000000000001", []string{"shardId-000000000001", "shardId-000000000004"}},
		{"shardId-000000000003", []string{"shardId-000000000003", "shardId-000000000004"}},
	} {
		t.Run(tc.shard, func(t *testing.T) {
			want := only(all, tc.follow...)
			out := newSink()
			r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Shard: tc.shard, Format: tail.JSON, Out: out})
			out.wait(t, "the subtree's records", hasData(t, want))
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			order := check(t, parseJSON(t, out.lines()), want, parents)
			if order[0] != tc.shard {
				t.Errorf("first shard printed %s, want %s", order[0], tc.shard)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		r := start(t, tail.Config{Client: e.c, Stream: "s", Shard: "shardId-000000000099", Out: newSink()})
		if err := r.wait(t); err == nil || !strings.Contains(err.Error(), "no shard shardId-000000000099") {
			t.Fatalf("Run = %v, want no such shard", err)
		}
	})
}
