package fileengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

// TestCreateLogExists: CreateLog refuses an id in use and a directory left
// on disk (an orphan a reshard must not reopen).
func TestCreateLogExists(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	if _, err := e.CreateLog(ctx, lid("s", 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateLog(ctx, lid("s", 0)); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("CreateLog twice = %v, want ErrExists", err)
	}
	if _, err := e.OpenLog(ctx, lid("s", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateLog(ctx, lid("s", 1)); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("CreateLog of an opened id = %v, want ErrExists", err)
	}
	orphan := filepath.Join(e.cfg.Dir, "streams", "s", shardName(7))
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateLog(ctx, lid("s", 7)); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("CreateLog over an orphan directory = %v, want ErrExists", err)
	}
	// After a restart the created log's directory still blocks CreateLog.
	e = reopen(t, e)
	if _, err := e.CreateLog(ctx, lid("s", 0)); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("CreateLog after restart = %v, want ErrExists", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\\b"} {
		if _, err := e.CreateLog(ctx, lid(bad, 0)); err == nil {
			t.Fatalf("CreateLog(%q) succeeded", bad)
		}
		if _, err := e.OpenLog(ctx, lid(bad, 0)); err == nil {
			t.Fatalf("OpenLog(%q) succeeded", bad)
		}
	}
}

// TestLogsAndDelete: Logs lists shard directories (orphans included) and
// created logs; DeleteLog removes them and fails old handles.
func TestLogsAndDelete(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	streams := filepath.Join(e.cfg.Dir, "streams")
	for _, d := range []string{"orph/" + shardName(3), "orph/" + shardName(12), "orph/notashard", "orph/shardId-12"} {
		if err := os.MkdirAll(filepath.Join(streams, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(streams, "orph", shardName(99)), nil, 0o644); err != nil { // a file, not a log
		t.Fatal(err)
	}
	l, _ := e.CreateLog(ctx, lid("live", 0))
	appendT(t, l, makeRecs("d", 2))
	l1, _ := e.CreateLog(ctx, lid("live", 1))
	// A created log whose directory vanished is still listed.
	if err := os.Remove(filepath.Join(streams, "live", shardName(1))); err != nil {
		t.Fatal(err)
	}
	ids, err := e.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sortIDs(ids)
	want := []engine.LogID{lid("live", 0), lid("live", 1), lid("orph", 3), lid("orph", 12)}
	if !slices.Equal(ids, want) {
		t.Fatalf("Logs = %v, want %v", ids, want)
	}
	ch := l.Changed()
	l2, _ := e.OpenLog(ctx, lid("live", 0))
	if err := e.DeleteLog(ctx, lid("live", 0)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ch) || !isClosed(l2.Changed()) {
		t.Fatal("DeleteLog did not close Changed")
	}
	if _, _, err := l.Append(ctx, makeRecs("x", 1)); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Append after DeleteLog = %v, want ErrClosed", err)
	}
	if _, _, err := l2.Read(ctx, engine.Position{}, 1, 0); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Read after DeleteLog = %v, want ErrClosed", err)
	}
	if _, err := l2.Seal(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Seal after DeleteLog = %v, want ErrClosed", err)
	}
	if _, err := l.TrimBefore(ctx, 1); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("TrimBefore after DeleteLog = %v, want ErrClosed", err)
	}
	if e.OpenLogs() != 0 {
		t.Fatalf("OpenLogs after DeleteLog = %d", e.OpenLogs())
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []engine.LogID{lid("live", 1), lid("orph", 3), lid("orph", 12), lid("never", 5)} {
		if err := e.DeleteLog(ctx, id); err != nil {
			t.Fatalf("DeleteLog(%v): %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(streams, "live")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty stream directory not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(streams, "orph")); err != nil { // still holds junk
		t.Fatalf("stream directory with other files removed: %v", err)
	}
	if ids, _ := e.Logs(ctx); len(ids) != 0 {
		t.Fatalf("Logs after deleting all = %v", ids)
	}
	// The id can be opened afresh (empty).
	l3, _ := e.OpenLog(ctx, lid("live", 0))
	if in, err := l3.Info(ctx); err != nil || in.End != (engine.Position{}) {
		t.Fatalf("Info of a re-opened deleted log = %+v, %v", in, err)
	}
}

func sortIDs(ids []engine.LogID) {
	slices.SortFunc(ids, func(a, b engine.LogID) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		return int(a.Shard) - int(b.Shard)
	})
}

// TestHandleClose: a closed handle fails; other handles of the log work.
func TestHandleClose(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	l, _ := e.CreateLog(ctx, lid("h", 0))
	l2, _ := e.OpenLog(ctx, lid("h", 0))
	want := appendT(t, l, makeRecs("h", 2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second handle Close: %v", err)
	}
	if _, _, err := l.Append(ctx, makeRecs("x", 1)); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Append on a closed handle = %v", err)
	}
	checkEntries(t, readAll(t, l2, 10), want)
}

// TestEngineClose: after Close every method fails with ErrClosed and
// Changed channels are closed.
func TestEngineClose(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	l, _ := e.CreateLog(ctx, lid("c", 0))
	appendT(t, l, makeRecs("c", 1))
	ch := l.Changed()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !isClosed(ch) {
		t.Fatal("Close did not close Changed")
	}
	if e.OpenLogs() != 0 {
		t.Fatalf("OpenLogs after Close = %d", e.OpenLogs())
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("%s after Close = %v, want ErrClosed", what, err)
		}
	}
	_, _, err := l.Append(ctx, makeRecs("c", 1))
	check("Append", err)
	_, _, err = l.Read(ctx, engine.Position{}, 1, 0)
	check("Read", err)
	_, err = l.Info(ctx)
	check("Info", err)
	_, err = e.CreateLog(ctx, lid("c", 1))
	check("CreateLog", err)
	_, err = e.OpenLog(ctx, lid("c", 0))
	check("OpenLog", err)
	_, err = e.Logs(ctx)
	check("Logs", err)
	check("DeleteLog", e.DeleteLog(ctx, lid("c", 0)))
	_, err = e.Catalog().Streams(ctx)
	check("Streams", err)
	_, err = e.Catalog().PutStream(ctx, sampleStream("x"), 0)
	check("PutStream", err)
	_, _, err = e.Catalog().Account(ctx)
	check("Account", err)
}
