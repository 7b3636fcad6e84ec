package enginetest

import (
	"testing"

	"github.com/shoalstream/shoal/engine"
)

var readTests = []test{
	{name: "MaxRecords", fn: testReadMaxRecords},
	{name: "MaxBytes", fn: testReadMaxBytes},
	{name: "FirstRecordOverMaxBytes", fn: testReadFirstOverMaxBytes},
	{name: "Paging", fn: testReadPaging},
	{name: "MidBatch", fn: testReadMidBatch},
	{name: "BetweenBatches", fn: testReadBetweenBatches},
	{name: "AtEnd", fn: testReadAtEnd},
}

// mixedLog fills a log with batches of varied sizes and record lengths.
func mixedLog(x *env) (engine.Log, []stored) {
	l := x.newLog()
	var all []stored
	for i, n := range []int{1, 4, 2, 7, 1, 1, 3, 12, 5} {
		x.clock.Advance(3)
		all = append(all, x.app(l, recs(string(rune('a'+i)), n, i*13%40))...)
	}
	return l, all
}

// Read returns at most maxRecords records, and next is the first one left.
func testReadMaxRecords(t *testing.T, x *env) {
	l, all := mixedLog(x)
	for _, max := range []int{1, 2, 3, 5, 8, len(all)} {
		es, next := x.read(l, all[0].pos, max, bigRead)
		checkEntries(t, es, all[:max])
		if max < len(all) {
			es2, _ := x.read(l, next, 1, bigRead)
			checkEntries(t, es2, all[max:max+1])
		}
	}
}

// Beyond the first record, Read returns at most maxBytes bytes of keys and
// data.
func testReadMaxBytes(t *testing.T, x *env) {
	l := x.newLog()
	// Records of 10 bytes each: a 2-byte key and 8 bytes of data.
	var all []stored
	for i := range 4 {
		rs := recs("k", 5, 8)
		for j := range rs {
			rs[j].PartitionKey = string(rune('a'+i)) + string(rune('0'+j))
		}
		all = append(all, x.app(l, rs)...)
	}
	for _, max := range []int{10, 15, 20, 25, 55, 199, 200} {
		es, next := x.read(l, all[0].pos, bigRead, max)
		if len(es) == 0 {
			t.Fatalf("Read(maxBytes %d) returned nothing", max)
		}
		checkRead(t, all[0].pos, es, next, bigRead, max)
		checkEntries(t, es, all[:len(es)])
		if n := entriesBytes(es); n > max {
			t.Fatalf("Read(maxBytes %d) returned %d bytes", max, n)
		}
	}
}

// Read returns a first record larger than maxBytes on its own.
func testReadFirstOverMaxBytes(t *testing.T, x *env) {
	l := x.newLog()
	all := x.app(l, []engine.Record{
		{PartitionKey: "big", Data: make([]byte, 1000)},
		{PartitionKey: "small", Data: []byte("x")},
	})
	all = append(all, x.app(l, []engine.Record{{PartitionKey: "bigger", Data: make([]byte, 5000)}})...)
	// Each record in turn comes alone: the small one fits maxBytes, but
	// not with the big one after it.
	from := all[0].pos
	for i, w := range all {
		es, next := x.read(l, from, bigRead, 10)
		if len(es) != 1 {
			t.Fatalf("Read(%v, maxBytes 10) returned %d entries, want the %d-byte record alone", from, len(es), len(w.rec.Data))
		}
		checkEntries(t, es, all[i:i+1])
		from = next
	}
	if es, _ := x.read(l, from, bigRead, 10); len(es) != 0 {
		t.Fatalf("Read past the last record returned %d entries", len(es))
	}
}

// Reading page by page, with any record or byte limit, resuming at each
// next, gives the same records as one read.
func testReadPaging(t *testing.T, x *env) {
	l, all := mixedLog(x)
	one, _ := x.read(l, engine.Position{}, len(all), bigRead)
	checkEntries(t, one, all)
	for n := 1; n <= len(all); n++ {
		checkEntries(t, x.readAll(l, engine.Position{}, n, bigRead), all)
	}
	for _, b := range []int{1, 7, 30, 64, 100, 1000} {
		checkEntries(t, x.readAll(l, engine.Position{}, bigRead, b), all)
		checkEntries(t, x.readAll(l, engine.Position{}, 3, b), all)
	}
	// Starting anywhere gives the rest.
	for i := range all {
		checkEntries(t, x.readAll(l, all[i].pos, 2, 50), all[i:])
	}
}

// A read may start in the middle of a batch.
func testReadMidBatch(t *testing.T, x *env) {
	l := x.newLog()
	a := x.app(l, recs("a", 6, 4))
	b := x.app(l, recs("b", 2, 4))
	all := append(append([]stored{}, a...), b...)
	for i := range a {
		es, _ := x.read(l, a[i].pos, bigRead, bigRead)
		checkEntries(t, es, all[i:])
	}
	es, next := x.read(l, a[2].pos, 2, bigRead)
	checkEntries(t, es, a[2:4])
	es, _ = x.read(l, next, 3, bigRead)
	checkEntries(t, es, all[4:7])
}

// A read from a position that no record has starts at the first record
// after it.
func testReadBetweenBatches(t *testing.T, x *env) {
	l := x.newLog()
	a := x.app(l, recs("a", 3, 4))
	b := x.app(l, recs("b", 2, 4))
	// Past the last index of a's batch: the first record of b.
	es, _ := x.read(l, engine.Position{Offset: a[0].pos.Offset, Index: ^uint16(0)}, bigRead, bigRead)
	checkEntries(t, es, b)
	// Just before b's batch.
	if b[0].pos.Offset > 0 {
		es, _ = x.read(l, engine.Position{Offset: b[0].pos.Offset - 1, Index: ^uint16(0)}, bigRead, bigRead)
		checkEntries(t, es, b)
	}
	// The zero position: everything.
	es, _ = x.read(l, engine.Position{}, bigRead, bigRead)
	checkEntries(t, es, append(a, b...))
}

// A read at or past the end returns nothing, with next = from or the end;
// a later append is read from there.
func testReadAtEnd(t *testing.T, x *env) {
	l := x.newLog()
	a := x.app(l, recs("a", 2, 4))
	end := x.info(l).End
	es, next := x.read(l, end, bigRead, bigRead)
	if len(es) != 0 || next != end {
		t.Fatalf("Read(end %v) = %d entries, next %v; want none, next = end", end, len(es), next)
	}
	// Reading the last record returns a next that reads nothing more.
	es, next = x.read(l, a[1].pos, bigRead, bigRead)
	checkEntries(t, es, a[1:])
	if es, _ := x.read(l, next, bigRead, bigRead); len(es) != 0 {
		t.Fatalf("Read(%v) after the last record returned %d entries", next, len(es))
	}
	past := engine.Position{Offset: end.Offset + 1000}
	es, pnext := x.read(l, past, bigRead, bigRead)
	if len(es) != 0 || (pnext != past && pnext != end) {
		t.Fatalf("Read(%v) past the end = %d entries, next %v; want none, next = from or end %v", past, len(es), pnext, end)
	}
	b := x.app(l, recs("b", 1, 4))
	es, _ = x.read(l, next, bigRead, bigRead)
	checkEntries(t, es, b)
}
