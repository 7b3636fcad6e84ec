package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/server"
)

// Lease administration while workers run: resets and forced releases are
// picked up at once, and nothing of the former owner's tenure lands after
// them.

// cpLog records the error of every checkpoint the processors made, by
// worker and shard.
type cpLog struct {
	mu   sync.Mutex // guards errs
	errs map[string][]error
}

func (c *cpLog) add(shard string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errs == nil {
		c.errs = map[string][]error{}
	}
	c.errs[shard] = append(c.errs[shard], err)
}

func (c *cpLog) of(shard string) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs[shard]...)
}

// TestResetDropsShard: a reset while both owners are in the middle of a
// batch (whose processors ignore their ctx) is acted on at once: each
// shard is taken again from the reset position by the other worker, in the
// instant of the reset, while its former owner is still busy; the former
// owners' checkpoints, made after the reset, fail with ErrLeaseLost and
// never land; their processors get LeaseLost.
func TestResetDropsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		var (
			shut     atomic.Bool
			open     = make(chan struct{})
			openOnce sync.Once
			busy     sync.WaitGroup
			cps      cpLog
		)
		release := func() { openOnce.Do(func() { close(open) }) }
		defer release()
		onBatch := func(_ context.Context, p *ledgerProc, in ProcessRecordsInput) error {
			if shut.Load() {
				busy.Done()
				<-open // ignoring ctx: the batch is finished regardless
			}
			err := in.Checkpointer.Checkpoint(context.Background())
			cps.add(p.worker+"/"+p.shard, err)
			return nil
		}
		start := func(id string) *running {
			return r.startWith(id, r.kin, r.ledger.factory(id, procOptions{onBatch: onBatch}), nil)
		}
		a, b := start("a"), start("b")
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 10 {
				return fmt.Errorf("%d of 10 records processed", n)
			}
			return balanced([]*running{a, b}, 2, 1, 1)
		})
		synctest.Wait() // the last checkpoints are made
		shards := []string{"shardId-000000000000", "shardId-000000000001"}
		owner := map[string]string{}
		for _, w := range []*running{a, b} {
			owner[w.w.HeldShards()[0]] = w.w.ID()
		}
		shut.Store(true)
		busy.Add(2)
		for _, s := range shards {
			r.addRecords(s, 3, s+"-late-")
		}
		busy.Wait() // both hold a batch
		shut.Store(false)
		before := map[string]int{}
		for _, s := range shards {
			before[s] = len(cps.of(owner[s] + "/" + s))
		}

		resetAt := time.Now()
		reset, err := r.store.ResetLeases(t.Context(), testApp, nil, checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon})
		if err != nil || len(reset) != 2 {
			t.Fatalf("ResetLeases = %+v, %v", reset, err)
		}
		synctest.Wait()
		tns := r.ledger.tenures()
		for i, s := range shards {
			ts := tns[s]
			if n := len(ts); n < 2 || !ts[n-1].initAt.Equal(resetAt) || ts[n-1].worker == owner[s] || ts[n-1].initCP.SequenceNumber != checkpoint.TrimHorizon {
				t.Fatalf("%s: tenures %+v, want one by the worker that did not hold it, from TRIM_HORIZON, at the reset", s, ts)
			}
			if first := fmt.Sprint((i + 1) * 1000); ts[len(ts)-1].first == nil || ts[len(ts)-1].first.pos.SequenceNumber != first {
				t.Errorf("%s: the new tenure starts at %+v, want the shard's first record, %s", s, ts[len(ts)-1].first, first)
			}
		}
		// The former owners finish their batches after the reset.
		release()
		synctest.Wait()
		for _, s := range shards {
			if errs := cps.of(owner[s] + "/" + s)[before[s]:]; len(errs) != 1 || !errors.Is(errs[0], checkpoint.ErrLeaseLost) {
				t.Errorf("%s: the former owner's checkpoint after the reset: %v, want ErrLeaseLost", s, errs)
			}
		}
		_, evs := r.ledger.snapshot()
		lost := 0
		for _, ev := range evs {
			if ev.kind == "lost" && !ev.at.Before(resetAt) && ev.worker == owner[ev.shard] {
				lost++
			}
		}
		if lost != 2 {
			t.Errorf("%d LeaseLost for the former owners after the reset, want 2", lost)
		}
		within(t, time.Minute, func() error {
			for i, s := range shards {
				l, err := r.store.GetLease(t.Context(), testApp, s)
				if last := fmt.Sprint((i+1)*1000 + 7); err != nil || l.Checkpoint.SequenceNumber != last {
					return fmt.Errorf("%s at %v, %v", s, l.Checkpoint, err)
				}
			}
			return nil
		})
		for _, w := range []*running{a, b} {
			if err := w.stop(t); err != nil {
				t.Errorf("%s: Run: %v", w.w.ID(), err)
			}
		}
	})
}

// TestForceReleaseDropsShard: a forced release stops the owner's processing
// of the shard at once (LeaseLost, without checkpointing), and the fleet
// takes the lease again from its checkpoint.
func TestForceReleaseDropsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 1)
		m := &testMetrics{}
		a := r.start("a", m, nil)
		within(t, time.Minute, func() error {
			if n := r.ledger.seen(); n != 5 {
				return fmt.Errorf("%d of 5 records processed", n)
			}
			return nil
		})
		synctest.Wait()
		const shard = "shardId-000000000000"
		l, err := r.store.ForceRelease(t.Context(), testApp, shard)
		if err != nil || l.Owner != "" {
			t.Fatalf("ForceRelease = %+v, %v", l, err)
		}
		releasedAt := time.Now()
		synctest.Wait()
		if n := m.lost.Load(); n != 1 {
			t.Errorf("%d leases lost, want 1", n)
		}
		ts := r.ledger.tenures()[shard]
		if len(ts) != 2 || !ts[1].initAt.Equal(releasedAt) || ts[1].initCP != l.Checkpoint {
			t.Fatalf("tenures %+v, want a second one from %s at once", ts, l.Checkpoint)
		}
		checkOnce(t, r.ledger)
		if err := a.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestResetWhileRunning: two workers consume a stream; its leases are reset
// to each kind of position in turn, a sequence number (one shard),
// TRIM_HORIZON, a time and LATEST (all shards). Each time processing
// resumes exactly there: the first record the new owner processes is the
// one after the sequence number, the shard's first, the first that arrived
// at or after the time, or none put before the reset; everything after it
// is processed. The lease table's history (an audit trigger) shows no
// checkpoint going back but by the resets, and every checkpoint made by the
// owner that took the lease after the last reset. On the real server and
// PostgreSQL.
func TestResetWhileRunning(t *testing.T) {
	var skew atomic.Int64 // the server's clock ahead of the real one
	e := newEnv(t, envOptions{shards: 2, server: server.Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}})
	admin := e.store.(checkpoint.Admin)
	installAudit(t, e)
	ms := map[string]*testMetrics{"a": {}, "b": {}}
	a := e.startWorker("a", func(c *Config) { c.Metrics = ms["a"] }, nil)
	b := e.startWorker("b", func(c *Config) { c.Metrics = ms["b"] }, nil)
	ctx := t.Context()
	putN := func(prefix string, n int) []string {
		var keys, data []string
		for i := range n {
			keys, data = append(keys, fmt.Sprintf("k%d", i)), append(data, fmt.Sprintf("%s%03d", prefix, i))
		}
		e.put(keys, data)
		return data
	}
	sent := putN("one-", 40)
	eventually(t, 30*time.Second, func() error {
		if m := e.ledger.missing(sent); len(m) > 0 {
			return fmt.Errorf("%d records not processed", len(m))
		}
		return balanced([]*running{a, b}, 2, 1, 1)
	})
	shards := e.shardIDs()

	// fromReset returns the tenures of shard that started from cp after
	// at (a reset's: the one that took the lease first, and any that took
	// it over before its first checkpoint).
	fromReset := func(shard string, at time.Time, cp checkpoint.Checkpoint) []*tenure {
		var out []*tenure
		for _, tn := range e.ledger.tenures()[shard] {
			if tn.initAt.After(at) && tn.initCP == cp {
				out = append(out, tn)
			}
		}
		return out
	}
	// step resets the shards (all if nil) to cp once the workers are
	// balanced, waits until each is taken again from cp, and (unless want
	// is nil) until it is caught up; then each tenure from cp started with
	// the record want gives. It returns when the reset was made.
	step := func(name string, only []string, cp checkpoint.Checkpoint, want func(recs []Record) Record) time.Time {
		t.Helper()
		eventually(t, 20*time.Second, func() error { return balanced([]*running{a, b}, 2, 1, 1) })
		at := time.Now()
		got, err := admin.ResetLeases(ctx, testApp, only, cp)
		if err != nil {
			t.Fatalf("%s: ResetLeases: %v", name, err)
		}
		which := only
		if which == nil {
			which = shards
		}
		if len(got) != len(which) {
			t.Fatalf("%s: %d leases reset, want %d", name, len(got), len(which))
		}
		for _, s := range which {
			eventually(t, 20*time.Second, func() error {
				if len(fromReset(s, at, cp)) == 0 {
					return fmt.Errorf("%s: %s not taken again from %s", name, s, cp)
				}
				return nil
			})
			if want == nil {
				continue
			}
			recs := e.readShard(s)
			first, last := want(recs), recs[len(recs)-1].Position()
			eventually(t, 20*time.Second, func() error {
				for _, tn := range e.ledger.tenures()[s] {
					if tn.initAt.After(at) && tn.last() == last {
						return nil
					}
				}
				return fmt.Errorf("%s: %s not caught up", name, s)
			})
			for _, tn := range fromReset(s, at, cp) {
				if tn.first != nil && tn.first.pos != first.Position() {
					t.Errorf("%s: %s resumed at %s, want %s (%s)", name, s, tn.first.pos, first.Position(), first.Data)
				}
			}
			t.Logf("%s: %s resumed at %s (%s)", name, s, first.Position(), first.Data)
		}
		return at
	}

	// A sequence number, on one shard: the record after it is next.
	recs := e.readShard(shards[0])
	k := len(recs) / 2
	step("sequence number", shards[:1], recs[k].Position(), func([]Record) Record { return recs[k+1] })
	// TRIM_HORIZON: the first record.
	step("TRIM_HORIZON", nil, checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}, func(recs []Record) Record { return recs[0] })
	// A time: the first record that arrived at or after it. The server's
	// clock jumps an hour before the next records, and the time is in
	// between (each shard gets some of them).
	skew.Store(int64(time.Hour))
	putN("two-", 40)
	when := time.Now().Add(30 * time.Minute)
	step("time", nil, checkpoint.AtTime(when), func(recs []Record) Record {
		for _, r := range recs {
			if !r.ApproximateArrivalTimestamp.Before(when) {
				return r
			}
		}
		t.Fatalf("no record at or after %v", when)
		return Record{}
	})
	// LATEST: nothing put before the reset is processed again, and what
	// is put once the application has settled (each shard's owner reads
	// from a tenure started at the reset: until then, a lease handed over
	// while still at LATEST starts at LATEST again, later) is processed.
	latest := checkpoint.Checkpoint{SequenceNumber: checkpoint.Latest}
	at := step("LATEST", nil, latest, nil)
	eventually(t, 20*time.Second, func() error {
		if err := balanced([]*running{a, b}, 2, 1, 1); err != nil {
			return err
		}
		for _, s := range shards {
			tns := e.ledger.tenures()[s]
			tn := tns[len(tns)-1]
			if tn.initCP != latest || !ms[tn.worker].readSince(s, tn.initAt) {
				return fmt.Errorf("%s: not read yet by its owner since the reset", s)
			}
		}
		return nil
	})
	three := putN("three-", 20)
	eventually(t, 20*time.Second, func() error {
		if m := e.ledger.missing(three); len(m) > 0 {
			return fmt.Errorf("%d records put after the LATEST reset not processed", len(m))
		}
		return nil
	})
	for _, s := range shards {
		for _, tn := range e.ledger.tenures()[s] {
			if !tn.initAt.After(at) {
				continue
			}
			for _, d := range tn.records {
				if !strings.HasPrefix(d.data, "three-") {
					t.Errorf("LATEST: %s: %s (%s), put before the reset, processed after it", s, d.pos, d.data)
				}
			}
		}
	}
	e.ledger.checkOrder(t)
	checkAudit(t, e)
	for _, w := range []*running{a, b} {
		if err := w.stop(t); err != nil {
			t.Errorf("%s: Run: %v", w.w.ID(), err)
		}
	}
}

// installAudit records every change of a lease's owner or checkpoint, and
// every reset, in a table of the test's schema.
func installAudit(t *testing.T, e *env) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE TABLE lease_audit (id bigserial PRIMARY KEY, shard_id text, old_seq text, old_sub bigint, new_seq text, new_sub bigint,
	old_owner text, new_owner text, reset bool)`,
		`CREATE FUNCTION lease_audit() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	IF NEW.checkpoint_seq IS DISTINCT FROM OLD.checkpoint_seq OR NEW.checkpoint_subseq IS DISTINCT FROM OLD.checkpoint_subseq
		OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner OR current_setting('shoal.lease_op', true) = 'reset' THEN
		INSERT INTO lease_audit (shard_id, old_seq, old_sub, new_seq, new_sub, old_owner, new_owner, reset)
		VALUES (NEW.shard_id, OLD.checkpoint_seq, OLD.checkpoint_subseq, NEW.checkpoint_seq, NEW.checkpoint_subseq,
			OLD.lease_owner, NEW.lease_owner, coalesce(current_setting('shoal.lease_op', true), '') = 'reset');
	END IF;
	RETURN NULL;
END
$fn$`,
		`CREATE TRIGGER lease_audit AFTER UPDATE ON ` + checkpoint.DefaultTable + ` FOR EACH ROW EXECUTE FUNCTION lease_audit()`,
	} {
		if _, err := e.pool.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// checkAudit checks the lease history: between resets, checkpoints only
// move forward, and only the owner that took the lease after the last reset
// (or hand-off) writes them.
func checkAudit(t *testing.T, e *env) {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), `SELECT shard_id, old_seq, old_sub, new_seq, new_sub, coalesce(old_owner, ''), coalesce(new_owner, ''), reset
FROM lease_audit ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	owner := map[string]string{} // shard -> its owner, as the history says
	resets, checkpoints := 0, 0
	for rows.Next() {
		var shard, oldOwner, newOwner string
		var from, to checkpoint.Checkpoint
		var reset bool
		if err := rows.Scan(&shard, &from.SequenceNumber, &from.SubSequenceNumber, &to.SequenceNumber, &to.SubSequenceNumber, &oldOwner, &newOwner, &reset); err != nil {
			t.Fatal(err)
		}
		switch {
		case reset:
			resets++
		case from != to:
			checkpoints++
			if to.Compare(from) < 0 {
				t.Errorf("%s: checkpoint back from %s to %s, not by a reset", shard, from, to)
			}
			if oldOwner != newOwner || newOwner == "" || newOwner != owner[shard] {
				t.Errorf("%s: checkpoint %s by %q (owner before %q), the lease's owner is %q", shard, to, newOwner, oldOwner, owner[shard])
			}
		}
		owner[shard] = newOwner
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if resets != 7 || checkpoints == 0 {
		t.Errorf("%d resets (want 1+2+2+2) and %d checkpoints in the history", resets, checkpoints)
	}
}
