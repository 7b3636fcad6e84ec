package checkpointtest

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Invariants under concurrent workers.

// testConcurrentInvariants lets 8 workers, each with its own Store, race for
// 3 seconds to take, renew, checkpoint and release the same 4 leases with
// random moves, some of them deliberately with stale copies, and then checks
// the history the successful calls returned:
//   - every change moved a lease's counter by exactly one, and no counter
//     value was produced twice (so no two workers ever owned a lease at the
//     same counter), with no gap (so every change is accounted for);
//   - renewals, checkpoints and releases succeeded only for the worker that
//     owned the lease at the counter they presented;
//   - checkpoints, in commit (counter) order, never moved backwards, and a
//     rejected one was indeed behind;
//   - every checkpoint presented with a superseded counter was rejected with
//     ErrLeaseLost.
func testConcurrentInvariants(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	const (
		workers  = 8
		shards   = 4
		duration = 3 * time.Second
	)
	ctx := testCtx(t)
	stores := make([]checkpoint.Store, workers)
	for i := range stores {
		stores[i] = newStore(t)
	}
	shardIDs := make([]string, shards)
	for i := range shardIDs {
		shardIDs[i] = fmt.Sprintf("shardId-%012d", i)
		mustCreate(t, stores[0], checkpoint.Lease{Application: app, ShardID: shardIDs[i]})
	}

	type op struct {
		kind     string // take, renew, checkpoint, release
		owner    string
		expected int64 // counter presented
		result   int64 // counter returned
		cp       checkpoint.Checkpoint
	}
	var (
		mu                                    sync.Mutex
		history                               = map[string][]op{}
		staleTried, backwards, lostTaken, ops int
	)
	record := func(shard string, o op) {
		mu.Lock()
		defer mu.Unlock()
		history[shard] = append(history[shard], o)
	}
	base := new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil) // 39-digit sequence numbers
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s, me := stores[w], fmt.Sprintf("worker-%d", w)
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			held := map[string]checkpoint.Lease{}  // my latest copy of each lease I hold
			stale := map[string]checkpoint.Lease{} // an older copy, superseded
			hold := func(shard string, l checkpoint.Lease) {
				if old, ok := held[shard]; ok {
					stale[shard] = old
				}
				held[shard] = l
			}
			for time.Now().Before(deadline) && !t.Failed() {
				shard := shardIDs[rng.IntN(shards)]
				l, holding := held[shard]
				if !holding {
					seen, err := s.GetLease(ctx, app, shard)
					if err != nil {
						t.Errorf("%s: get: %v", me, err)
						return
					}
					got, err := s.TakeLease(ctx, seen, me)
					switch {
					case err == nil:
						record(shard, op{kind: "take", owner: me, expected: seen.Counter, result: got.Counter})
						hold(shard, got)
					case errors.Is(err, checkpoint.ErrLeaseLost):
						mu.Lock()
						lostTaken++
						mu.Unlock()
					default:
						t.Errorf("%s: take: %v", me, err)
						return
					}
					continue
				}
				var (
					got  checkpoint.Lease
					err  error
					kind string
					cp   checkpoint.Checkpoint
				)
				switch r := rng.IntN(100); {
				case r < 15:
					old, ok := stale[shard]
					if !ok {
						continue
					}
					// A checkpoint with a superseded copy: always refused.
					_, err := s.Checkpoint(ctx, old, seq(new(big.Int).Add(base, big.NewInt(1<<40)).String()))
					mu.Lock()
					staleTried++
					mu.Unlock()
					if !errors.Is(err, checkpoint.ErrLeaseLost) {
						t.Errorf("%s: checkpoint with stale counter %d (held %d): error %v, want ErrLeaseLost", me, old.Counter, l.Counter, err)
					}
					continue
				case r < 50:
					kind = "renew"
					got, err = s.RenewLease(ctx, l)
				case r < 95:
					kind = "checkpoint"
					cur := base
					if !l.Checkpoint.IsSentinel() {
						cur, _ = new(big.Int).SetString(l.Checkpoint.SequenceNumber, 10)
					}
					// Mostly forward, sometimes back.
					next := new(big.Int).Add(cur, big.NewInt(int64(rng.IntN(20)-4)))
					cp = seqSub(next.String(), int64(rng.IntN(3)))
					got, err = s.Checkpoint(ctx, l, cp)
				default:
					kind = "release"
					got, err = s.ReleaseLease(ctx, l)
				}
				switch {
				case err == nil:
					record(shard, op{kind: kind, owner: me, expected: l.Counter, result: got.Counter, cp: got.Checkpoint})
					if kind == "release" {
						stale[shard] = l
						delete(held, shard)
					} else {
						hold(shard, got)
					}
				case errors.Is(err, checkpoint.ErrLeaseLost):
					stale[shard] = l
					delete(held, shard)
				case errors.Is(err, checkpoint.ErrCheckpointBackwards) && kind == "checkpoint":
					// The fence held, so the stored checkpoint is my copy's.
					if cp.Compare(l.Checkpoint) >= 0 {
						t.Errorf("%s: checkpoint %v rejected as backwards from %v", me, cp, l.Checkpoint)
					}
					mu.Lock()
					backwards++
					mu.Unlock()
				default:
					t.Errorf("%s: %s: %v", me, kind, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for _, shard := range shardIDs {
		hist := history[shard]
		sort.Slice(hist, func(i, j int) bool { return hist[i].result < hist[j].result })
		ops += len(hist)
		final := mustGet(t, stores[0], shard)
		if int64(len(hist)) != final.Counter {
			t.Errorf("%s: %d successful changes recorded, final counter %d", shard, len(hist), final.Counter)
		}
		owner := "" // the owner after the change that produced each counter
		last := checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}
		for i, o := range hist {
			if o.result != int64(i+1) {
				t.Fatalf("%s: counters %d and %d: two successful changes produced one counter, or one is missing", shard, hist[max(i-1, 0)].result, o.result)
			}
			if o.expected != o.result-1 {
				t.Fatalf("%s: %s by %s presented counter %d and got %d", shard, o.kind, o.owner, o.expected, o.result)
			}
			if o.kind != "take" && owner != o.owner {
				t.Fatalf("%s: %s by %s at counter %d succeeded, but the lease was %q's there", shard, o.kind, o.owner, o.expected, owner)
			}
			switch o.kind {
			case "take":
				owner = o.owner
			case "release":
				owner = ""
			case "checkpoint":
				if o.cp.Compare(last) < 0 {
					t.Fatalf("%s: checkpoint moved back from %v to %v at counter %d", shard, last, o.cp, o.result)
				}
				last = o.cp
			}
		}
		if final.Owner != owner || final.Checkpoint != last {
			t.Errorf("%s: final lease %s at %v, history says %s at %v", shard, final.Owner, final.Checkpoint, owner, last)
		}
	}
	t.Logf("%d successful changes, %d takes lost to another worker, %d checkpoints rejected as backwards, %d stale checkpoints refused",
		ops, lostTaken, backwards, staleTried)
	if ops < 100 || staleTried == 0 || backwards == 0 || lostTaken == 0 {
		t.Errorf("too little contention to mean anything")
	}
}
