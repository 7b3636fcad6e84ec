package fileengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// TestRoundTrip appends batches at different times, checks Read, SeekTime
// and Info, and checks them again after Close and Open on the same dir.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := openEngine(t, Config{Now: clk.Now})
	l, err := e.CreateLog(ctx, lid("s1", 0))
	if err != nil {
		t.Fatal(err)
	}
	var want []appended
	var batchStarts []appended
	for i := 0; i < 5; i++ {
		a := appendT(t, l, makeRecs("b"+string(rune('a'+i)), i+1))
		batchStarts = append(batchStarts, a[0])
		want = append(want, a...)
		clk.Advance(time.Second)
	}
	check := func(l engine.Log) {
		t.Helper()
		for _, n := range []int{1, 2, 100} {
			checkEntries(t, readAll(t, l, n), want)
		}
		in, err := l.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if in.Oldest != want[0].pos || in.LastArrivalMillis != want[len(want)-1].ms || !want[len(want)-1].pos.Less(in.End) {
			t.Fatalf("Info = %+v, want oldest %v, last arrival %d", in, want[0].pos, want[len(want)-1].ms)
		}
		for _, b := range batchStarts {
			for _, ms := range []int64{b.ms, b.ms - 999} {
				p, err := l.SeekTime(ctx, ms)
				if err != nil || p != b.pos {
					t.Fatalf("SeekTime(%d) = %v, %v; want %v", ms, p, err, b.pos)
				}
			}
		}
		if p, err := l.SeekTime(ctx, clk.Millis()+1); err != nil || p != in.End {
			t.Fatalf("SeekTime(after all) = %v, %v; want End %v", p, err, in.End)
		}
		// A read from the middle of a batch starts there.
		es, _, err := l.Read(ctx, want[2].pos, 1, 0)
		if err != nil || len(es) != 1 || es[0].Pos != want[2].pos {
			t.Fatalf("Read(%v) = %v, %v", want[2].pos, es, err)
		}
		// A read at the end returns nothing and next = from.
		es, next, err := l.Read(ctx, in.End, 10, 0)
		if err != nil || len(es) != 0 || next != in.End {
			t.Fatalf("Read(End) = %v, %v, %v", es, next, err)
		}
	}
	check(l)
	e = reopen(t, e)
	if n := e.OpenLogs(); n != 0 {
		t.Fatalf("OpenLogs after Open = %d, want 0", n)
	}
	l2, err := e.OpenLog(ctx, lid("s1", 0))
	if err != nil {
		t.Fatal(err)
	}
	check(l2)
	// Arrival times never go back, even if the clock does.
	clk.Advance(-time.Hour)
	a := appendT(t, l2, makeRecs("late", 1))
	if a[0].ms != want[len(want)-1].ms {
		t.Fatalf("arrival after clock went back = %d, want %d", a[0].ms, want[len(want)-1].ms)
	}
}

// TestCrashCopyRecovers copies the data directory while the engine is
// running in FsyncAlways mode and opens a second engine on the copy: every
// acknowledged record is there.
func TestCrashCopyRecovers(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{Fsync: FsyncAlways, SegmentBytes: 4096})
	const logs, writers, batches = 4, 4, 40
	handles := make([]engine.Log, logs)
	for i := range handles {
		l, err := e.CreateLog(ctx, lid("crash", uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		handles[i] = l
	}
	if _, err := e.Catalog().PutStream(ctx, engine.StreamMeta{Name: "crash", ID: "crash"}, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint32][]appended{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				i := uint32((w + b) % logs)
				a := appendT(t, handles[i], makeRecs("w", 1+b%3))
				mu.Lock()
				acked[i] = append(acked[i], a...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	dst := t.TempDir()
	copyDir(t, e.cfg.Dir, dst) // the first engine is still open
	e2 := openEngine(t, Config{Dir: dst})
	for i := uint32(0); i < logs; i++ {
		l, err := e2.OpenLog(ctx, lid("crash", i))
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, l, 7)
		want := acked[i]
		sortAppended(want)
		checkEntries(t, got, want)
	}
	if _, v, err := e2.Catalog().Stream(ctx, "crash"); err != nil || v != 1 {
		t.Fatalf("Stream(crash) on the copy: version %d, %v", v, err)
	}
}

func sortAppended(a []appended) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].pos.Less(a[j-1].pos); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// TestSealConcurrent: an appender racing Seal either succeeds before Seal
// returns (at a position before the end Seal reports) or gets ErrSealed;
// Unseal lets appends in again.
func TestSealConcurrent(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	l, err := e.CreateLog(ctx, lid("seal", 0))
	if err != nil {
		t.Fatal(err)
	}
	var sealReturned atomic.Bool
	var successes atomic.Int64
	var mu sync.Mutex
	var okPos []engine.Position
	started := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if n == 5 && w == 0 {
					close(started)
				}
				after := sealReturned.Load()
				first, _, err := l.Append(ctx, makeRecs("c", 2))
				switch {
				case err == nil:
					if after {
						t.Errorf("Append started after Seal returned succeeded")
						return
					}
					successes.Add(1)
					mu.Lock()
					okPos = append(okPos, first)
					mu.Unlock()
				case errors.Is(err, engine.ErrSealed):
					return
				default:
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	<-started
	ch := l.Changed()
	end, err := l.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealReturned.Store(true)
	if !isClosed(ch) {
		t.Fatal("Seal did not fire Changed")
	}
	wg.Wait()
	for _, p := range okPos {
		if !p.Less(end) {
			t.Fatalf("acknowledged append at %v is not before the sealed end %v", p, end)
		}
	}
	if n := len(readAll(t, l, 1000)); int64(n) != 2*successes.Load() {
		t.Fatalf("log holds %d records, want %d", n, 2*successes.Load())
	}
	if end2, err := l.Seal(ctx); err != nil || end2 != end {
		t.Fatalf("second Seal = %v, %v; want %v", end2, err, end)
	}
	ch = l.Changed()
	if err := l.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ch) {
		t.Fatal("Unseal did not fire Changed")
	}
	ch = l.Changed()
	a := appendT(t, l, makeRecs("after", 1))
	if a[0].pos.Less(end) {
		t.Fatalf("append after Unseal at %v, before the sealed end %v", a[0].pos, end)
	}
	if !isClosed(ch) {
		t.Fatal("Append did not fire Changed")
	}
	if isClosed(l.Changed()) {
		t.Fatal("a fresh Changed channel is already closed")
	}
}

// TestSealWithoutOpen seals a log whose storage is closed: the flag
// survives idle closes, and Seal opens the log only to report its end.
func TestSealSurvivesIdleClose(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{IdleTimeout: -1})
	l, _ := e.CreateLog(ctx, lid("s", 0))
	appendT(t, l, makeRecs("a", 3))
	end, err := l.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ls := l.(*handle).ls
	if !ls.closeIfIdle(0) || e.OpenLogs() != 0 {
		t.Fatalf("could not close the idle log (OpenLogs %d)", e.OpenLogs())
	}
	if _, _, err := l.Append(ctx, makeRecs("b", 1)); !errors.Is(err, engine.ErrSealed) {
		t.Fatalf("Append on a sealed, closed log: %v", err)
	}
	if e.OpenLogs() != 0 {
		t.Fatal("a refused Append opened the log")
	}
	l2, _ := e.OpenLog(ctx, lid("s", 0))
	if end2, err := l2.Seal(ctx); err != nil || end2 != end {
		t.Fatalf("Seal through another handle = %v, %v; want %v", end2, err, end)
	}
}

// TestDeferredTrim trims a log that is not open: nothing is opened, and the
// trim is applied when the log next opens.
func TestDeferredTrim(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := openEngine(t, Config{Now: clk.Now, SegmentBytes: 64, IdleTimeout: -1})
	l, _ := e.CreateLog(ctx, lid("trim", 0))
	var all []appended
	for i := 0; i < 4; i++ {
		all = append(all, appendT(t, l, makeRecs("t", 1))...) // one segment each
		clk.Advance(time.Minute)
	}
	if !l.(*handle).ls.closeIfIdle(0) {
		t.Fatal("could not close the idle log")
	}
	n, err := l.TrimBefore(ctx, all[2].ms)
	if err != nil || n != 0 {
		t.Fatalf("TrimBefore on a closed log = %d, %v; want 0, nil", n, err)
	}
	if e.OpenLogs() != 0 {
		t.Fatal("TrimBefore opened the log")
	}
	if _, err := l.TrimBefore(ctx, all[1].ms); err != nil { // an earlier cutoff does not undo the later
		t.Fatal(err)
	}
	in, err := l.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Oldest != all[2].pos {
		t.Fatalf("Oldest after deferred trim = %v, want %v", in.Oldest, all[2].pos)
	}
	checkEntries(t, readAll(t, l, 10), all[2:])
	// An open log trims at once.
	n, err = l.TrimBefore(ctx, all[3].ms)
	if err != nil || n != 1 {
		t.Fatalf("TrimBefore on an open log = %d, %v; want 1", n, err)
	}
}

// TestErrorMapping checks the engine errors Append and Read return.
func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	l, _ := e.CreateLog(ctx, lid("err", 0))
	if _, _, err := l.Append(ctx, nil); !errors.Is(err, engine.ErrInvalidBatch) {
		t.Fatalf("Append(nil) = %v, want ErrInvalidBatch", err)
	}
	if _, _, err := l.Append(ctx, make([]engine.Record, engine.MaxBatchRecords+1)); !errors.Is(err, engine.ErrInvalidBatch) {
		t.Fatalf("Append(too many) = %v, want ErrInvalidBatch", err)
	}
	for _, c := range []struct{ in, want error }{
		{storage.ErrClosed, engine.ErrClosed},
		{storage.ErrInvalidBatch, engine.ErrInvalidBatch},
		{storage.ErrCorrupt, engine.ErrCorrupt},
	} {
		err := mapErr("op", c.in)
		if !errors.Is(err, c.want) || !errors.Is(err, c.in) {
			t.Fatalf("mapErr(%v) = %v, want both %v and %v", c.in, err, c.want, c.in)
		}
	}
	// Corrupt a batch under an open log: Read reports ErrCorrupt.
	a := appendT(t, l, makeRecs("x", 2))
	appendT(t, l, makeRecs("y", 2))
	seg := filepath.Join(e.cfg.Dir, "streams", "err", "shardId-000000000000", "00000000000000000000.log")
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("!"), 30); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.Read(ctx, a[0].pos, 10, 0)
	if !errors.Is(err, engine.ErrCorrupt) || !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("Read of a corrupt batch = %v, want ErrCorrupt", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := l.Append(cctx, makeRecs("z", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context = %v", err)
	}
}

// TestIntervalMode appends in FsyncInterval mode with a short interval: the
// sync goroutine runs and Close stops it (goleak checks).
func TestIntervalMode(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{Fsync: FsyncInterval, FsyncInterval: time.Millisecond})
	l, _ := e.CreateLog(ctx, lid("iv", 0))
	var want []appended
	for i := 0; i < 20; i++ {
		want = append(want, appendT(t, l, makeRecs("i", 2))...)
	}
	checkEntries(t, readAll(t, l, 5), want)
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e)
	l, _ = e.OpenLog(ctx, lid("iv", 0))
	checkEntries(t, readAll(t, l, 5), want)
}

// TestNeverMode: FsyncNever data survives Close and Open.
func TestNeverMode(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{Fsync: FsyncNever})
	l, _ := e.CreateLog(ctx, lid("nv", 0))
	want := appendT(t, l, makeRecs("n", 3))
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e)
	l, _ = e.OpenLog(ctx, lid("nv", 0))
	checkEntries(t, readAll(t, l, 5), want)
}
