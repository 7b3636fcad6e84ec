package enginetest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

var changedTests = []test{
	{name: "Append", fn: testChangedAppend},
	{name: "OtherHandle", fn: testChangedOtherHandle},
	{name: "SealUnseal", fn: testChangedSealUnseal},
	{name: "DeleteLog", fn: testChangedDelete},
}

var sealTests = []test{
	{name: "Basic", fn: testSealBasic},
	{name: "Empty", fn: testSealEmpty},
	{name: "OtherHandle", fn: testSealOtherHandle},
	{name: "WhileAppending", fn: testSealWhileAppending},
}

// A Changed channel taken before an append is closed when it returns; one
// taken after it is not.
func testChangedAppend(t *testing.T, x *env) {
	l := x.newLog()
	for i := range 5 {
		ch := l.Changed()
		if isClosed(ch) {
			t.Fatalf("append %d: Changed channel closed before the append", i)
		}
		x.app(l, recs("k", 1+i, 4))
		if !isClosed(ch) {
			t.Fatalf("append %d: Changed channel taken before the append is open after it", i)
		}
		if isClosed(l.Changed()) {
			t.Fatalf("append %d: Changed channel taken after the append is already closed", i)
		}
	}
}

// Handles of one log share its Changed: an append through one wakes
// waiters on the other.
func testChangedOtherHandle(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	ch, ch2 := l.Changed(), l2.Changed()
	x.app(l2, recs("k", 1, 4))
	if !isClosed(ch) || !isClosed(ch2) {
		t.Fatalf("an append through one handle did not close Changed of both handles (first %v, second %v)", isClosed(ch), isClosed(ch2))
	}
}

// Seal and Unseal close the Changed channel (Seal only, when the seal is
// irreversible).
func testChangedSealUnseal(t *testing.T, x *env) {
	l := x.newLog()
	x.app(l, recs("k", 1, 4))
	ch := l.Changed()
	if _, err := l.Seal(x.ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ch) {
		t.Fatal("Seal did not close the Changed channel")
	}
	ch = l.Changed()
	if isClosed(ch) {
		t.Fatal("Changed channel taken after Seal is already closed")
	}
	if x.irreversible(l) {
		return
	}
	if err := l.Unseal(x.ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ch) {
		t.Fatal("Unseal did not close the Changed channel")
	}
}

// DeleteLog closes the Changed channels of every handle.
func testChangedDelete(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	x.app(l, recs("k", 1, 4))
	ch, ch2 := l.Changed(), l2.Changed()
	if err := x.e.DeleteLog(x.ctx, logID(0)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ch) || !isClosed(ch2) {
		t.Fatalf("DeleteLog did not close the handles' Changed channels (first %v, second %v)", isClosed(ch), isClosed(ch2))
	}
}

// Seal returns the end, fails later appends with ErrSealed, is idempotent,
// leaves the log readable, and Unseal allows appends again (or, when the
// seal is irreversible, fails with ErrIrreversible and changes nothing).
func testSealBasic(t *testing.T, x *env) {
	l := x.newLog()
	all := x.app(l, recs("a", 3, 4))
	all = append(all, x.app(l, recs("b", 2, 4))...)
	end, err := l.Seal(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := x.info(l)
	if end != in.End || !all[len(all)-1].pos.Less(end) {
		t.Fatalf("Seal = %v; Info.End %v, last record %v", end, in.End, all[len(all)-1].pos)
	}
	for i := range 3 {
		_, _, err := l.Append(x.ctx, recs("sealed", 1, 4))
		wantErr(t, fmt.Sprintf("Append %d on a sealed log", i), err, engine.ErrSealed)
	}
	if in2 := x.info(l); in2 != in {
		t.Fatalf("Info after failed appends = %+v, was %+v", in2, in)
	}
	end2, err := l.Seal(x.ctx)
	if err != nil || end2 != end {
		t.Fatalf("second Seal = %v, %v; want %v, nil", end2, err, end)
	}
	checkEntries(t, x.readAll(l, engine.Position{}, 2, bigRead), all)
	if p, err := l.SeekTime(x.ctx, 0); err != nil || p != all[0].pos {
		t.Fatalf("SeekTime on a sealed log = %v, %v; want %v", p, err, all[0].pos)
	}
	if x.irreversible(l) {
		return
	}
	if err := l.Unseal(x.ctx); err != nil {
		t.Fatal(err)
	}
	more := x.app(l, recs("c", 2, 4))
	if more[0].pos.Less(end) {
		t.Fatalf("append after Unseal at %v, before the sealed end %v", more[0].pos, end)
	}
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), append(all, more...))
	// Seal again after Unseal.
	end3, err := l.Seal(x.ctx)
	if err != nil || !more[1].pos.Less(end3) {
		t.Fatalf("Seal after Unseal = %v, %v; last record at %v", end3, err, more[1].pos)
	}
	_, _, err = l.Append(x.ctx, recs("sealed", 1, 4))
	wantErr(t, "Append after the second Seal", err, engine.ErrSealed)
}

// An empty log can be sealed; Seal returns its end.
func testSealEmpty(t *testing.T, x *env) {
	l := x.newLog()
	end, err := l.Seal(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in := x.info(l); end != in.End {
		t.Fatalf("Seal of an empty log = %v, Info.End %v", end, in.End)
	}
	_, _, err = l.Append(x.ctx, recs("k", 1, 1))
	wantErr(t, "Append on a sealed empty log", err, engine.ErrSealed)
	if es, _ := x.read(l, engine.Position{}, bigRead, bigRead); len(es) != 0 {
		t.Fatalf("sealed empty log read %d entries", len(es))
	}
}

// Sealing through one handle seals the log for every handle.
func testSealOtherHandle(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	x.app(l2, recs("k", 1, 4))
	if _, err := l.Seal(x.ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := l2.Append(x.ctx, recs("k", 1, 4))
	wantErr(t, "Append through another handle of a sealed log", err, engine.ErrSealed)
	if x.irreversible(l2) {
		return
	}
	if err := l2.Unseal(x.ctx); err != nil {
		t.Fatal(err)
	}
	x.app(l, recs("k", 1, 4))
}

// Appends racing Seal either succeed, before the end Seal returns and
// readable, or fail with ErrSealed; none that starts after Seal returned
// succeeds. The race runs for several rounds of Seal and Unseal (one round
// when the seal is irreversible).
func testSealWhileAppending(t *testing.T, x *env) {
	l := x.newLog()
	const writers, rounds = 8, 120
	var all []stored
	for round := range rounds {
		// The log is open again after the last round's Unseal.
		all = append(all, x.app(l, recs(fmt.Sprint("r", round), 1, 1))...)
		var (
			sealed  atomic.Bool // Seal has returned
			started atomic.Int64
			wg      sync.WaitGroup
			mu      sync.Mutex
			ok      []stored
			late    int // successful appends that started after Seal returned
		)
		errs := make(chan error, writers)
		sealDone := make(chan struct{})
		going := make(chan struct{}) // closed when some appends have started
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					after := sealed.Load()
					rs := recs(fmt.Sprintf("r%d-w%d-%d", round, g, i), 1+i%3, 16)
					if started.Add(1) == 2*writers {
						close(going)
					}
					first, ms, err := l.Append(x.ctx, rs)
					if errors.Is(err, engine.ErrSealed) {
						if !after {
							<-sealDone // then try once more, after Seal returned
							continue
						}
						return
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for j, r := range rs {
						ok = append(ok, stored{pos: at(first, j), ms: ms, rec: r})
					}
					if after {
						late++
					}
					mu.Unlock()
					if after {
						return
					}
					runtime.Gosched() // let Seal in soon, also with GOMAXPROCS=1
				}
			}()
		}
		select {
		case <-going:
		case err := <-errs:
			errs <- err // reported below, once the writers are done
		case <-time.After(tailTimeout):
			t.Errorf("round %d: the appends did not start", round)
		}
		end, err := l.Seal(x.ctx)
		sealed.Store(true)
		close(sealDone)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Append: %v", round, err)
		}
		if err != nil {
			t.Fatalf("round %d: Seal: %v", round, err)
		}
		if late > 0 {
			t.Fatalf("round %d: %d appends that started after Seal returned succeeded", round, late)
		}
		for _, s := range ok {
			if !s.pos.Less(end) {
				t.Fatalf("round %d: a successful append's record is at %v, not before the end %v that Seal returned", round, s.pos, end)
			}
		}
		if in := x.info(l); in.End != end {
			t.Fatalf("round %d: Info.End after Seal = %v, Seal returned %v", round, in.End, end)
		}
		all = append(all, ok...)
		if x.irreversible(l) {
			break // one round: the log stays sealed
		}
		if err := l.Unseal(x.ctx); err != nil {
			t.Fatal(err)
		}
	}
	sortStored(all)
	checkEntries(t, x.readAll(l, engine.Position{}, 100, bigRead), all)
}
