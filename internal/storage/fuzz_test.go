package storage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzBase is the pristine log FuzzRecover damages: its segment files and
// the records written.
type fuzzBase struct {
	names []string
	bases []uint64
	files [][]byte
	want  []written
}

func makeFuzzBase(t testing.TB) fuzzBase {
	dir, want := buildLog(t, 700, 14, 42)
	var fb fuzzBase
	for _, p := range segFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		base, _ := parseSegmentName(filepath.Base(p))
		fb.names = append(fb.names, filepath.Base(p))
		fb.bases = append(fb.bases, base)
		fb.files = append(fb.files, b)
	}
	fb.want = want
	return fb
}

// Edit opcodes; each edit is 5 bytes: op, file, pos (u16 LE), arg.
const (
	editTruncate = iota
	editXor
	editSet
	editZeroRange
	editAppendZeros
	editAppendJunk
	editDelete
	numEdits
)

func edit(op, file byte, pos uint16, arg byte) []byte {
	return []byte{op, file, byte(pos), byte(pos >> 8), arg}
}

// applyEdits damages copies of files as the fuzz input says.
func applyEdits(files [][]byte, in []byte) [][]byte {
	out := make([][]byte, len(files))
	for i := range files {
		out[i] = slices.Clone(files[i])
	}
	deleted := make([]bool, len(files))
	for len(in) >= 5 {
		op, fi, pos, arg := in[0]%numEdits, int(in[1])%len(files), int(binary.LittleEndian.Uint16(in[2:])), in[4]
		in = in[5:]
		b := out[fi]
		switch op {
		case editTruncate:
			if len(b) > 0 {
				b = b[:pos%(len(b)+1)]
			}
		case editXor:
			if len(b) > 0 {
				b[pos%len(b)] ^= arg | 1
			}
		case editSet:
			if len(b) > 0 {
				b[pos%len(b)] = arg
			}
		case editZeroRange:
			if len(b) > 0 {
				p := pos % len(b)
				clear(b[p:min(len(b), p+int(arg)+1)])
			}
		case editAppendZeros:
			b = append(b, make([]byte, int(arg)+1)...)
		case editAppendJunk:
			n := min(int(arg)+1, len(in))
			junk := slices.Clone(in[:n])
			in = in[n:]
			for i := range junk {
				if junk[i] == magic0 { // never let junk start a batch of its own
					junk[i]++
				}
			}
			b = append(b, junk...)
		case editDelete:
			deleted[fi] = true
		}
		out[fi] = b
	}
	for i := range out {
		if deleted[i] {
			out[i] = nil
		}
	}
	return out
}

func FuzzRecover(f *testing.F) {
	fb := makeFuzzBase(f)
	if len(fb.files) < 3 {
		f.Fatalf("base log has %d segments, want >= 3", len(fb.files))
	}
	f.Add([]byte{})
	f.Add(edit(editTruncate, 2, 30, 0))
	f.Add(edit(editTruncate, 0, 5, 0))
	f.Add(slices.Concat(edit(editXor, 1, 100, 4), edit(editAppendZeros, 2, 0, 200)))
	f.Add(edit(editDelete, 1, 0, 0))
	f.Add(slices.Concat(edit(editDelete, 2, 0, 0), edit(editTruncate, 1, 200, 0)))
	f.Add(slices.Concat(edit(editAppendJunk, 2, 0, 8), []byte("SLjunkjunk")))
	f.Add(slices.Concat(edit(editZeroRange, 0, 0, 21), edit(editSet, 1, offLength, 0xFF)))
	f.Add(edit(editSet, 2, offCount, 0))
	f.Add(edit(editSet, 1, 0, magic1))

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 200 {
			return
		}
		files := applyEdits(fb.files, in)
		dir := t.TempDir()
		for i, b := range files {
			if b != nil {
				if err := os.WriteFile(filepath.Join(dir, fb.names[i]), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		l, err := Open(dir, Options{Fsync: FsyncNever})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer mustClose(t, l)
		got := readAll(t, l, 4)
		orig := map[Position]written{}
		for _, w := range fb.want {
			orig[w.pos] = w
		}
		// Every recovered record is an original one, unchanged.
		for _, e := range got {
			w, ok := orig[e.Pos]
			if !ok || w.ms != e.ArrivalMillis || w.rec.PartitionKey != e.PartitionKey || !bytes.Equal(w.rec.Data, e.Data) {
				t.Fatalf("recovered record at %v is not the original one", e.Pos)
			}
		}
		// Per segment, recovered records are a prefix of the original ones.
		seg := func(off uint64) int {
			i, _ := slices.BinarySearch(fb.bases, off+1)
			return i - 1
		}
		gi := 0
		for s := range fb.files {
			var segWant []written
			for _, w := range fb.want {
				if seg(w.pos.Offset) == s {
					segWant = append(segWant, w)
				}
			}
			k := 0
			for gi < len(got) && seg(got[gi].Pos.Offset) == s {
				if k >= len(segWant) || got[gi].Pos != segWant[k].pos {
					t.Fatalf("segment %d: recovered %v is not the next original record", s, got[gi].Pos)
				}
				k++
				gi++
			}
		}
		// The log accepts and returns a new record.
		end := l.End()
		first, _, err := l.Append([]Record{{PartitionKey: "new", Data: []byte{1, 2, 3}}})
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if first.Less(end) {
			t.Fatalf("append at %v before End %v", first, end)
		}
		es, _, err := l.Read(end, 0, 0)
		if err != nil || len(es) != 1 || es[0].Pos != first || es[0].PartitionKey != "new" || !bytes.Equal(es[0].Data, []byte{1, 2, 3}) {
			t.Fatalf("reading the new record: %v %v", es, err)
		}
	})
}
