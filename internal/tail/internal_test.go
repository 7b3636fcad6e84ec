package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestBackoff(t *testing.T) {
	tl := &tailer{cfg: Config{CallInterval: 200 * time.Millisecond, MaxBackoff: time.Second}}
	for fails, want := range []time.Duration{200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			if d := tl.backoff(fails); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", fails, d, want/2, want)
			}
		}
	}
	tl.cfg.CallInterval = 0
	if d := tl.backoff(0); d < minBackoff/2 || d > minBackoff {
		t.Fatalf("backoff(0) without CallInterval = %v", d)
	}
}

func TestCompareSeq(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"009", "9", 0}, {"123", "123", 0}, {"0", "00", 0},
		{"49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899", -1},
	} {
		if got := compareSeq(tc.a, tc.b); got != tc.want {
			t.Errorf("compareSeq(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// shard builds a listed shard; closed shards have an ending sequence number.
func shard(id string, closed bool, parents ...string) types.Shard {
	s := types.Shard{ShardId: aws.String(id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	if closed {
		s.SequenceNumberRange.EndingSequenceNumber = aws.String("2")
	}
	if len(parents) > 0 {
		s.ParentShardId = aws.String(parents[0])
	}
	if len(parents) > 1 {
		s.AdjacentParentShardId = aws.String(parents[1])
	}
	return s
}

// TestAdd checks which shards are followed, from where, and which can be
// read at once, for a listing in which children come first.
//
//	0 -> split -> 2, 3;  3 + 1 -> merge -> 4 (open);  2 open
func TestAdd(t *testing.T) {
	listed := []types.Shard{
		shard("4", false, "3", "1"), shard("3", true, "0"), shard("2", false, "0"),
		shard("1", true), shard("0", true),
	}
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		from  From
		root  string
		want  string // id:start type:status, in id order
		ready string
	}{
		{From{Kind: TrimHorizon}, "", "0:TRIM_HORIZON 1:TRIM_HORIZON 2:TRIM_HORIZON 3:TRIM_HORIZON 4:TRIM_HORIZON", "0 1"},
		{From{Kind: Latest}, "", "0:done 1:done 2:LATEST 3:done 4:LATEST", "2 4"},
		{From{Kind: AtTimestamp, Time: ts}, "", "0:AT_TIMESTAMP 1:AT_TIMESTAMP 2:AT_TIMESTAMP 3:AT_TIMESTAMP 4:AT_TIMESTAMP", "0 1"},
		{From{Kind: TrimHorizon}, "0", "0:TRIM_HORIZON 2:TRIM_HORIZON 3:TRIM_HORIZON 4:TRIM_HORIZON", "0"},
		{From{Kind: TrimHorizon}, "1", "1:TRIM_HORIZON 4:TRIM_HORIZON", "1"},
		{From{Kind: Latest}, "3", "3:done 4:LATEST", "4"},
		{From{Kind: AtSequence, Sequence: "7"}, "0", "0:AT_SEQUENCE_NUMBER 2:TRIM_HORIZON 3:TRIM_HORIZON 4:TRIM_HORIZON", "0"},
	} {
		tl := &tailer{cfg: Config{From: tc.from}, root: tc.root, shards: map[string]*shardState{}}
		tl.add(listed, true)
		got, ready := "", ""
		for _, id := range []string{"0", "1", "2", "3", "4"} {
			s, ok := tl.shards[id]
			if !ok {
				continue
			}
			if s.status == done {
				got += fmt.Sprintf(" %s:done", id)
			} else {
				got += fmt.Sprintf(" %s:%s", id, s.start.typ)
			}
			if s.status == pending && tl.parentsDone(s) {
				ready += " " + id
			}
		}
		if got != " "+tc.want || ready != " "+tc.ready {
			t.Errorf("%v root %q:\n got %s; ready%s\nwant  %s; ready %s", tc.from, tc.root, got, ready, tc.want, tc.ready)
		}
	}
}

// listAPI answers ListShards with shards, or err; other calls are not made.
type listAPI struct {
	API
	shards []types.Shard
	err    error
}

func (l *listAPI) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: l.shards}, l.err
}

// TestChildOfUnknownParent: B ends, reporting C, a merge of B and A2,
// where A2 (a child of A, still being read) is not known yet. C waits for
// a ListShards that shows A2, then for A2 itself.
func TestChildOfUnknownParent(t *testing.T) {
	api := &listAPI{err: errors.New("connection refused")}
	tl := &tailer{cfg: Config{Client: api, Stream: "s", From: From{Kind: TrimHorizon}, Log: io.Discard}, shards: map[string]*shardState{}}
	tl.add([]types.Shard{shard("A", false), shard("B", true)}, true)
	tl.shards["A"].status, tl.shards["B"].status = reading, reading
	children := []types.ChildShard{{ShardId: aws.String("C"), ParentShards: []string{"A2", "B"}}}
	if err := tl.finished(t.Context(), "B", children); err != nil {
		t.Fatal(err)
	}
	if tl.parentsDone(tl.shards["C"]) {
		t.Fatal("C ready while the listing that would show A2 failed")
	}
	api.shards, api.err = []types.Shard{shard("A", true), shard("A1", false, "A"), shard("A2", false, "A"), shard("B", true), shard("C", false, "A2", "B")}, nil
	if err := tl.relist(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tl.parentsDone(tl.shards["C"]) || tl.shards["A2"] == nil || tl.parentsDone(tl.shards["A2"]) {
		t.Fatal("C or A2 ready before A and A2 are read")
	}
	if err := tl.finished(t.Context(), "A", nil); err != nil {
		t.Fatal(err)
	}
	tl.shards["A2"].status = done
	if !tl.parentsDone(tl.shards["C"]) {
		t.Fatal("C not ready once A2 and B are read")
	}
	// A merge whose other parent is gone (not listed) does not wait for it.
	if err := tl.finished(t.Context(), "C", []types.ChildShard{{ShardId: aws.String("D"), ParentShards: []string{"C", "gone"}}}); err != nil {
		t.Fatal(err)
	}
	if !tl.parentsDone(tl.shards["D"]) {
		t.Fatal("D waits for a parent that is not listed")
	}
}
