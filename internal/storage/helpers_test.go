package storage

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock advanced by tests.
type fakeClock struct {
	mu sync.Mutex
	ms int64
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.UnixMilli(c.ms)
}

func (c *fakeClock) Set(ms int64) {
	c.mu.Lock()
	c.ms = ms
	c.mu.Unlock()
}

func (c *fakeClock) Add(ms int64) {
	c.mu.Lock()
	c.ms += ms
	c.mu.Unlock()
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// mustClose closes l, which syncs what is not yet durable, and reports a
// failure as a test error (it is often deferred).
func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// mustWriteFile writes a (damaged or foreign) file for a test to find.
func mustWriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// written is one appended record as the test remembers it.
type written struct {
	pos  Position
	ms   int64
	rec  Record
	bend uint64 // logical end of its batch
}

func mustAppend(t testing.TB, l *Log, recs []Record) []written {
	t.Helper()
	first, ms, err := l.Append(recs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	end := first.Offset + uint64(batchSize(recs))
	out := make([]written, len(recs))
	for i, r := range recs {
		out[i] = written{Position{Offset: first.Offset, Index: first.Index + uint16(i)}, ms, Record{PartitionKey: r.PartitionKey, Data: slices.Clone(r.Data)}, end}
	}
	return out
}

// randRecords makes n records with varied keys and data.
func randRecords(rng *rand.Rand, n, maxData int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		k := make([]byte, 1+rng.IntN(256))
		for j := range k {
			k[j] = byte('a' + rng.IntN(26))
		}
		d := make([]byte, rng.IntN(maxData+1))
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		recs[i] = Record{PartitionKey: string(k), Data: d}
	}
	return recs
}

// readAll reads the whole log from Oldest in steps of at most step records.
func readAll(t testing.TB, l *Log, step int) []Entry {
	t.Helper()
	var out []Entry
	pos := Position{}
	for {
		es, next, err := l.Read(pos, step, 0)
		if err != nil {
			t.Fatalf("read at %v: %v", pos, err)
		}
		if len(es) == 0 {
			if next.Less(pos) {
				t.Fatalf("next %v before from %v", next, pos)
			}
			return out
		}
		if !pos.Less(next) {
			t.Fatalf("next %v did not advance from %v", next, pos)
		}
		out = append(out, es...)
		pos = next
	}
}

// checkEntries asserts got equals want exactly.
func checkEntries(t testing.TB, got []Entry, want []written) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Pos != w.pos || g.ArrivalMillis != w.ms || g.PartitionKey != w.rec.PartitionKey || !bytes.Equal(g.Data, w.rec.Data) {
			t.Fatalf("record %d: got {%v %d %.20q %d bytes}, want {%v %d %.20q %d bytes}",
				i, g.Pos, g.ArrivalMillis, g.PartitionKey, len(g.Data), w.pos, w.ms, w.rec.PartitionKey, len(w.rec.Data))
		}
		if i > 0 && !got[i-1].Pos.Less(g.Pos) {
			t.Fatalf("positions not increasing at %d: %v then %v", i, got[i-1].Pos, g.Pos)
		}
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// diskBytes returns the total size of the segment files in dir.
func diskBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
