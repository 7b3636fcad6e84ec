package storage

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// buildLog writes a small log and returns its directory and records.
func buildLog(t testing.TB, segBytes int64, batches int, seed uint64) (string, []written) {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{ms: 1000}
	l := mustOpen(t, dir, Options{Fsync: FsyncNever, SegmentBytes: segBytes, Now: clock.Now})
	rng := rand.New(rand.NewPCG(seed, 1))
	var want []written
	for i := 0; i < batches; i++ {
		clock.Add(1)
		want = append(want, mustAppend(t, l, randRecords(rng, 1+rng.IntN(3), 40))...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

// survivors returns the records of want whose batch ends at or before cut.
func survivors(want []written, cut uint64) []written {
	var out []written
	for _, w := range want {
		if w.bend <= cut {
			out = append(out, w)
		}
	}
	return out
}

// reopenCheck opens dir, checks it holds exactly want, then appends and
// reads the new record back.
func reopenCheck(t *testing.T, dir string, want []written, wantEnd uint64) {
	t.Helper()
	l := mustOpen(t, dir, Options{Fsync: FsyncNever})
	defer mustClose(t, l)
	checkEntries(t, readAll(t, l, 5), want)
	if l.End().Offset != wantEnd {
		t.Fatalf("End = %v, want %d", l.End(), wantEnd)
	}
	extra := mustAppend(t, l, []Record{{PartitionKey: "post", Data: []byte("crash")}})
	if extra[0].pos.Offset != wantEnd {
		t.Fatalf("append after recovery at %v, want %d", extra[0].pos, wantEnd)
	}
	checkEntries(t, readAll(t, l, 5), append(append([]written(nil), want...), extra...))
}

func TestRecoverTornTail(t *testing.T) {
	src, want := buildLog(t, 1<<20, 20, 7)
	path := segFiles(t, src)[0]
	orig, _ := os.ReadFile(path)
	lastStart := want[len(want)-1].pos.Offset
	// Truncate at every byte offset inside the last batch (and at its end).
	for cut := lastStart; cut <= uint64(len(orig)); cut++ {
		dir := t.TempDir()
		mustWriteFile(t, filepath.Join(dir, filepath.Base(path)), orig[:cut])
		exp := survivors(want, cut)
		end := lastStart
		if cut == uint64(len(orig)) {
			end = cut
		}
		reopenCheck(t, dir, exp, end)
	}
}

func TestRecoverGarbageTail(t *testing.T) {
	src, want := buildLog(t, 1<<20, 20, 8)
	path := segFiles(t, src)[0]
	orig, _ := os.ReadFile(path)
	rng := rand.New(rand.NewPCG(9, 9))
	junk := make([]byte, 3000)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	// a header-looking prefix with a bad checksum
	fake := append([]byte(nil), orig[:headerSize+10]...)
	tails := map[string][]byte{
		"zeros":    make([]byte, 4096),
		"one zero": {0},
		"random":   junk,
		"badcrc":   append(fake[:offCRC:offCRC], append([]byte{1, 2, 3, 4}, fake[offCRC+4:]...)...),
		"header":   orig[:headerSize],
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustWriteFile(t, filepath.Join(dir, filepath.Base(path)), append(append([]byte(nil), orig...), tail...))
			core, logs := observer.New(zap.WarnLevel)
			l := mustOpen(t, dir, Options{Fsync: FsyncNever, Logger: zap.New(core)})
			mustClose(t, l)
			if logs.FilterMessage("truncating damaged segment tail").Len() != 1 {
				t.Fatalf("no recovery warning logged: %v", logs.All())
			}
			reopenCheck(t, dir, want, uint64(len(orig)))
			fi, _ := os.Stat(filepath.Join(dir, filepath.Base(path)))
			if fi.Size() != int64(len(orig))+int64(batchSize([]Record{{PartitionKey: "post", Data: []byte("crash")}})) {
				t.Fatalf("garbage not truncated: size %d", fi.Size())
			}
		})
	}
}

func TestRecoverBitFlips(t *testing.T) {
	src, want := buildLog(t, 1<<20, 8, 10)
	path := segFiles(t, src)[0]
	orig, _ := os.ReadFile(path)
	for off := 0; off < len(orig); off++ {
		{
			b := append([]byte(nil), orig...)
			b[off] ^= []byte{0x01, 0x80, 0x10}[off%3]
			dir := t.TempDir()
			mustWriteFile(t, filepath.Join(dir, filepath.Base(path)), b)
			// The batch holding off and everything after it are lost.
			var bstart uint64
			for _, w := range want {
				if w.pos.Offset <= uint64(off) {
					bstart = w.pos.Offset
				}
			}
			l := mustOpen(t, dir, Options{Fsync: FsyncNever})
			checkEntries(t, readAll(t, l, 50), survivors(want, bstart))
			if l.End().Offset != bstart {
				t.Fatalf("flip at %d: End %v, want %d", off, l.End(), bstart)
			}
			mustClose(t, l)
		}
	}
}

// TestRecoverMiddleSegment damages an older segment: later segments are kept
// (leaving a gap), and reads cross the gap.
func TestRecoverMiddleSegment(t *testing.T) {
	src, want := buildLog(t, 512, 60, 11)
	files := segFiles(t, src)
	if len(files) < 4 {
		t.Fatalf("%d segments", len(files))
	}
	victim := files[1]
	base, _ := parseSegmentName(filepath.Base(victim))
	b, _ := os.ReadFile(victim)
	b[len(b)-1] ^= 0xFF // damage the segment's last batch
	mustWriteFile(t, victim, append(b, bytes.Repeat([]byte{0}, 100)...))
	var exp []written
	var lostStart uint64
	for _, w := range want {
		if w.pos.Offset >= base && w.bend == base+uint64(len(b)) {
			lostStart = w.pos.Offset
			continue
		}
		exp = append(exp, w)
	}
	l := mustOpen(t, src, Options{Fsync: FsyncNever})
	defer mustClose(t, l)
	checkEntries(t, readAll(t, l, 1), exp)
	checkEntries(t, readAll(t, l, 1000), exp)
	es, _, err := l.Read(Position{Offset: lostStart}, 1, 0)
	if err != nil || len(es) != 1 || es[0].Pos.Offset != base+uint64(len(b)) {
		t.Fatalf("read from gap: %v %v", es, err)
	}
	fi, _ := os.Stat(victim)
	if uint64(fi.Size()) != lostStart-base {
		t.Fatalf("victim size %d, want %d", fi.Size(), lostStart-base)
	}
}

func TestRecoverEmptySegments(t *testing.T) {
	dir := t.TempDir()
	// An empty first segment and an empty later one.
	mustWriteFile(t, filepath.Join(dir, segmentName(0)), nil)
	mustWriteFile(t, filepath.Join(dir, segmentName(500)), nil)
	l := mustOpen(t, dir, Options{})
	if l.End().Offset != 500 || l.Oldest() != l.End() {
		t.Fatalf("End %v Oldest %v", l.End(), l.Oldest())
	}
	want := mustAppend(t, l, []Record{{PartitionKey: "x"}})
	checkEntries(t, readAll(t, l, 1), want)
	if n, _ := l.TrimBefore(1); n != 1 {
		t.Fatalf("empty first segment not trimmed: %d", n)
	}
	mustClose(t, l)
}
