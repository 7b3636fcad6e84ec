package fileengine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

// TestOpenLogsBound writes and reads 100 logs with MaxOpenLogs 8: no more
// than 8 storage logs are ever open (nor their descriptors), and reads of
// evicted logs return their data.
func TestOpenLogsBound(t *testing.T) {
	ctx := context.Background()
	const maxOpen, n = 8, 100
	baseFDs := countFDs()
	e := openEngine(t, Config{MaxOpenLogs: maxOpen, IdleTimeout: -1})
	handles := make([]engine.Log, n)
	want := make([][]appended, n)
	checkBound := func(when string) {
		t.Helper()
		if o := e.OpenLogs(); o > maxOpen {
			t.Fatalf("%s: %d logs open, bound %d", when, o, maxOpen)
		}
		if p := e.peakOpen.Load(); p > maxOpen {
			t.Fatalf("%s: peak of %d logs open, bound %d", when, p, maxOpen)
		}
		// Each open log holds one descriptor (one segment); allow a few
		// for the runtime and the test.
		if fds := countFDs(); baseFDs >= 0 && fds > baseFDs+maxOpen+4 {
			t.Fatalf("%s: %d descriptors open, %d before the engine", when, fds, baseFDs)
		}
	}
	for i := range handles {
		l, err := e.CreateLog(ctx, lid(fmt.Sprintf("s%d", i%10), uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		handles[i] = l
		want[i] = appendT(t, l, makeRecs(fmt.Sprintf("log%d", i), 1+i%4))
		checkBound("after append")
	}
	for round := 0; round < 3; round++ {
		for _, i := range rand.Perm(n) {
			if round == 1 {
				want[i] = append(want[i], appendT(t, handles[i], makeRecs("more", 2))...)
			}
			checkEntries(t, readAll(t, handles[i], 3), want[i])
			checkBound("after read")
		}
	}
	if e.peakOpen.Load() != maxOpen {
		t.Fatalf("peak open logs %d, want exactly %d", e.peakOpen.Load(), maxOpen)
	}
	// Reopened logs are the same after an engine restart.
	e = reopen(t, e)
	for _, i := range rand.Perm(n)[:20] {
		l, _ := e.OpenLog(ctx, lid(fmt.Sprintf("s%d", i%10), uint32(i)))
		checkEntries(t, readAll(t, l, 100), want[i])
	}
}

// TestOpenLogsBoundConcurrent hammers 40 logs from 8 goroutines with
// MaxOpenLogs 4: data stays right, and once quiet at most 4 logs are open.
func TestOpenLogsBoundConcurrent(t *testing.T) {
	ctx := context.Background()
	const maxOpen, n, workers, ops = 4, 40, 8, 150
	e := openEngine(t, Config{MaxOpenLogs: maxOpen, IdleTimeout: -1, SegmentBytes: 512})
	handles := make([]engine.Log, n)
	locks := make([]sync.Mutex, n)
	want := make([][]appended, n)
	for i := range handles {
		handles[i], _ = e.CreateLog(ctx, lid("c", uint32(i)))
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for k := 0; k < ops; k++ {
				i := r.IntN(n)
				locks[i].Lock()
				switch r.IntN(4) {
				case 0:
					want[i] = append(want[i], appendT(t, handles[i], makeRecs("p", 1+r.IntN(3)))...)
				case 1:
					if _, err := handles[i].Info(ctx); err != nil {
						t.Error(err)
					}
				default:
					checkEntries(t, readAll(t, handles[i], 1+r.IntN(4)), want[i])
				}
				locks[i].Unlock()
			}
		}()
	}
	wg.Wait()
	if o := e.OpenLogs(); o > maxOpen {
		t.Fatalf("%d logs open when quiet, bound %d", o, maxOpen)
	}
	for i := range handles {
		checkEntries(t, readAll(t, handles[i], 100), want[i])
	}
	t.Logf("peak open logs %d (bound %d, exceeded only while more were in use)", e.peakOpen.Load(), maxOpen)
}

// TestIdleClose: the janitor closes logs unused for IdleTimeout; they
// reopen transparently and their Changed channels survive.
func TestIdleClose(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{IdleTimeout: 20 * time.Millisecond})
	const n = 5
	handles := make([]engine.Log, n)
	want := make([][]appended, n)
	for i := range handles {
		handles[i], _ = e.CreateLog(ctx, lid("idle", uint32(i)))
		want[i] = appendT(t, handles[i], makeRecs("i", 2))
	}
	ch := handles[0].Changed()
	waitFor(t, "the janitor to close idle logs", func() bool { return e.OpenLogs() == 0 })
	if isClosed(ch) {
		t.Fatal("closing an idle log fired Changed")
	}
	for i := range handles {
		checkEntries(t, readAll(t, handles[i], 1), want[i])
	}
	want[0] = append(want[0], appendT(t, handles[0], makeRecs("j", 1))...)
	if !isClosed(ch) {
		t.Fatal("Changed taken before an idle close did not fire on the next append")
	}
	waitFor(t, "the janitor to close idle logs again", func() bool { return e.OpenLogs() == 0 })
	checkEntries(t, readAll(t, handles[0], 10), want[0])
}

// TestJanitorInterval checks the derivation of the janitor's period.
func TestJanitorInterval(t *testing.T) {
	for _, c := range []struct{ idle, want time.Duration }{
		{time.Minute, 15 * time.Second},
		{time.Hour, 15 * time.Second},
		{20 * time.Millisecond, 5 * time.Millisecond},
		{time.Microsecond, time.Millisecond},
	} {
		if got := janitorInterval(c.idle); got != c.want {
			t.Errorf("janitorInterval(%v) = %v, want %v", c.idle, got, c.want)
		}
	}
}

// TestChaos runs every kind of operation from many goroutines on a few
// logs with a tiny open-log bound and idle timeout, then closes the engine
// while they run: nothing deadlocks, panics or races, and the only errors
// are the expected ones.
func TestChaos(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{MaxOpenLogs: 2, IdleTimeout: time.Millisecond, Fsync: FsyncInterval, FsyncInterval: time.Millisecond, SegmentBytes: 256})
	const logs, workers, ops = 6, 8, 300
	var wg sync.WaitGroup
	var done atomic.Int64
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for k := 0; k < ops; k++ {
				select {
				case <-stop:
					return
				default:
				}
				id := lid("chaos", uint32(r.IntN(logs)))
				l, err := e.OpenLog(ctx, id)
				if err != nil {
					if !errors.Is(err, engine.ErrClosed) {
						t.Errorf("OpenLog: %v", err)
					}
					return
				}
				switch r.IntN(9) {
				case 0, 1, 2:
					_, _, err = l.Append(ctx, makeRecs("x", 1+r.IntN(3)))
				case 3:
					_, _, err = l.Read(ctx, engine.Position{}, 5, 0)
				case 4:
					_, err = l.Info(ctx)
				case 5:
					_, err = l.Seal(ctx)
				case 6:
					err = l.Unseal(ctx)
				case 7:
					_, err = l.TrimBefore(ctx, time.Now().UnixMilli())
				case 8:
					err = e.DeleteLog(ctx, id)
				}
				if err != nil && !errors.Is(err, engine.ErrClosed) && !errors.Is(err, engine.ErrSealed) {
					t.Errorf("operation on %v: %v", id, err)
				}
				_ = l.Changed()
				done.Add(1)
			}
		}()
	}
	waitFor(t, "half the operations", func() bool { return done.Load() >= workers*ops/2 })
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	if e.OpenLogs() != 0 {
		t.Fatalf("OpenLogs after Close = %d", e.OpenLogs())
	}
}
