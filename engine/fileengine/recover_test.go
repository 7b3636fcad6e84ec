package fileengine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

// TestRecoveryAfterUncleanEnd: without the clean-shutdown marker (a crash),
// Open cuts a torn tail off every log before it returns; after a clean
// Close it leaves the logs alone until their first use, which repairs the
// same damage then. Either way the records before the damage read back.
func TestRecoveryAfterUncleanEnd(t *testing.T) {
	for _, clean := range []bool{false, true} {
		name := map[bool]string{false: "crash", true: "clean"}[clean]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			e, err := Open(Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			id := engine.LogID{Stream: "0123456789abcdef", Shard: 0}
			l, err := e.CreateLog(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, _, err := l.Append(ctx, makeRecs("k", i+1)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err != nil {
				t.Fatalf("clean Close left no marker: %v", err)
			}
			if !clean {
				if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
					t.Fatal(err)
				}
			}
			seg := filepath.Join(dir, "streams", id.Stream, shardName(0), "00000000000000000000.log")
			st, err := os.Stat(seg)
			if err != nil {
				t.Fatal(err)
			}
			good := st.Size()
			f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("SL\x01\x00torn batch")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			e, err = Open(Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, e)
			if _, err := os.Stat(filepath.Join(dir, cleanMarker)); !os.IsNotExist(err) {
				t.Fatalf("Open kept the clean marker (%v): a crash now would go unnoticed", err)
			}
			st, err = os.Stat(seg)
			if err != nil {
				t.Fatal(err)
			}
			if clean && st.Size() == good {
				t.Fatalf("after a clean close Open repaired the log eagerly")
			}
			if !clean && st.Size() != good {
				t.Fatalf("after a crash Open left %d bytes, want the %d valid ones", st.Size(), good)
			}
			l, err = e.OpenLog(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := l.Read(ctx, engine.Position{}, 100, 1<<20)
			if err != nil || len(got) != 6 {
				t.Fatalf("read %d records, %v; want 6", len(got), err)
			}
			if st, err = os.Stat(seg); err != nil || st.Size() != good {
				t.Fatalf("after first use the log has %d bytes (%v), want %d", st.Size(), err, good)
			}
		})
	}
}
