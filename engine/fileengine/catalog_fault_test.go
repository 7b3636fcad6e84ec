package fileengine

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

// TestPutStreamDirSyncFails: when the catalog file was renamed into place
// but fsyncing its directory fails, PutStream fails and the old record is
// what the catalog holds, in memory and on disk after a reopen. When even
// the undo fails, later writes of the name are refused.
func TestPutStreamDirSyncFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cat := e.Catalog()
	v1, err := cat.PutStream(ctx, engine.StreamMeta{Name: "s", ID: "a1", Status: "ACTIVE"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fails atomic.Int32 // how many directory syncs of the catalog fail from now on
	failSyncDir = func(d string) error {
		if strings.Contains(d, "catalog") && fails.Add(-1) >= 0 {
			return errors.New("injected: fsync of directory failed")
		}
		return nil
	}
	t.Cleanup(func() { failSyncDir = nil })

	fails.Store(1) // the write's sync fails; the undo's succeeds
	if _, err := cat.PutStream(ctx, engine.StreamMeta{Name: "s", ID: "a1", Status: "UPDATING"}, v1); err == nil {
		t.Fatal("PutStream succeeded although its directory sync failed")
	}
	if m, v, err := cat.Stream(ctx, "s"); err != nil || v != v1 || m.Status != "ACTIVE" {
		t.Fatalf("after the failed write: %+v v%d %v; want the ACTIVE record at v%d", m, v, err, v1)
	}
	if _, err := cat.PutStream(ctx, engine.StreamMeta{Name: "new", ID: "b1"}, 0); err != nil {
		t.Fatal(err)
	}
	fails.Store(1)
	if _, err := cat.PutStream(ctx, engine.StreamMeta{Name: "fresh", ID: "c1"}, 0); err == nil {
		t.Fatal("create succeeded although its directory sync failed")
	}
	if _, _, err := cat.Stream(ctx, "fresh"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a failed create left a record: %v", err)
	}

	fails.Store(2) // the write's sync and the undo's sync fail
	if _, err := cat.PutStream(ctx, engine.StreamMeta{Name: "s", ID: "a1", Status: "DELETING"}, v1); err == nil {
		t.Fatal("PutStream succeeded although its directory sync failed")
	}
	if _, err := cat.PutStream(ctx, engine.StreamMeta{Name: "s", ID: "a1", Status: "ACTIVE"}, v1); err == nil {
		t.Fatal("a write after a failed undo was accepted")
	}
	failSyncDir = nil
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart the file is the truth again (here: the old record,
	// which the undo's write put back before its sync failed).
	e, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, e)
	m, v, err := e.Catalog().Stream(ctx, "s")
	if err != nil || m.Status != "ACTIVE" {
		t.Fatalf("after reopen: %+v v%d %v", m, v, err)
	}
	if _, err := e.Catalog().PutStream(ctx, m, v); err != nil {
		t.Fatalf("after reopen writes work again: %v", err)
	}
	if _, _, err := e.Catalog().Stream(ctx, "fresh"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("after reopen the failed create is there: %v", err)
	}
}

// TestFirstOpenSyncsDirectoryNames: before the first record of a new log is
// acknowledged, the names of its directory and of its stream's directory
// are fsynced (the storage layer syncs only the names of segment files).
func TestFirstOpenSyncsDirectoryNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, e)
	var synced []string
	failSyncDir = func(d string) error { synced = append(synced, d); return nil }
	t.Cleanup(func() { failSyncDir = nil })
	id := engine.LogID{Stream: "00112233aabbccdd", Shard: 7}
	l, err := e.CreateLog(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Append(ctx, makeRecs("k", 1)); err != nil {
		t.Fatal(err)
	}
	failSyncDir = nil
	want := map[string]bool{e.streamsDir + "/" + id.Stream: false, e.streamsDir: false}
	for _, d := range synced {
		if _, ok := want[d]; ok {
			want[d] = true
		}
	}
	for d, ok := range want {
		if !ok {
			t.Errorf("directory %s was not synced before the first append returned (synced: %v)", d, synced)
		}
	}
}

// TestFirstAppendFailsWhenDirectorySyncFails: if the directory names cannot
// be made durable, the first append is refused (nothing acknowledged that a
// crash could take away), and a later one succeeds once syncing works.
func TestFirstAppendFailsWhenDirectorySyncFails(t *testing.T) {
	for _, which := range []string{"stream", "streams"} {
		t.Run(which, func(t *testing.T) {
			ctx := context.Background()
			e, err := Open(Config{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, e)
			id := engine.LogID{Stream: "00112233aabbccdd", Shard: 1}
			target := e.streamsDir
			if which == "stream" {
				target += "/" + id.Stream
			}
			failSyncDir = func(d string) error {
				if d == target {
					return errors.New("injected: fsync of directory failed")
				}
				return nil
			}
			t.Cleanup(func() { failSyncDir = nil })
			l, err := e.CreateLog(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.Append(ctx, makeRecs("k", 1)); err == nil {
				t.Fatal("the first append succeeded although its directory could not be synced")
			}
			failSyncDir = nil
			if _, _, err := l.Append(ctx, makeRecs("k", 1)); err != nil {
				t.Fatalf("append after syncing works again: %v", err)
			}
		})
	}
}
