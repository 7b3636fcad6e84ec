package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/checkpoint"
)

// fakeKinesis is a narrow in-memory Kinesis for the resharding paths,
// which the shoal server cannot produce yet: closed shards end with
// ChildShards, and ListShards reports parents.
type fakeKinesis struct {
	mu     sync.Mutex // guards the following
	shards []*fakeShard
	// hideChildren keeps shards with parents out of ListShards, so that
	// only the parents' SHARD_END path (ChildShards) creates their leases.
	hideChildren bool
}

type fakeShard struct {
	id       string
	parents  []string
	start    string
	end      string
	closed   bool
	records  []types.Record
	children []string
	trimmed  bool // gone from ListShards: its records expired
}

// addShard adds a shard with n records whose data is prefix0..prefixN-1.
func (f *fakeKinesis) addShard(id string, parents []string, start, end string, closed bool, n int, prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeShard{id: id, parents: parents, start: start, end: end, closed: closed}
	idx := len(f.shards)
	for i := range n {
		s.records = append(s.records, types.Record{
			SequenceNumber: aws.String(strconv.Itoa((idx+1)*1000 + i)),
			PartitionKey:   aws.String("k"), Data: []byte(fmt.Sprintf("%s%d", prefix, i)),
			ApproximateArrivalTimestamp: aws.Time(time.Unix(1000, 0)),
		})
	}
	for _, p := range parents {
		for _, ps := range f.shards {
			if ps.id == p {
				ps.children = append(ps.children, id)
			}
		}
	}
	f.shards = append(f.shards, s)
}

func (f *fakeKinesis) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

// ListShards pages two shards at a time, as Kinesis pages (at most 1000).
func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from := 0
	if in.NextToken != nil {
		if in.StreamName != nil || in.StreamARN != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("NextToken with StreamName")}
		}
		from, _ = strconv.Atoi(*in.NextToken)
	}
	out := &kinesis.ListShardsOutput{}
	for i, s := range f.shards {
		if i < from || s.trimmed || (f.hideChildren && len(s.parents) > 0) {
			continue
		}
		if len(out.Shards) == 2 {
			out.NextToken = aws.String(strconv.Itoa(i))
			break
		}
		sh := types.Shard{
			ShardId:             aws.String(s.id),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(s.start), EndingHashKey: aws.String(s.end)},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String("999999")
		}
		if len(s.parents) > 0 {
			sh.ParentShardId = aws.String(s.parents[0])
		}
		if len(s.parents) > 1 {
			sh.AdjacentParentShardId = aws.String(s.parents[1])
		}
		out.Shards = append(out.Shards, sh)
	}
	return out, nil
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	pos := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		pos = len(s.records)
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		i := slices.IndexFunc(s.records, func(r types.Record) bool { return *r.SequenceNumber == aws.ToString(in.StartingSequenceNumber) })
		if i < 0 {
			return nil, &types.InvalidArgumentException{Message: aws.String("bad sequence number")}
		}
		pos = i
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
			pos++
		}
	default:
		return nil, &types.InvalidArgumentException{Message: aws.String("unsupported")}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s|%d", s.id, pos))}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, p, _ := strings.Cut(aws.ToString(in.ShardIterator), "|")
	pos, err := strconv.Atoi(p)
	s := f.shard(id)
	if err != nil || s == nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator")}
	}
	n := min(len(s.records)-pos, int(aws.ToInt32(in.Limit)), 3) // small batches
	out := &kinesis.GetRecordsOutput{Records: slices.Clone(s.records[pos : pos+n]), MillisBehindLatest: aws.Int64(0)}
	pos += n
	if s.closed && pos == len(s.records) {
		for _, c := range s.children {
			cs := f.shard(c)
			out.ChildShards = append(out.ChildShards, types.ChildShard{
				ShardId: aws.String(c), ParentShards: slices.Clone(cs.parents),
				HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(cs.start), EndingHashKey: aws.String(cs.end)},
			})
		}
		return out, nil // no NextShardIterator: the shard ended
	}
	out.NextShardIterator = aws.String(fmt.Sprintf("%s|%d", s.id, pos))
	return out, nil
}

// reshardedStream: s0 split into s2 and s3; then s3 merged with s1 into
// s4. s0, s1 and s3 are closed.
func reshardedStream(hide bool) *fakeKinesis {
	f := &fakeKinesis{hideChildren: hide}
	f.addShard("shardId-000000000000", nil, "0", "99", true, 5, "a")
	f.addShard("shardId-000000000001", nil, "100", "199", true, 7, "b")
	f.addShard("shardId-000000000002", []string{"shardId-000000000000"}, "0", "49", false, 4, "c")
	f.addShard("shardId-000000000003", []string{"shardId-000000000000"}, "50", "99", true, 4, "d")
	f.addShard("shardId-000000000004", []string{"shardId-000000000001", "shardId-000000000003"}, "50", "199", false, 4, "e")
	return f
}

// TestReshardChildrenAfterParents runs a worker on a split and a merge,
// with the children listed by ListShards (leases from the shard sync) or
// not (leases created by the parents at SHARD_END), and checks that each
// child starts only after all its parents were checkpointed at SHARD_END,
// that every record is processed once, and that finished leases are left
// at SHARD_END, unowned.
func TestReshardChildrenAfterParents(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("children listed %v", !hide), func(t *testing.T) {
			e := newEnv(t, envOptions{shards: 1})
			f := reshardedStream(hide)
			// The rule itself, checked when each child starts: its parents'
			// leases are at SHARD_END in the table.
			var mu sync.Mutex
			var violations []string
			onInit := func(in InitializeInput) {
				for _, p := range in.ParentShardIDs {
					l, err := e.store.GetLease(context.Background(), testApp, p)
					if err != nil || !l.Checkpoint.IsShardEnd() {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("%s started with parent %s at %s (%v)", in.ShardID, p, l.Checkpoint, err))
						mu.Unlock()
					}
				}
			}
			r := e.startWorkerWith("w", workerOptions{client: f, mod: func(c *Config) { c.ShardSyncInterval = time.Hour },
				factory: e.ledger.factory("w", procOptions{checkpointEvery: true, onInit: onInit})})
			eventually(t, 20*time.Second, func() error {
				if n := e.ledger.seen(); n != 24 {
					return fmt.Errorf("%d of 24 records", n)
				}
				return nil
			})
			if !hide {
				// s0 leaves the stream (its records expired); a sync deletes
				// its lease, which was at SHARD_END, and no other.
				f.mu.Lock()
				f.shards[0].trimmed = true
				f.mu.Unlock()
				r.w.requestSync()
				eventually(t, 10*time.Second, func() error {
					_, err := e.store.GetLease(context.Background(), testApp, f.shards[0].id)
					if !errors.Is(err, checkpoint.ErrNotFound) {
						return fmt.Errorf("lease of trimmed shard: %v", err)
					}
					return nil
				})
				f.mu.Lock()
				f.shards[0].trimmed = false // for the checks below
				f.mu.Unlock()
			}
			// A parent's children are recorded in its lease by a write of
			// their own after its SHARD_END checkpoint: wait for them
			// before stopping the worker (under load the stop could come
			// first; a later worker's shard sync would then record them).
			eventually(t, 10*time.Second, func() error {
				for _, s := range f.shards {
					if !s.closed || s.id == f.shards[0].id && !hide {
						continue
					}
					par, err := e.store.GetLease(context.Background(), testApp, s.id)
					if err != nil || !slices.Equal(par.ChildShardIDs, s.children) {
						return fmt.Errorf("%s: recorded children %v, want %v (%v)", s.id, par.ChildShardIDs, s.children, err)
					}
				}
				return nil
			})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			for _, v := range violations {
				t.Error(v)
			}
			mu.Unlock()
			ds, evs := e.ledger.snapshot()
			if len(ds) != 24 {
				t.Errorf("%d deliveries of 24 records", len(ds))
			}
			// In the ledger's order (one lock, so one sequence): each
			// child's first Initialize comes after its parents' ShardEnded
			// began, and each parent's ShardEnded checkpointed (the
			// onInit check above says the checkpoint was in the table
			// before the child started; the ledger notes "ended" only
			// after that checkpoint returned, which may be after the child
			// started, so "ending" is the event to order by).
			endingAt, startedAt := map[string]int{}, map[string]int{}
			ended := map[string]bool{}
			for i, ev := range evs {
				switch ev.kind {
				case "ending":
					if _, ok := endingAt[ev.shard]; !ok {
						endingAt[ev.shard] = i
					}
				case "ended":
					ended[ev.shard] = true
				case "init":
					if _, ok := startedAt[ev.shard]; !ok {
						startedAt[ev.shard] = i
					}
				}
			}
			for _, s := range f.shards {
				for _, p := range s.parents {
					e, eok := endingAt[p]
					st, sok := startedAt[s.id]
					if !eok || !sok || !ended[p] || st < e {
						t.Errorf("%s started at ledger event %d (%v), its parent %s's ShardEnded began at %d (%v), checkpointed %v", s.id, st, sok, p, e, eok, ended[p])
					}
				}
				if s.id == f.shards[0].id && !hide {
					continue // deleted
				}
				l := e.lease(s.id)
				if !slices.Equal(l.ParentShardIDs, s.parents) || l.StartingHashKey != s.start || l.EndingHashKey != s.end {
					t.Errorf("%s: lease parents %v range %s-%s", s.id, l.ParentShardIDs, l.StartingHashKey, l.EndingHashKey)
				}
				if s.closed && (!l.Checkpoint.IsShardEnd() || l.Owner != "") {
					t.Errorf("%s: checkpoint %s owner %q", s.id, l.Checkpoint, l.Owner)
				}
				if s.closed && !(s.id == f.shards[0].id && !hide) {
					par, err := e.store.GetLease(context.Background(), testApp, s.id)
					if err != nil || !slices.Equal(par.ChildShardIDs, s.children) {
						t.Errorf("%s: recorded children %v, want %v (%v)", s.id, par.ChildShardIDs, s.children, err)
					}
				}
			}
			e.ledger.checkOrder(t)
		})
	}
}

// TestShardEndedMustCheckpoint: a processor whose ShardEnded does not
// checkpoint is called again, and the children wait until it does.
func TestShardEndedMustCheckpoint(t *testing.T) {
	e := newEnv(t, envOptions{shards: 1})
	f := &fakeKinesis{}
	f.addShard("shardId-000000000000", nil, "0", "99", true, 2, "a")
	f.addShard("shardId-000000000001", []string{"shardId-000000000000"}, "0", "99", false, 2, "c")
	var mu sync.Mutex
	calls := 0
	factory := func(shard string) Processor {
		return &endProc{ledgerProc: ledgerProc{l: e.ledger, shard: shard, o: procOptions{checkpointEvery: true}}, onEnd: func(ctx context.Context, in ShardEndedInput) error {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n < 3 {
				return nil // forgets to checkpoint
			}
			return in.Checkpointer.Checkpoint(ctx)
		}}
	}
	r := e.startWorkerWith("w", workerOptions{client: f, factory: factory})
	eventually(t, 20*time.Second, func() error {
		if n := e.ledger.seen(); n != 4 {
			return fmt.Errorf("%d of 4 records", n)
		}
		return nil
	})
	mu.Lock()
	if calls != 3 {
		t.Errorf("ShardEnded called %d times, want 3", calls)
	}
	mu.Unlock()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// A SHARD_END checkpoint anywhere else is refused.
	sc := &shardConsumer{w: r.w, shard: "x", lease: &leaseState{w: r.w, shard: "x"}}
	err := (&Checkpointer{sc: sc}).CheckpointAt(context.Background(), checkpoint.ShardEnd, 0)
	if !errors.Is(err, ErrShardNotEnded) {
		t.Errorf("SHARD_END outside ShardEnded: %v", err)
	}
}

type endProc struct {
	ledgerProc
	onEnd func(context.Context, ShardEndedInput) error
}

func (p *endProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return p.onEnd(ctx, in)
}
