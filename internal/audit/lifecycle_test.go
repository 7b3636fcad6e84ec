package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A rotation that fails (path.1 is a non-empty directory, so the rename onto
// it fails) loses the records that would pass MaxBytes, keeps the file within
// its bound, and is retried with the next record.
func TestRotateFailureRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		path := filepath.Join(t.TempDir(), "audit.log")
		l := lineLen(t)
		w, err := Open(path, Options{MaxBytes: 2 * l, MaxFiles: 1, Logger: zap.New(core), Now: fixedClock})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(path+".1", "in-the-way"), 0o700); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			w.Write(rec(i))
		}
		synctest.Wait()
		wantStats(t, w, 2, 0, 2) // 0 and 1 fit; 2 and 3 needed the rotation
		e := checkLogs(t, logs, 1)[0]
		if e.ContextMap()["op"] != "rotate" {
			t.Errorf("logged %v", e.ContextMap())
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != 2*l {
			t.Fatalf("file past its bound: %v %v", fi.Size(), err)
		}

		if err := os.RemoveAll(path + ".1"); err != nil {
			t.Fatal(err)
		}
		w.Write(rec(4))
		mustClose(t, w)
		wantStats(t, w, 3, 0, 2)
		if got := fileIDs(t, path+".1"); !slices.Equal(got, ids(0, 2)) {
			t.Errorf("rotated: %v", got)
		}
		if got := fileIDs(t, path); !slices.Equal(got, ids(4, 5)) {
			t.Errorf("current: %v", got)
		}
	})
}

// Writes to /dev/full fail with ENOSPC: counted and logged, never rotated.
func TestDevFull(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/dev/full is Linux's")
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	w, err := Open("/dev/full", Options{Logger: zap.New(core), Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Write(rec(i))
	}
	mustClose(t, w)
	wantStats(t, w, 0, 0, 3)
	if e := checkLogs(t, logs, 1)[0]; !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), syscall.ENOSPC.Error()) {
		t.Errorf("logged %v", e.ContextMap())
	}
}

// The file is moved away (logrotate's way): the writer notices before its
// next write and creates path again.
func TestExternalRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.log")
		w, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(rec(0))
		synctest.Wait()
		if err := os.Rename(path, path+".old"); err != nil {
			t.Fatal(err)
		}
		w.Write(rec(1))
		synctest.Wait()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		w.Write(rec(2))
		mustClose(t, w)
		wantStats(t, w, 3, 0, 0)
		if got := fileIDs(t, path+".old"); !slices.Equal(got, ids(0, 1)) {
			t.Errorf("moved file: %v", got)
		}
		if got := fileIDs(t, path); !slices.Equal(got, ids(2, 3)) {
			t.Errorf("new file: %v", got)
		}
	})
}

func TestCloseDrains(t *testing.T) {
	g := newGate()
	w := New(g, Options{Buffer: 10000})
	w.Write(rec(0))
	<-g.entered
	for i := 1; i < 5000; i++ {
		w.Write(rec(i))
	}
	if s := w.Stats(); s.Queued != 4999 {
		t.Fatalf("queued %d, want 4999", s.Queued)
	}
	close(g.release)
	mustClose(t, w)
	goleak.VerifyNone(t) // the writer goroutine has ended
	wantStats(t, w, 5000, 0, 0)
	if got := requestIDs(t, g.buf.Bytes()); !slices.Equal(got, ids(0, 5000)) {
		t.Errorf("%d records written, want 5000 in order", len(got))
	}

	mustClose(t, w) // again: a no-op
	w.Write(rec(5000))
	wantStats(t, w, 5000, 1, 0)
}

func TestConcurrentWrites(t *testing.T) {
	const writers, each = 64, 100
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := Open(path, Options{Buffer: writers * each, MaxBytes: 256 << 10, MaxFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w.Write(rec(g*each + i))
				_ = w.Stats()
			}
		})
	}
	wg.Wait()
	mustClose(t, w)
	wantStats(t, w, writers*each, 0, 0)
	files, _ := filepath.Glob(path + "*")
	var got []string
	for _, f := range files {
		got = append(got, fileIDs(t, f)...)
	}
	slices.Sort(got)
	if !slices.Equal(got, ids(0, writers*each)) {
		t.Errorf("%d distinct records in %d files, want each of %d once", len(slices.Compact(got)), len(files), writers*each)
	}
}

// Close racing with Writes: every record is written or counted dropped, and
// none is written after Close returns.
func TestCloseDuringWrites(t *testing.T) {
	const writers, each = 16, 500
	var out lockedCount
	w := New(&out, Options{Buffer: 64})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				w.Write(rec(g*each + i))
			}
		})
	}
	close(start)
	mustClose(t, w)
	lines := out.lines()
	wg.Wait()
	s := w.Stats()
	if s.Written+s.Dropped+s.Failed != writers*each || s.Written != lines || out.lines() != lines {
		t.Errorf("stats %+v, lines %d then %d; want a total of %d", s, lines, out.lines(), writers*each)
	}
}

type lockedCount struct {
	mu sync.Mutex
	n  int64
}

func (c *lockedCount) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			c.n++
		}
	}
	return len(p), nil
}

func (c *lockedCount) lines() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// An encoding failure (a value encoding/json rejects) loses that record
// only, and its log line does not quote the value.
func TestEncodeFailure(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	var out lockedCount
	w := New(&out, Options{Logger: zap.New(core)})
	bad := rec(0)
	bad.RequestParameters = map[string]any{"SECRET": func() {}}
	w.Write(bad)
	w.Write(rec(1))
	mustClose(t, w)
	wantStats(t, w, 1, 0, 1)
	checkLogs(t, logs, 1)
}
