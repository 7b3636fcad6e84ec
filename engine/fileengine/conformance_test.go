package fileengine_test

import (
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/enginetest"
	"github.com/shoalstream/shoal/engine/fileengine"
)

// TestConformance runs the engine conformance suite, durability tests
// included, against file engines in temporary directories.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  fileengine.Config
	}{
		{"always", fileengine.Config{Fsync: fileengine.FsyncAlways}},
		// Small segments and a tight open-log bound exercise rolls, trims
		// and transparent reopening under the suite's tests.
		{"small", fileengine.Config{Fsync: fileengine.FsyncInterval, FsyncInterval: time.Millisecond, SegmentBytes: 4096, MaxOpenLogs: 2, IdleTimeout: 5 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) { runConformance(t, c.cfg) })
	}
}

func runConformance(t *testing.T, base fileengine.Config) {
	type opened struct {
		dir string
		now func() time.Time
	}
	var mu sync.Mutex
	dirs := map[engine.Engine]opened{}
	open := func(t *testing.T, o opened) engine.Engine {
		cfg := base
		cfg.Dir, cfg.Now = o.dir, o.now
		e, err := fileengine.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		mu.Lock()
		dirs[e] = o
		mu.Unlock()
		return e
	}
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T, now func() time.Time) engine.Engine {
			return open(t, opened{t.TempDir(), now})
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
			mu.Lock()
			o := dirs[e]
			mu.Unlock()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, o)
		},
	})
}
