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
	defer e.Close()
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
