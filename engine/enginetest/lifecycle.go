package enginetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

var engineTests = []test{
	{name: "CreateExisting", fn: testCreateExisting},
	{name: "OpenSharesLog", fn: testOpenShares},
	{name: "OpenMissing", fn: testOpenMissing},
	{name: "CloseHandle", fn: testCloseHandle},
	{name: "DeleteLog", fn: testDeleteLog},
	{name: "DeleteMissing", fn: testDeleteMissing},
	{name: "Logs", fn: testLogs},
	{name: "Close", fn: testEngineClose},
}

// CreateLog of an id that exists fails with ErrExists.
func testCreateExisting(t *testing.T, x *env) {
	l := x.newLog()
	_, err := x.e.CreateLog(x.ctx, logID(0))
	wantErr(t, "second CreateLog", err, engine.ErrExists)
	x.app(l, recs("k", 1, 1))
	_, err = x.e.CreateLog(x.ctx, logID(0))
	wantErr(t, "CreateLog of a written log", err, engine.ErrExists)
	// Another shard of the same stream, and the same shard of another
	// stream, are other logs.
	x.create(engine.LogID{Stream: logID(0).Stream, Shard: 1})
	x.create(engine.LogID{Stream: "enginetest-other", Shard: 0})
}

// OpenLog returns a handle sharing the log: an append through one is read
// through the other.
func testOpenShares(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	a := x.app(l, recs("a", 2, 4))
	b := x.app(l2, recs("b", 1, 4))
	all := append(a, b...)
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), all)
	checkEntries(t, x.readAll(l2, engine.Position{}, bigRead, bigRead), all)
	if x.info(l) != x.info(l2) {
		t.Fatalf("handles of one log report Info %+v and %+v", x.info(l), x.info(l2))
	}
}

// OpenLog of a log never created fails with ErrNotFound, or returns an
// empty log.
func testOpenMissing(t *testing.T, x *env) {
	l, err := x.e.OpenLog(x.ctx, logID(7))
	if errors.Is(err, engine.ErrNotFound) {
		return
	}
	if err != nil {
		t.Fatalf("OpenLog of a missing log: %v, want ErrNotFound or an empty log", err)
	}
	if in := x.info(l); in.Oldest != in.End {
		t.Fatalf("OpenLog of a missing log returned a log with Info %+v", in)
	}
}

// Close releases one handle: it fails with ErrClosed afterwards, while the
// log and other handles remain.
func testCloseHandle(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	a := x.app(l, recs("a", 2, 4))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, x, l, "a closed handle")
	b := x.app(l2, recs("b", 1, 4))
	checkEntries(t, x.readAll(l2, engine.Position{}, bigRead, bigRead), append(a, b...))
	l3 := x.open(logID(0))
	checkEntries(t, x.readAll(l3, engine.Position{}, bigRead, bigRead), append(a, b...))
}

// DeleteLog removes the log: its handles fail with ErrClosed, Logs no
// longer lists it, and other logs remain.
func testDeleteLog(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	other := x.create(logID(1))
	x.app(l, recs("a", 2, 4))
	keep := x.app(other, recs("o", 2, 4))
	if err := x.e.DeleteLog(x.ctx, logID(0)); err != nil {
		t.Fatal(err)
	}
	for i, h := range []engine.Log{l, l2} {
		checkClosed(t, x, h, "a deleted log")
		if !isClosed(h.Changed()) {
			t.Fatalf("handle %d: Changed of a deleted log is open", i)
		}
	}
	ids, err := x.e.Logs(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids, logID(0)) || !slices.Contains(ids, logID(1)) {
		t.Fatalf("Logs after DeleteLog(%v) = %v", logID(0), ids)
	}
	if l3, err := x.e.OpenLog(x.ctx, logID(0)); err == nil {
		if es, _, err := l3.Read(x.ctx, engine.Position{}, 10, bigRead); err == nil && len(es) > 0 {
			t.Fatalf("OpenLog of a deleted log read %d records", len(es))
		}
	} else if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("OpenLog of a deleted log: %v, want ErrNotFound or an empty log", err)
	}
	checkEntries(t, x.readAll(other, engine.Position{}, bigRead, bigRead), keep)
	if err := x.e.DeleteLog(x.ctx, logID(0)); err != nil {
		t.Fatalf("second DeleteLog: %v", err)
	}
}

// DeleteLog of a log that does not exist succeeds.
func testDeleteMissing(t *testing.T, x *env) {
	if err := x.e.DeleteLog(x.ctx, logID(9)); err != nil {
		t.Fatalf("DeleteLog of a missing log: %v", err)
	}
}

// Logs lists the logs created (and written to), not the deleted ones.
func testLogs(t *testing.T, x *env) {
	ids, err := x.e.Logs(x.ctx)
	if err != nil || len(ids) != 0 {
		t.Fatalf("Logs of a new engine = %v, %v; want none", ids, err)
	}
	want := []engine.LogID{logID(0), logID(1), logID(2), {Stream: "enginetest-other", Shard: 1}, {Stream: "enginetest-other-2", Shard: 0}}
	for _, id := range want {
		x.app(x.create(id), recs(id.String(), 1, 1))
	}
	if err := x.e.DeleteLog(x.ctx, logID(1)); err != nil {
		t.Fatal(err)
	}
	want = slices.Delete(want, 1, 2)
	checkLogs(t, x, want)
}

// checkLogs fails the test unless x's engine lists exactly the logs want.
func checkLogs(t *testing.T, x *env, want []engine.LogID) {
	t.Helper()
	got, err := x.e.Logs(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmp := func(a, b engine.LogID) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		return int(int64(a.Shard) - int64(b.Shard))
	}
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("Logs = %v, want %v", got, want)
	}
}

// After Close, the engine, its logs and its catalog fail with ErrClosed.
func testEngineClose(t *testing.T, x *env) {
	l := x.newLog()
	x.app(l, recs("a", 1, 1))
	cat := x.e.Catalog()
	if err := x.e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := x.e.CreateLog(x.ctx, logID(1))
	wantErr(t, "CreateLog after Close", err, engine.ErrClosed)
	_, err = x.e.OpenLog(x.ctx, logID(0))
	wantErr(t, "OpenLog after Close", err, engine.ErrClosed)
	_, err = x.e.Logs(x.ctx)
	wantErr(t, "Logs after Close", err, engine.ErrClosed)
	err = x.e.DeleteLog(x.ctx, logID(0))
	wantErr(t, "DeleteLog after Close", err, engine.ErrClosed)
	checkClosed(t, x, l, "a log of a closed engine")
	_, _, err = cat.Stream(x.ctx, "s")
	wantErr(t, "Catalog.Stream after Close", err, engine.ErrClosed)
	_, err = cat.PutStream(x.ctx, sampleStream("s", "id"), 0)
	wantErr(t, "Catalog.PutStream after Close", err, engine.ErrClosed)
}

// checkClosed fails the test unless every method of l but Close and
// Changed fails with ErrClosed.
func checkClosed(t *testing.T, x *env, l engine.Log, what string) {
	t.Helper()
	_, _, err := l.Append(x.ctx, recs("x", 1, 1))
	wantErr(t, "Append on "+what, err, engine.ErrClosed)
	_, _, err = l.Read(x.ctx, engine.Position{}, 1, bigRead)
	wantErr(t, "Read of "+what, err, engine.ErrClosed)
	_, err = l.SeekTime(x.ctx, 0)
	wantErr(t, "SeekTime of "+what, err, engine.ErrClosed)
	_, err = l.Info(x.ctx)
	wantErr(t, "Info of "+what, err, engine.ErrClosed)
	_, err = l.TrimBefore(x.ctx, x.clock.Millis()+1)
	wantErr(t, "TrimBefore of "+what, err, engine.ErrClosed)
	wantErr(t, "Sync of "+what, l.Sync(x.ctx), engine.ErrClosed)
	_, err = l.Seal(x.ctx)
	wantErr(t, "Seal of "+what, err, engine.ErrClosed)
	wantErr(t, "Unseal of "+what, l.Unseal(x.ctx), engine.ErrClosed)
}
