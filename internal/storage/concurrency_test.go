package storage

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentAppendRead runs appenders and tailing readers together.
// Every acknowledged record must be read exactly once, in one order that
// all readers agree on.
func TestConcurrentAppendRead(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			l := mustOpen(t, t.TempDir(), Options{Fsync: mode, SegmentBytes: 32 << 10})
			defer mustClose(t, l)
			const appenders, perAppender, readers = 8, 60, 4
			var acked sync.Map // key -> Position
			var done atomic.Bool
			var wg sync.WaitGroup
			seen := make([][]Entry, readers)
			for r := 0; r < readers; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pos := Position{}
					for {
						finished := done.Load()
						es, next, err := l.Read(pos, 1+r*17, 0)
						if err != nil {
							t.Error(err)
							return
						}
						end := l.End()
						for _, e := range es {
							if !e.Pos.Less(end) {
								t.Errorf("read record %v beyond committed end %v", e.Pos, end)
							}
						}
						if len(es) > 0 {
							// exercise the index lookups concurrently with appends
							if p := l.SeekTime(es[0].ArrivalMillis); es[0].Pos.Less(p) {
								t.Errorf("SeekTime(%d) = %v, after record %v", es[0].ArrivalMillis, p, es[0].Pos)
							}
						}
						seen[r] = append(seen[r], es...)
						pos = next
						if len(es) == 0 && finished {
							return
						}
					}
				}()
			}
			var awg sync.WaitGroup
			for a := 0; a < appenders; a++ {
				awg.Add(1)
				go func() {
					defer awg.Done()
					for i := 0; i < perAppender; i++ {
						n := 1 + (a+i)%5
						recs := make([]Record, n)
						for j := range recs {
							recs[j] = Record{PartitionKey: fmt.Sprintf("%d-%d-%d", a, i, j), Data: bytes.Repeat([]byte{byte(a)}, 50*j)}
						}
						first, _, err := l.Append(recs)
						if err != nil {
							t.Error(err)
							return
						}
						for j := range recs {
							acked.Store(recs[j].PartitionKey, Position{Offset: first.Offset, Index: first.Index + uint16(j)})
						}
					}
				}()
			}
			awg.Wait()
			done.Store(true)
			wg.Wait()

			all := readAll(t, l, 1000)
			n := 0
			acked.Range(func(_, _ any) bool { n++; return true })
			if len(all) != n {
				t.Fatalf("read %d records, acknowledged %d", len(all), n)
			}
			keys := map[string]bool{}
			for i, e := range all {
				if keys[e.PartitionKey] {
					t.Fatalf("duplicate %q", e.PartitionKey)
				}
				keys[e.PartitionKey] = true
				p, ok := acked.Load(e.PartitionKey)
				if !ok || p.(Position) != e.Pos {
					t.Fatalf("record %q at %v, acknowledged at %v", e.PartitionKey, e.Pos, p)
				}
				var a, b, j int
				if _, err := fmt.Sscanf(e.PartitionKey, "%d-%d-%d", &a, &b, &j); err != nil {
					t.Fatalf("record key %q: %v", e.PartitionKey, err)
				}
				if !bytes.Equal(e.Data, bytes.Repeat([]byte{byte(a)}, 50*j)) {
					t.Fatalf("record %q has wrong data", e.PartitionKey)
				}
				if i > 0 && !all[i-1].Pos.Less(e.Pos) {
					t.Fatal("positions not increasing")
				}
			}
			for r := range seen {
				if len(seen[r]) != len(all) {
					t.Fatalf("reader %d saw %d records, want %d", r, len(seen[r]), len(all))
				}
				for i := range seen[r] {
					if seen[r][i].Pos != all[i].Pos || seen[r][i].PartitionKey != all[i].PartitionKey {
						t.Fatalf("reader %d disagrees at %d", r, i)
					}
				}
			}
		})
	}
}

// TestReadersSeeOnlyDurable holds an fdatasync open and checks that the
// written batch stays invisible until it completes; meanwhile other
// appenders write and share the next sync (group commit).
func TestReadersSeeOnlyDurable(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	defer mustClose(t, l)
	base := mustAppend(t, l, []Record{{PartitionKey: "durable"}})
	var syncs atomic.Int32
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	l.syncFile = func(f *os.File) error {
		if syncs.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		return fdatasync(f)
	}
	errs := make(chan error, 10)
	go func() {
		_, _, err := l.Append([]Record{{PartitionKey: "leader"}})
		errs <- err
	}()
	<-entered // the leader's batch is written, its sync is blocked
	const followers = 5
	for i := 0; i < followers; i++ {
		go func() {
			_, _, err := l.Append([]Record{{PartitionKey: "follower"}})
			errs <- err
		}()
	}
	// Wait until all followers have written (appends continue during sync).
	for {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 1+followers {
			break
		}
		runtime.Gosched()
	}
	es, _, err := l.Read(Position{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, es, base)
	if l.End().Offset != base[0].bend || l.LastArrival() != base[0].ms {
		t.Fatalf("End %v / LastArrival moved before sync", l.End())
	}
	close(release)
	for i := 0; i < 1+followers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := syncs.Load(); n != 2 {
		t.Fatalf("%d syncs for %d appends, want 2 (group commit)", n, 1+followers)
	}
	if es := readAll(t, l, 100); len(es) != 2+followers {
		t.Fatalf("read %d records after sync", len(es))
	}
}

// TestConcurrentTrim trims segments while appenders and readers run.
func TestConcurrentTrim(t *testing.T) {
	clock := &fakeClock{ms: 1}
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncInterval, SegmentBytes: 2048, Now: clock.Now})
	defer mustClose(t, l)
	var done atomic.Bool
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pos := Position{}
			for !done.Load() {
				es, next, err := l.Read(pos, 10, 0)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range es {
					if e.Pos.Less(pos) {
						t.Errorf("went backwards: %v < %v", e.Pos, pos)
					}
					pos = e.Pos
				}
				pos = next
				l.Oldest()
				l.End()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if _, err := l.TrimBefore(l.LastArrival() - 5); err != nil {
				t.Error(err)
			}
			if err := l.Sync(); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		clock.Add(1)
		if _, _, err := l.Append([]Record{{PartitionKey: "k", Data: make([]byte, 100)}}); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	es := readAll(t, l, 100)
	if len(es) == 0 || es[0].Pos != l.Oldest() || es[len(es)-1].ArrivalMillis != l.LastArrival() {
		t.Fatal("inconsistent log after concurrent trims")
	}
}
