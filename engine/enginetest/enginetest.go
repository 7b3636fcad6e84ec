package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

// Harness tells Run how to make the engine under test.
type Harness struct {
	// New returns a fresh, empty engine that takes every arrival time from
	// now (never from the wall clock), so that tests control time without
	// sleeping. now is safe for concurrent use. New registers a t.Cleanup
	// that closes the engine and whatever it keeps on disk; that Close must
	// tolerate an engine the test already closed (ErrClosed is fine).
	New func(t *testing.T, now func() time.Time) engine.Engine
	// Reopen closes e, an engine that New (or an earlier Reopen) returned
	// in the same test, and returns a new engine on the same data, taking
	// arrival times from the same now. It is nil for engines that keep
	// nothing across Close; the durability tests are skipped then.
	Reopen func(t *testing.T, e engine.Engine) engine.Engine
	// IrreversibleSeal is set for engines whose Unseal always fails with
	// engine.ErrIrreversible (a sealed NATS JetStream stream stays sealed).
	// The tests that unseal then check that Unseal fails so and that the
	// log stays sealed, and skip what they would do after the Unseal.
	IrreversibleSeal bool
}

// Run runs the conformance suite against the engine h makes, as subtests of
// t. Every test gets its own engine from h.New.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("enginetest: Harness.New is nil")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Log", logTests},
		{"Read", readTests},
		{"Time", timeTests},
		{"Changed", changedTests},
		{"Seal", sealTests},
		{"Concurrent", concurrentTests},
		{"Engine", engineTests},
		{"Catalog", catalogTests},
		{"Durability", durabilityTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.durable && h.Reopen == nil {
						t.Skip("enginetest: Harness.Reopen is nil: the engine is not durable")
					}
					tc.fn(t, newEnv(t, h))
				})
			}
		})
	}
}

// test is one subtest of Run.
type test struct {
	name    string
	durable bool // needs Harness.Reopen
	fn      func(t *testing.T, x *env)
}

// epoch is where every test's clock starts: 2023-11-14T22:13:20Z.
var epoch = time.UnixMilli(1_700_000_000_000).UTC()

// clock is the fake time source handed to Harness.New.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Millis returns the clock's time in unix milliseconds.
func (c *clock) Millis() int64 { return c.Now().UnixMilli() }

// Advance moves the clock by d (backwards if d < 0).
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's engine, clock and context.
type env struct {
	t     *testing.T
	h     Harness
	ctx   context.Context
	clock *clock
	e     engine.Engine
}

func newEnv(t *testing.T, h Harness) *env {
	c := &clock{now: epoch}
	e := h.New(t, c.Now)
	if e == nil {
		t.Fatal("enginetest: Harness.New returned nil")
	}
	return &env{t: t, h: h, ctx: t.Context(), clock: c, e: e}
}

// reopen closes the engine and opens it again on the same data.
func (x *env) reopen() {
	x.t.Helper()
	e := x.h.Reopen(x.t, x.e)
	if e == nil {
		x.t.Fatal("enginetest: Harness.Reopen returned nil")
	}
	x.e = e
}

// create makes the log id, failing the test on error.
func (x *env) create(id engine.LogID) engine.Log {
	x.t.Helper()
	l, err := x.e.CreateLog(x.ctx, id)
	if err != nil {
		x.t.Fatalf("CreateLog(%v): %v", id, err)
	}
	return l
}

// open opens the log id, failing the test on error.
func (x *env) open(id engine.LogID) engine.Log {
	x.t.Helper()
	l, err := x.e.OpenLog(x.ctx, id)
	if err != nil {
		x.t.Fatalf("OpenLog(%v): %v", id, err)
	}
	return l
}

// newLog makes a log with a fresh id.
func (x *env) newLog() engine.Log {
	x.t.Helper()
	return x.create(logID(0))
}

// logID names test log n.
func logID(n uint32) engine.LogID { return engine.LogID{Stream: "enginetest-stream", Shard: n} }

// stored is a record as appended, with the position and arrival time the
// engine gave it.
type stored struct {
	pos engine.Position
	ms  int64
	rec engine.Record
}

// app appends recs as one batch and returns them as stored records.
func (x *env) app(l engine.Log, recs []engine.Record) []stored {
	x.t.Helper()
	first, ms, err := l.Append(x.ctx, recs)
	if err != nil {
		x.t.Fatalf("Append(%d records): %v", len(recs), err)
	}
	out := make([]stored, len(recs))
	for i, r := range recs {
		out[i] = stored{pos: at(first, i), ms: ms, rec: cloneRecord(r)}
	}
	return out
}

// irreversible reports whether the engine's seal cannot be undone. If so,
// it checks that Unseal of the sealed log l fails with ErrIrreversible and
// leaves l sealed; the caller then skips its steps after the Unseal.
func (x *env) irreversible(l engine.Log) bool {
	x.t.Helper()
	if !x.h.IrreversibleSeal {
		return false
	}
	wantErr(x.t, "Unseal of an engine whose seal is irreversible", l.Unseal(x.ctx), engine.ErrIrreversible)
	_, _, err := l.Append(x.ctx, recs("after-unseal", 1, 1))
	wantErr(x.t, "Append after a refused Unseal", err, engine.ErrSealed)
	return true
}

// at returns the position of record i of a batch whose first record is at
// first.
func at(first engine.Position, i int) engine.Position {
	return engine.Position{Offset: first.Offset, Index: first.Index + uint16(i)}
}

func cloneRecord(r engine.Record) engine.Record {
	if r.Data != nil {
		r.Data = append([]byte{}, r.Data...)
	}
	return r
}

// recs makes n records whose keys start with prefix and whose data is
// size bytes (binary, derived from the key).
func recs(prefix string, n, size int) []engine.Record {
	out := make([]engine.Record, n)
	for i := range out {
		key := fmt.Sprintf("%s-%d", prefix, i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*31 + i*7 + len(prefix))
		}
		out[i] = engine.Record{PartitionKey: key, Data: data}
	}
	return out
}

// info returns l.Info, failing the test on error.
func (x *env) info(l engine.Log) engine.Info {
	x.t.Helper()
	in, err := l.Info(x.ctx)
	if err != nil {
		x.t.Fatalf("Info: %v", err)
	}
	return in
}

// read calls l.Read, failing the test on error.
func (x *env) read(l engine.Log, from engine.Position, maxRecords, maxBytes int) ([]engine.Entry, engine.Position) {
	x.t.Helper()
	es, next, err := l.Read(x.ctx, from, maxRecords, maxBytes)
	if err != nil {
		x.t.Fatalf("Read(%v, %d, %d): %v", from, maxRecords, maxBytes, err)
	}
	return es, next
}

// bigRead is a byte limit no test reaches.
const bigRead = 1 << 30

// readAll reads everything from from on, in reads of at most maxRecords
// records and maxBytes bytes, checking that every read makes progress.
func (x *env) readAll(l engine.Log, from engine.Position, maxRecords, maxBytes int) []engine.Entry {
	x.t.Helper()
	var all []engine.Entry
	for range 1 << 20 {
		es, next := x.read(l, from, maxRecords, maxBytes)
		if len(es) == 0 {
			return all
		}
		checkRead(x.t, from, es, next, maxRecords, maxBytes)
		all = append(all, es...)
		from = next
	}
	x.t.Fatalf("readAll: no end after %d reads", 1<<20)
	return nil
}

// checkRead checks one non-empty Read result against its arguments.
func checkRead(t *testing.T, from engine.Position, es []engine.Entry, next engine.Position, maxRecords, maxBytes int) {
	t.Helper()
	if len(es) > maxRecords {
		t.Fatalf("Read(%v, maxRecords %d) returned %d entries", from, maxRecords, len(es))
	}
	if n := entriesBytes(es); len(es) > 1 && n > maxBytes {
		t.Fatalf("Read(%v, maxBytes %d) returned %d entries of %d bytes", from, maxBytes, len(es), n)
	}
	if es[0].Pos.Less(from) {
		t.Fatalf("Read(%v) returned an entry at %v, before from", from, es[0].Pos)
	}
	for i := 1; i < len(es); i++ {
		if !es[i-1].Pos.Less(es[i].Pos) {
			t.Fatalf("Read(%v): entry %d at %v does not follow %v", from, i, es[i].Pos, es[i-1].Pos)
		}
		if es[i].ArrivalMillis < es[i-1].ArrivalMillis {
			t.Fatalf("Read(%v): arrival %d of entry %d is before %d", from, es[i].ArrivalMillis, i, es[i-1].ArrivalMillis)
		}
	}
	if last := es[len(es)-1].Pos; !last.Less(next) {
		t.Fatalf("Read(%v): next %v is not after the last entry %v", from, next, last)
	}
}

// entriesBytes counts the partition key and data bytes of es, as Read's
// maxBytes does.
func entriesBytes(es []engine.Entry) int {
	n := 0
	for _, e := range es {
		n += len(e.PartitionKey) + len(e.Data)
	}
	return n
}

// checkEntries fails the test unless got is want, record by record.
func checkEntries(t *testing.T, got []engine.Entry, want []stored) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Pos != w.pos || g.ArrivalMillis != w.ms || g.PartitionKey != w.rec.PartitionKey || !bytes.Equal(g.Data, w.rec.Data) {
			t.Fatalf("entry %d = {%v %d %q %x}, want {%v %d %q %x}", i,
				g.Pos, g.ArrivalMillis, g.PartitionKey, trunc(g.Data),
				w.pos, w.ms, w.rec.PartitionKey, trunc(w.rec.Data))
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// tailTimeout bounds waits that only a broken engine makes long.
const tailTimeout = 30 * time.Second

// sortStored sorts records by position.
func sortStored(s []stored) {
	slices.SortFunc(s, func(a, b stored) int { return a.pos.Compare(b.pos) })
}
