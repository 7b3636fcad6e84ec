package storage

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func fileSize(t *testing.T, f *os.File) int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWriteENOSPC fails a write halfway through: the partial batch must be
// removed, the error returned, and the log must stay usable.
func TestWriteENOSPC(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{Fsync: mode})
			want := mustAppend(t, l, []Record{{PartitionKey: "before", Data: []byte("ok")}})
			var fail atomic.Bool
			l.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
				if fail.Load() {
					n, _ := f.WriteAt(b[:len(b)/2], off) // torn write
					return n, syscall.ENOSPC
				}
				return f.WriteAt(b, off)
			}
			fail.Store(true)
			_, _, err := l.Append([]Record{{PartitionKey: "lost", Data: make([]byte, 1000)}})
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append error = %v, want ENOSPC", err)
			}
			if got := fileSize(t, l.active().f); got != int64(want[0].bend) {
				t.Fatalf("file size %d after failed write, want %d", got, want[0].bend)
			}
			if l.End().Offset != want[0].bend {
				t.Fatalf("End moved to %v", l.End())
			}
			fail.Store(false)
			want = append(want, mustAppend(t, l, []Record{{PartitionKey: "after", Data: []byte("ok")}})...)
			if want[1].pos.Offset != want[0].bend {
				t.Fatalf("retry landed at %v", want[1].pos)
			}
			checkEntries(t, readAll(t, l, 10), want)
			mustClose(t, l)
			l = mustOpen(t, dir, Options{Fsync: mode})
			defer mustClose(t, l)
			checkEntries(t, readAll(t, l, 10), want)
		})
	}
}

// TestSyncFailure fails one fdatasync: the batch it covered must be
// reported failed and discarded; earlier and later batches survive.
func TestSyncFailure(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	want := mustAppend(t, l, []Record{{PartitionKey: "a", Data: []byte("1")}})
	var fail atomic.Bool
	l.syncFile = func(f *os.File) error {
		if fail.Swap(false) {
			return syscall.EIO
		}
		return fdatasync(f)
	}
	fail.Store(true)
	if _, _, err := l.Append([]Record{{PartitionKey: "b", Data: []byte("2")}}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append error = %v, want EIO", err)
	}
	if got := fileSize(t, l.active().f); got != int64(want[0].bend) {
		t.Fatalf("file size %d after failed sync, want %d", got, want[0].bend)
	}
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "c", Data: []byte("3")}})...)
	checkEntries(t, readAll(t, l, 10), want)
	if l.LastArrival() != want[1].ms {
		t.Fatal("LastArrival wrong after sync failure")
	}
	mustClose(t, l)
	l = mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	checkEntries(t, readAll(t, l, 10), want)
}

// TestSyncFailureConcurrent fails syncs at random while many goroutines
// append. Exactly the acknowledged records must be in the log afterwards.
func TestSyncFailureConcurrent(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: 8 << 10})
	var n atomic.Int32
	l.syncFile = func(f *os.File) error {
		if n.Add(1)%4 == 0 {
			return syscall.EIO
		}
		return fdatasync(f)
	}
	var mu sync.Mutex
	acked := map[string]Position{}
	failed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				key := fmt.Sprintf("%d-%d", g, i)
				first, _, err := l.Append([]Record{{PartitionKey: key, Data: make([]byte, 100)}})
				mu.Lock()
				if err != nil {
					if !errors.Is(err, syscall.EIO) {
						t.Errorf("unexpected error %v", err)
					}
					failed++
				} else {
					acked[key] = first
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed == 0 || len(acked) == 0 {
		t.Fatalf("want both failures and successes: %d failed, %d acked", failed, len(acked))
	}
	check := func(l *Log) {
		all := readAll(t, l, 7)
		if len(all) != len(acked) {
			t.Fatalf("log holds %d records, %d acknowledged", len(all), len(acked))
		}
		for _, e := range all {
			if p, ok := acked[e.PartitionKey]; !ok || p != e.Pos {
				t.Fatalf("record %q at %v not acknowledged there (%v)", e.PartitionKey, e.Pos, p)
			}
		}
	}
	check(l)
	l.syncFile = fdatasync
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, Options{SegmentBytes: 8 << 10})
	defer mustClose(t, l)
	check(l)
}

// TestRollFailure fails the sync and the directory sync of a segment roll.
func TestRollFailure(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: 100})
	defer mustClose(t, l)
	want := mustAppend(t, l, []Record{{PartitionKey: "a", Data: make([]byte, 90)}})
	l.syncDir = func(string) error { return syscall.EIO }
	if _, _, err := l.Append([]Record{{PartitionKey: "b"}}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with failing dir sync: %v", err)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files after failed roll", n)
	}
	l.syncDir = syncDir
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "c"}})...)
	checkEntries(t, readAll(t, l, 10), want)
}

// TestSyncFailureInterval: in interval mode a failed Sync reports the error
// and keeps the (already acknowledged) data.
func TestSyncFailureInterval(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncInterval})
	defer mustClose(t, l)
	want := mustAppend(t, l, []Record{{PartitionKey: "a"}})
	l.syncFile = func(*os.File) error { return syscall.EIO }
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v", err)
	}
	l.syncFile = fdatasync
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, readAll(t, l, 10), want)
}

// TestOnSync reports every group-commit sync: the batches it made durable
// and, for a failed one, its error.
func TestOnSync(t *testing.T) {
	type call struct {
		batches int
		err     error
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	l := mustOpen(t, t.TempDir(), Options{OnSync: func(_ time.Duration, batches int, err error) {
		mu.Lock()
		calls = append(calls, call{batches, err})
		mu.Unlock()
	}})
	mustAppend(t, l, []Record{{PartitionKey: "a", Data: []byte("1")}})
	var fail atomic.Bool
	l.syncFile = func(f *os.File) error {
		if fail.Swap(false) {
			return syscall.EIO
		}
		return fdatasync(f)
	}
	fail.Store(true)
	if _, _, err := l.Append([]Record{{PartitionKey: "b", Data: []byte("2")}}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append error = %v, want EIO", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0].batches != 1 || calls[0].err != nil || calls[1].batches != 1 || !errors.Is(calls[1].err, syscall.EIO) {
		t.Fatalf("OnSync calls %+v, want one good sync of 1 batch and one failed", calls)
	}
}
