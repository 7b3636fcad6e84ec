package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPositionCompare(t *testing.T) {
	ps := []Position{{Offset: 0, Index: 0}, {Offset: 0, Index: 1}, {Offset: 0, Index: 65535}, {Offset: 1, Index: 0}, {Offset: 1 << 55, Index: 3}}
	for i, p := range ps {
		for j, q := range ps {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", p, q, got, want)
			}
			if p.Less(q) != (want < 0) {
				t.Errorf("%v.Less(%v) wrong", p, q)
			}
		}
	}
	if s := (Position{Offset: 12, Index: 3}).String(); s != "12:3" {
		t.Errorf("String = %q", s)
	}
}

func TestParseFsyncMode(t *testing.T) {
	for _, m := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		got, err := ParseFsyncMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseFsyncMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseFsyncMode("sometimes"); err == nil {
		t.Error("ParseFsyncMode accepted junk")
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{ms: 1_000}
	opts := Options{SegmentBytes: 256 << 10, Now: clock.Now}
	l := mustOpen(t, dir, opts)
	rng := rand.New(rand.NewPCG(1, 2))
	var want []written
	// Special records first: empty data, a 1 MiB record, long key, binary.
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "k"}, {PartitionKey: "e", Data: []byte{}}})...)
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: strings.Repeat("x", 256), Data: bytes.Repeat([]byte{0xAB}, 1<<20)}})...)
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "\x00\xff", Data: bin}})...)
	for i := 0; i < 300; i++ {
		clock.Add(int64(rng.IntN(3)))
		n := 1 + rng.IntN(40)
		if i%50 == 0 {
			n = 500
		}
		want = append(want, mustAppend(t, l, randRecords(rng, n, 300))...)
	}
	if len(segFiles(t, dir)) < 5 {
		t.Fatalf("expected several segments, got %d", len(segFiles(t, dir)))
	}
	for _, step := range []int{1, 7, 1000, 0} {
		checkEntries(t, readAll(t, l, step), want)
	}
	if got := l.End(); got.Offset != want[len(want)-1].bend || got.Index != 0 {
		t.Fatalf("End = %v, want %d:0", got, want[len(want)-1].bend)
	}
	if got := l.LastArrival(); got != want[len(want)-1].ms {
		t.Fatalf("LastArrival = %d, want %d", got, want[len(want)-1].ms)
	}
	// Nothing was trimmed, so the segment files hold every byte up to End.
	if files := diskBytes(t, dir); uint64(files) != l.End().Offset {
		t.Fatalf("End = %v, files hold %d bytes", l.End(), files)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkEntries(t, readAll(t, l, 100), want)
	if got := l.LastArrival(); got != want[len(want)-1].ms {
		t.Fatalf("LastArrival after reopen = %d, want %d", got, want[len(want)-1].ms)
	}
	more := mustAppend(t, l, []Record{{PartitionKey: "after", Data: []byte("reopen")}})
	if more[0].pos.Offset != want[len(want)-1].bend {
		t.Fatalf("append after reopen at %v, want offset %d", more[0].pos, want[len(want)-1].bend)
	}
	checkEntries(t, readAll(t, l, 100), append(want, more...))
}

func TestArrivalMonotonic(t *testing.T) {
	clock := &fakeClock{ms: 5_000}
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncNever, Now: clock.Now})
	defer mustClose(t, l)
	_, a, _ := l.Append([]Record{{PartitionKey: "a"}})
	clock.Set(4_000) // clock steps back
	_, b, _ := l.Append([]Record{{PartitionKey: "b"}})
	clock.Set(6_000)
	_, c, _ := l.Append([]Record{{PartitionKey: "c"}})
	if a != 5_000 || b != 5_000 || c != 6_000 {
		t.Fatalf("arrivals %d %d %d", a, b, c)
	}
}

func TestReadLimits(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncNever, SegmentBytes: 4096})
	defer mustClose(t, l)
	var want []written
	for i := 0; i < 50; i++ {
		recs := make([]Record, 1+i%5)
		for j := range recs {
			recs[j] = Record{PartitionKey: "kk", Data: bytes.Repeat([]byte{byte(i)}, 8+j)}
		}
		want = append(want, mustAppend(t, l, recs)...)
	}
	// maxRecords bounds the count exactly.
	es, next, err := l.Read(Position{}, 3, 0)
	if err != nil || len(es) != 3 {
		t.Fatalf("read 3: %d entries, %v", len(es), err)
	}
	if next != (Position{Offset: want[3].pos.Offset, Index: want[3].pos.Index}) && next != (Position{Offset: want[2].bend}) {
		t.Fatalf("next = %v, want position of record 3 (%v)", next, want[3].pos)
	}
	// maxBytes: 2+8 = 10 bytes for the first record, 10+... for the others.
	for _, mb := range []int{1, 10, 11, 21, 22, 35, 100, 1000} {
		var got []Entry
		pos := Position{}
		for {
			es, nx, err := l.Read(pos, 0, mb)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			sum := 0
			for _, e := range es {
				sum += len(e.PartitionKey) + len(e.Data)
			}
			if len(es) > 1 && sum > mb {
				t.Fatalf("maxBytes %d: returned %d bytes in %d records", mb, sum, len(es))
			}
			if len(es) == 1 && sum > mb {
				// allowed: one record always returned
			} else if nx.Offset < want[len(want)-1].bend {
				// a further record must not have fit
				idx := len(got) + len(es)
				w := want[idx]
				if sum+len(w.rec.PartitionKey)+len(w.rec.Data) <= mb {
					t.Fatalf("maxBytes %d: stopped early after %d bytes", mb, sum)
				}
			}
			got = append(got, es...)
			pos = nx
		}
		checkEntries(t, got, want)
	}
	// Returned data must not alias: mutate and re-read.
	es, _, _ = l.Read(Position{}, 10, 0)
	for _, e := range es {
		for i := range e.Data {
			e.Data[i] ^= 0xFF
		}
		_ = append(e.Data, 1, 2, 3) // capacity is clipped: must not clobber neighbours
	}
	checkEntries(t, readAll(t, l, 10), want)
}

// TestReadFromAnywhere reads from every offset (and several indexes) of a
// log with segment rolls and a gap, comparing with a brute-force answer.
func TestReadFromAnywhere(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Fsync: FsyncNever, SegmentBytes: 600}
	l := mustOpen(t, dir, opts)
	rng := rand.New(rand.NewPCG(3, 4))
	var want []written
	for i := 0; i < 40; i++ {
		want = append(want, mustAppend(t, l, randRecords(rng, 1+rng.IntN(4), 20))...)
	}
	mustClose(t, l)
	// Cut a middle segment in half to create a gap.
	files := segFiles(t, dir)
	if len(files) < 4 {
		t.Fatalf("want >= 4 segments, got %d", len(files))
	}
	victim := files[1]
	base, _ := parseSegmentName(filepath.Base(victim))
	fi, _ := os.Stat(victim)
	if err := os.Truncate(victim, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	// Expected survivors: records whose batch lies outside the lost part.
	var keep []written
	for _, w := range want {
		if w.pos.Offset >= base && w.bend > base+uint64(fi.Size()/2) && w.pos.Offset < base+uint64(fi.Size()) {
			continue
		}
		keep = append(keep, w)
	}
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	all := readAll(t, l, 3)
	// The truncated segment keeps the batches wholly before the cut.
	checkEntries(t, all, keep)
	end := l.End().Offset
	for off := uint64(0); off <= end+3; off++ {
		for _, idx := range []uint16{0, 1, 3, 65535} {
			from := Position{Offset: off, Index: idx}
			es, next, err := l.Read(from, 2, 0)
			if err != nil {
				t.Fatalf("read %v: %v", from, err)
			}
			// brute force: first kept record >= from
			k := 0
			for k < len(all) && all[k].Pos.Less(from) {
				k++
			}
			if k == len(all) {
				if len(es) != 0 {
					t.Fatalf("read %v: got %d records past end", from, len(es))
				}
				if next.Less(from) {
					t.Fatalf("read %v: next %v went backwards", from, next)
				}
				continue
			}
			if len(es) == 0 || es[0].Pos != all[k].Pos {
				t.Fatalf("read %v: got %v, want first %v", from, es, all[k].Pos)
			}
			if len(es) == 2 && es[1].Pos != all[k+1].Pos {
				t.Fatalf("read %v: second %v want %v", from, es[1].Pos, all[k+1].Pos)
			}
		}
	}
}

func TestSeekTime(t *testing.T) {
	clock := &fakeClock{ms: 100}
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncNever, SegmentBytes: 64 << 10, Now: clock.Now})
	defer mustClose(t, l)
	if got := l.SeekTime(0); got != l.End() {
		t.Fatalf("SeekTime on empty log = %v", got)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var want []written
	for i := 0; i < 3000; i++ {
		if rng.IntN(4) == 0 {
			clock.Add(int64(rng.IntN(5)))
		}
		want = append(want, mustAppend(t, l, randRecords(rng, 1+rng.IntN(3), 60))...)
	}
	last := want[len(want)-1].ms
	for ms := int64(0); ms <= last+2; ms++ {
		got := l.SeekTime(ms)
		exp := l.End()
		for _, w := range want {
			if w.ms >= ms {
				exp = w.pos
				break
			}
		}
		if got != exp {
			t.Fatalf("SeekTime(%d) = %v, want %v", ms, got, exp)
		}
	}
}

func TestTrimBefore(t *testing.T) {
	clock := &fakeClock{ms: 1000}
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{Fsync: FsyncInterval, SegmentBytes: 1024, Now: clock.Now})
	defer mustClose(t, l)
	var want []written
	for i := 0; i < 100; i++ {
		clock.Add(10)
		want = append(want, mustAppend(t, l, []Record{{PartitionKey: "p", Data: bytes.Repeat([]byte{1}, 90)}})...)
	}
	nseg := len(segFiles(t, dir))
	if n, err := l.TrimBefore(0); err != nil || n != 0 {
		t.Fatalf("TrimBefore(0) = %d, %v", n, err)
	}
	cut := want[len(want)/2].ms
	size := diskBytes(t, dir)
	n, err := l.TrimBefore(cut)
	if err != nil || n == 0 {
		t.Fatalf("TrimBefore = %d, %v", n, err)
	}
	if len(segFiles(t, dir)) != nseg-n {
		t.Fatalf("%d files left, want %d", len(segFiles(t, dir)), nseg-n)
	}
	if diskBytes(t, dir) >= size {
		t.Fatal("the segment files did not shrink")
	}
	oldest := l.Oldest()
	all := readAll(t, l, 50)
	if all[0].Pos != oldest {
		t.Fatalf("first record %v, Oldest %v", all[0].Pos, oldest)
	}
	// Everything before the cut is gone only in whole segments; everything
	// at or after it is kept.
	k := 0
	for want[k].pos != oldest {
		if want[k].ms >= cut {
			t.Fatalf("trimmed record %v with arrival %d >= %d", want[k].pos, want[k].ms, cut)
		}
		k++
	}
	checkEntries(t, all, want[k:])
	// Trimming everything keeps the active segment.
	if _, err := l.TrimBefore(1 << 60); err != nil {
		t.Fatal(err)
	}
	if len(segFiles(t, dir)) != 1 {
		t.Fatalf("%d files after full trim", len(segFiles(t, dir)))
	}
	if l.Oldest().Offset < oldest.Offset {
		t.Fatal("Oldest moved backwards")
	}
	checkEntries(t, readAll(t, l, 50), want[len(want)-len(readAll(t, l, 50)):])
	// Reading from before Oldest starts at Oldest.
	es, _, _ := l.Read(Position{}, 1, 0)
	if len(es) == 1 && es[0].Pos != l.Oldest() {
		t.Fatalf("read from 0 got %v, Oldest %v", es[0].Pos, l.Oldest())
	}
	// Trim everything, including the active segment's data: active stays.
	clock.Add(10)
	mustAppend(t, l, []Record{{PartitionKey: "z", Data: bytes.Repeat([]byte{2}, 2000)}}) // own segment
	mustAppend(t, l, []Record{{PartitionKey: "z"}})
	if _, err := l.TrimBefore(1 << 60); err != nil {
		t.Fatal(err)
	}
	es, _, _ = l.Read(Position{}, 0, 0)
	if len(es) != 1 || es[0].PartitionKey != "z" || len(es[0].Data) != 0 {
		t.Fatalf("after full trim: %v", es)
	}
}

func TestLargeBatchOwnSegment(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: 1000})
	defer mustClose(t, l)
	var want []written
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "a", Data: make([]byte, 10)}})...)
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "b", Data: make([]byte, 5000)}})...)
	want = append(want, mustAppend(t, l, []Record{{PartitionKey: "c", Data: make([]byte, 10)}})...)
	if n := len(segFiles(t, dir)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	for i, p := range segFiles(t, dir) {
		base, _ := parseSegmentName(filepath.Base(p))
		if base != want[i].pos.Offset {
			t.Fatalf("segment %s does not start at batch %v", p, want[i].pos)
		}
	}
	checkEntries(t, readAll(t, l, 1), want)
}

func TestAppendInvalid(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncNever})
	defer mustClose(t, l)
	if _, _, err := l.Append(nil); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("empty batch: %v", err)
	}
	if _, _, err := l.Append(make([]Record, MaxBatchRecords+1)); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("oversized batch: %v", err)
	}
	first, _, err := l.Append(make([]Record, MaxBatchRecords))
	if err != nil {
		t.Fatal(err)
	}
	es, _, err := l.Read(Position{Offset: first.Offset, Index: MaxBatchRecords - 1}, 0, 0)
	if err != nil || len(es) != 1 || es[0].Pos.Index != MaxBatchRecords-1 {
		t.Fatalf("read last of max batch: %v %v", es, err)
	}
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{})
	mustAppend(t, l, []Record{{PartitionKey: "a"}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := l.Append([]Record{{}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after close: %v", err)
	}
	if _, _, err := l.Read(Position{}, 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after close: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after close: %v", err)
	}
	if _, err := l.TrimBefore(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("TrimBefore after close: %v", err)
	}
}

func TestIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	mustWriteFile(t, filepath.Join(dir, "notes.txt"), []byte("hi"))
	mustWriteFile(t, filepath.Join(dir, "123.log"), []byte("junk"))
	l := mustOpen(t, dir, Options{})
	want := mustAppend(t, l, []Record{{PartitionKey: "a", Data: []byte("b")}})
	mustClose(t, l)
	l = mustOpen(t, dir, Options{})
	defer mustClose(t, l)
	checkEntries(t, readAll(t, l, 10), want)
	if _, err := os.Stat(filepath.Join(dir, "123.log")); err != nil {
		t.Fatal("foreign file removed")
	}
}

func TestSyncInterval(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Options{Fsync: FsyncInterval})
	defer mustClose(t, l)
	syncs := 0
	l.syncFile = func(f *os.File) error { syncs++; return fdatasync(f) }
	want := mustAppend(t, l, []Record{{PartitionKey: "a"}})
	if syncs != 0 {
		t.Fatal("interval append synced")
	}
	checkEntries(t, readAll(t, l, 10), want) // visible before sync
	if err := l.Sync(); err != nil || syncs != 1 {
		t.Fatalf("Sync: %v, %d syncs", err, syncs)
	}
	if err := l.Sync(); err != nil || syncs != 1 {
		t.Fatalf("clean Sync: %v, %d syncs", err, syncs)
	}
}

func TestTrimToSize(t *testing.T) {
	clock := &fakeClock{ms: 1000}
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{Fsync: FsyncInterval, SegmentBytes: 1024, Now: clock.Now})
	defer mustClose(t, l)
	var want []written
	for i := 0; i < 100; i++ {
		clock.Add(10)
		want = append(want, mustAppend(t, l, []Record{{PartitionKey: "p", Data: bytes.Repeat([]byte{byte(i)}, 90)}})...)
	}
	nseg := len(segFiles(t, dir))
	total := diskBytes(t, dir)
	if nseg < 5 {
		t.Fatalf("only %d segments", nseg)
	}
	// A budget the log fits in, or none, removes nothing.
	for _, b := range []int64{0, -1, total, total + 1} {
		if n, err := l.TrimToSize(b); err != nil || n != 0 {
			t.Fatalf("TrimToSize(%d) = %d, %v", b, n, err)
		}
	}
	// A reader holding the oldest segment keeps reading it after the trim.
	st := getReadState()
	l.mu.Lock()
	c, ok := l.openCursorLocked(st, 0)
	l.mu.Unlock()
	if !ok {
		t.Fatal("no cursor at 0")
	}

	const budget = 3000
	n, err := l.TrimToSize(budget)
	if err != nil || n == 0 {
		t.Fatalf("TrimToSize = %d, %v", n, err)
	}
	if got := len(segFiles(t, dir)); got != nseg-n {
		t.Fatalf("%d files left, want %d", got, nseg-n)
	}
	if got := diskBytes(t, dir); got > budget {
		t.Fatalf("%d bytes left, budget %d", got, budget)
	}
	// The oldest segments went: one fewer would have exceeded the budget.
	if got := diskBytes(t, dir); got+1024 <= budget {
		t.Fatalf("%d bytes left: more than needed was removed (budget %d)", got, budget)
	}
	if _, ok, err := c.header(false); err != nil || !ok {
		t.Fatalf("a reader of a trimmed segment: %v, %v", ok, err)
	}
	c.close()
	putReadState(st)

	oldest := l.Oldest()
	all := readAll(t, l, 7)
	if len(all) == 0 || all[0].Pos != oldest {
		t.Fatalf("first record after trim is not Oldest %v", oldest)
	}
	k := 0
	for k < len(want) && want[k].pos != oldest {
		k++
	}
	checkEntries(t, all, want[k:])
	// Reads from before Oldest start at Oldest.
	es, _, err := l.Read(Position{}, 1, 0)
	if err != nil || len(es) != 1 || es[0].Pos != oldest {
		t.Fatalf("read from 0 after trim: %v, %v; Oldest %v", es, err, oldest)
	}

	// A budget of one byte keeps the active segment only, however young.
	if _, err := l.TrimToSize(1); err != nil {
		t.Fatal(err)
	}
	if files := segFiles(t, dir); len(files) != 1 {
		t.Fatalf("%d files after trimming to 1 byte, want the active one", len(files))
	}
	all = readAll(t, l, 50)
	if len(all) == 0 {
		t.Fatal("the active segment's records are gone")
	}
	checkEntries(t, all, want[len(want)-len(all):])
	// Appends go on after it.
	clock.Add(10)
	w := mustAppend(t, l, []Record{{PartitionKey: "z", Data: []byte("after")}})
	all = readAll(t, l, 50)
	checkEntries(t, all[len(all)-1:], w)

	mustClose(t, l)
	if _, err := l.TrimToSize(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("TrimToSize after close: %v", err)
	}
}
