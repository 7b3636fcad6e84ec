package enginetest

import (
	"bytes"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

var logTests = []test{
	{name: "AppendPositions", fn: testAppendPositions},
	{name: "AppendReadBack", fn: testAppendReadBack},
	{name: "AppendMaxBatch", fn: testAppendMaxBatch},
	{name: "AppendInvalidBatch", fn: testAppendInvalidBatch},
	{name: "AppendCopiesData", fn: testAppendCopiesData},
	{name: "ReadCopiesData", fn: testReadCopiesData},
	{name: "InfoEmpty", fn: testInfoEmpty},
	{name: "InfoAfterAppend", fn: testInfoAfterAppend},
	{name: "SeparateLogs", fn: testSeparateLogs},
	{name: "Sync", fn: testSync},
}

// Append returns increasing positions, at or after the end, with the records
// of a batch at consecutive indexes.
func testAppendPositions(t *testing.T, x *env) {
	l := x.newLog()
	var prev *engine.Position
	for i, n := range []int{1, 3, 1, 10, 2, 100, 1} {
		end := x.info(l).End
		got := x.app(l, recs("k", n, 8))
		first := got[0].pos
		if first.Less(end) {
			t.Fatalf("batch %d: first position %v is before the end %v reported before it", i, first, end)
		}
		if prev != nil && !prev.Less(first) {
			t.Fatalf("batch %d: first position %v does not follow the previous batch's last %v", i, first, *prev)
		}
		if first.Offset >= 1<<56 {
			t.Fatalf("batch %d: offset %d does not fit in 56 bits", i, first.Offset)
		}
		last := got[len(got)-1].pos
		prev = &last
		if e := x.info(l).End; !last.Less(e) {
			t.Fatalf("batch %d: end %v is not after the last record %v", i, e, last)
		}
		// The positions app computed are the ones Read reports.
		checkEntries(t, x.readAll(l, first, bigRead, bigRead), got)
	}
}

// Records read back equal what was appended: keys, binary data, empty and
// nil data, empty keys, a large record; the arrival time is the batch's.
func testAppendReadBack(t *testing.T, x *env) {
	l := x.newLog()
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	large := bytes.Repeat([]byte{0, 0xff, 0x80, '\n'}, 64<<10)
	var want []stored
	want = append(want, x.app(l, []engine.Record{{PartitionKey: "a", Data: []byte("hello")}})...)
	want = append(want, x.app(l, []engine.Record{
		{PartitionKey: "binary", Data: binary},
		{PartitionKey: "empty", Data: []byte{}},
		{PartitionKey: "nil"},
		{PartitionKey: "", Data: []byte("no key")},
		{PartitionKey: "unicode ключ 🔑", Data: []byte{0}},
	})...)
	x.clock.Advance(5)
	want = append(want, x.app(l, []engine.Record{{PartitionKey: "large", Data: large}})...)
	want = append(want, x.app(l, recs("many", 50, 3))...)
	checkEntries(t, x.readAll(l, want[0].pos, bigRead, bigRead), want)
	// One read with limits that hold everything returns everything.
	es, _ := x.read(l, want[0].pos, len(want)+10, bigRead)
	checkEntries(t, es, want)
	// So does a read from the zero position.
	es, _ = x.read(l, engine.Position{}, len(want)+10, bigRead)
	checkEntries(t, es, want)
}

// A batch of MaxBatchRecords records is valid.
func testAppendMaxBatch(t *testing.T, x *env) {
	l := x.newLog()
	rs := make([]engine.Record, engine.MaxBatchRecords)
	for i := range rs {
		rs[i] = engine.Record{PartitionKey: "k", Data: []byte{byte(i), byte(i >> 8)}}
	}
	want := x.app(l, rs)
	want = append(want, x.app(l, recs("after", 2, 1))...)
	checkEntries(t, x.readAll(l, want[0].pos, 1000, bigRead), want)
}

// An empty batch, or one of more than MaxBatchRecords records, fails with
// ErrInvalidBatch and leaves the log as it was.
func testAppendInvalidBatch(t *testing.T, x *env) {
	l := x.newLog()
	want := x.app(l, recs("k", 2, 4))
	before := x.info(l)
	for _, rs := range [][]engine.Record{nil, {}, make([]engine.Record, engine.MaxBatchRecords+1)} {
		_, _, err := l.Append(x.ctx, rs)
		wantErr(t, "Append of an invalid batch", err, engine.ErrInvalidBatch)
	}
	if after := x.info(l); after != before {
		t.Fatalf("Info after invalid appends = %+v, want %+v", after, before)
	}
	want = append(want, x.app(l, recs("j", 1, 4))...)
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), want)
}

// Append does not keep the caller's buffers: changing them afterwards does
// not change the log.
func testAppendCopiesData(t *testing.T, x *env) {
	l := x.newLog()
	buf := []byte("original")
	rs := []engine.Record{{PartitionKey: "k", Data: buf}, {PartitionKey: "j", Data: buf[:4]}}
	want := x.app(l, rs)
	copy(buf, "XXXXXXXX")
	rs[0].PartitionKey = "changed"
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), want)
}

// Entries from Read belong to the caller: changing them does not change
// the log.
func testReadCopiesData(t *testing.T, x *env) {
	l := x.newLog()
	want := x.app(l, recs("k", 3, 16))
	es := x.readAll(l, engine.Position{}, bigRead, bigRead)
	for _, e := range es {
		for i := range e.Data {
			e.Data[i] ^= 0xff
		}
	}
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), want)
}

// An empty log reports Oldest = End and no arrival time, and reads nothing.
func testInfoEmpty(t *testing.T, x *env) {
	l := x.newLog()
	in := x.info(l)
	if in.Oldest != in.End || in.LastArrivalMillis != 0 {
		t.Fatalf("Info of an empty log = %+v, want Oldest = End and LastArrivalMillis 0", in)
	}
	for _, from := range []engine.Position{{}, in.End, {Offset: in.End.Offset + 5}} {
		if es, _ := x.read(l, from, 10, bigRead); len(es) != 0 {
			t.Fatalf("Read(%v) of an empty log returned %d entries", from, len(es))
		}
	}
}

// Info reports the first record as Oldest, an End after the last record and
// the newest arrival time.
func testInfoAfterAppend(t *testing.T, x *env) {
	l := x.newLog()
	a := x.app(l, recs("a", 2, 4))
	in := x.info(l)
	if in.Oldest != a[0].pos || !a[1].pos.Less(in.End) || in.LastArrivalMillis != a[0].ms {
		t.Fatalf("Info = %+v after one batch at %v..%v arriving %d", in, a[0].pos, a[1].pos, a[0].ms)
	}
	x.clock.Advance(1500)
	b := x.app(l, recs("b", 3, 4))
	in2 := x.info(l)
	if in2.Oldest != a[0].pos || !b[2].pos.Less(in2.End) || in2.LastArrivalMillis != b[0].ms {
		t.Fatalf("Info = %+v after a second batch at %v..%v arriving %d", in2, b[0].pos, b[2].pos, b[0].ms)
	}
	if !in.End.Less(in2.End) {
		t.Fatalf("End did not grow: %v, then %v", in.End, in2.End)
	}
}

// Logs are independent: records appended to one are not read from another.
func testSeparateLogs(t *testing.T, x *env) {
	l1, l2 := x.create(logID(1)), x.create(logID(2))
	w1 := x.app(l1, recs("one", 3, 4))
	w2 := x.app(l2, recs("two", 2, 4))
	w1 = append(w1, x.app(l1, recs("uno", 1, 4))...)
	checkEntries(t, x.readAll(l1, engine.Position{}, bigRead, bigRead), w1)
	checkEntries(t, x.readAll(l2, engine.Position{}, bigRead, bigRead), w2)
}

// Sync succeeds on an empty and a written log and changes nothing.
func testSync(t *testing.T, x *env) {
	l := x.newLog()
	if err := l.Sync(x.ctx); err != nil {
		t.Fatalf("Sync of an empty log: %v", err)
	}
	want := x.app(l, recs("k", 3, 10))
	before := x.info(l)
	if err := l.Sync(x.ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if in := x.info(l); in != before {
		t.Fatalf("Info after Sync = %+v, was %+v", in, before)
	}
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), want)
}
