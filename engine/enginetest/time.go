package enginetest

import (
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

var timeTests = []test{
	{name: "ArrivalFromClock", fn: testArrivalFromClock},
	{name: "ArrivalNeverDecreases", fn: testArrivalNeverDecreases},
	{name: "SeekTimeEmpty", fn: testSeekTimeEmpty},
	{name: "SeekTime", fn: testSeekTime},
	{name: "TrimBeforeKeepsNewer", fn: testTrimKeepsNewer},
	{name: "TrimBeforeEmptyLog", fn: testTrimEmpty},
	{name: "TrimBeforeNothingOlder", fn: testTrimNothingOlder},
	{name: "PositionsNotReusedAfterTrim", fn: testTrimNoReuse},
}

// The arrival time of a batch is the engine clock's time in milliseconds.
func testArrivalFromClock(t *testing.T, x *env) {
	l := x.newLog()
	for _, d := range []time.Duration{0, time.Millisecond, 0, time.Second, 1500 * time.Microsecond, time.Hour} {
		x.clock.Advance(d)
		_, ms, err := l.Append(x.ctx, recs("k", 2, 1))
		if err != nil {
			t.Fatal(err)
		}
		if want := x.clock.Millis(); ms != want {
			t.Fatalf("arrival = %d, want the clock's %d", ms, want)
		}
	}
}

// Arrival times never decrease, even when the clock goes back.
func testArrivalNeverDecreases(t *testing.T, x *env) {
	l := x.newLog()
	x.clock.Advance(time.Hour)
	a := x.app(l, recs("a", 1, 1))
	x.clock.Advance(-30 * time.Minute)
	b := x.app(l, recs("b", 1, 1))
	if b[0].ms < a[0].ms {
		t.Fatalf("arrival went back from %d to %d with the clock", a[0].ms, b[0].ms)
	}
	x.clock.Advance(time.Hour)
	c := x.app(l, recs("c", 1, 1))
	if c[0].ms != x.clock.Millis() {
		t.Fatalf("arrival = %d once the clock passed the last arrival, want %d", c[0].ms, x.clock.Millis())
	}
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), append(append(a, b...), c...))
	if in := x.info(l); in.LastArrivalMillis != c[0].ms {
		t.Fatalf("LastArrivalMillis = %d, want %d", in.LastArrivalMillis, c[0].ms)
	}
}

// SeekTime on an empty log returns End.
func testSeekTimeEmpty(t *testing.T, x *env) {
	l := x.newLog()
	end := x.info(l).End
	for _, ms := range []int64{0, x.clock.Millis(), x.clock.Millis() + 1e6} {
		p, err := l.SeekTime(x.ctx, ms)
		if err != nil || p != end {
			t.Fatalf("SeekTime(%d) of an empty log = %v, %v; want End %v", ms, p, err, end)
		}
	}
}

// SeekTime finds the first record arriving at or after a time.
func testSeekTime(t *testing.T, x *env) {
	l := x.newLog()
	// Batches at t0, t0 (again), t0+10ms, t0+20ms, t0+1h.
	t0 := x.clock.Millis()
	var batches [][]stored
	for _, d := range []time.Duration{0, 0, 10 * time.Millisecond, 10 * time.Millisecond, time.Hour} {
		x.clock.Advance(d)
		batches = append(batches, x.app(l, recs("k", 3, 4)))
	}
	end := x.info(l).End
	cases := []struct {
		ms   int64
		want engine.Position
	}{
		{0, batches[0][0].pos},
		{t0 - 1, batches[0][0].pos},
		{t0, batches[0][0].pos},
		{t0 + 1, batches[2][0].pos},
		{t0 + 9, batches[2][0].pos},
		{t0 + 10, batches[2][0].pos},
		{t0 + 11, batches[3][0].pos},
		{t0 + 20, batches[3][0].pos},
		{t0 + 21, batches[4][0].pos},
		{batches[4][0].ms, batches[4][0].pos},
		{batches[4][0].ms + 1, end},
		{batches[4][0].ms + 1e9, end},
	}
	for _, c := range cases {
		p, err := l.SeekTime(x.ctx, c.ms)
		if err != nil {
			t.Fatalf("SeekTime(t0%+d): %v", c.ms-t0, err)
		}
		if p != c.want {
			t.Fatalf("SeekTime(t0%+d) = %v, want %v", c.ms-t0, p, c.want)
		}
	}
}

// TrimBefore(cutoff) may remove older records but keeps every record that
// arrived at or after the cutoff, where it was.
func testTrimKeepsNewer(t *testing.T, x *env) {
	l := x.newLog()
	var old, recent []stored
	for i := range 50 {
		old = append(old, x.app(l, recs("old", 1+i%4, 200))...)
		x.clock.Advance(time.Second)
	}
	x.clock.Advance(24 * time.Hour)
	cutoff := x.clock.Millis()
	for i := range 20 {
		recent = append(recent, x.app(l, recs("new", 1+i%3, 200))...)
		x.clock.Advance(time.Second)
	}
	before := x.info(l)
	n, err := l.TrimBefore(x.ctx, cutoff)
	if err != nil || n < 0 {
		t.Fatalf("TrimBefore = %d, %v", n, err)
	}
	in := x.info(l)
	if in.Oldest.Less(before.Oldest) || recent[0].pos.Less(in.Oldest) {
		t.Fatalf("after TrimBefore Oldest = %v; want between %v and the first record after the cutoff %v", in.Oldest, before.Oldest, recent[0].pos)
	}
	if in.End != before.End || in.LastArrivalMillis != before.LastArrivalMillis {
		t.Fatalf("after TrimBefore Info = %+v, was %+v: End and LastArrivalMillis changed", in, before)
	}
	checkEntries(t, x.readAll(l, recent[0].pos, 7, bigRead), recent)
	// Reading from the start gives the retained suffix of the records.
	got := x.readAll(l, engine.Position{}, bigRead, bigRead)
	all := append(append([]stored{}, old...), recent...)
	if len(got) < len(recent) {
		t.Fatalf("read %d records after TrimBefore, fewer than the %d after the cutoff", len(got), len(recent))
	}
	checkEntries(t, got, all[len(all)-len(got):])
	if len(got) > 0 && got[0].Pos != in.Oldest {
		t.Fatalf("first retained record is at %v, Info.Oldest %v", got[0].Pos, in.Oldest)
	}
	// SeekTime and appends still work.
	if p, err := l.SeekTime(x.ctx, 0); err != nil || p != got[0].Pos {
		t.Fatalf("SeekTime(0) after TrimBefore = %v, %v; want the oldest retained record %v", p, err, got[0].Pos)
	}
	if p, err := l.SeekTime(x.ctx, cutoff); err != nil || p != recent[0].pos {
		t.Fatalf("SeekTime(cutoff) after TrimBefore = %v, %v; want %v", p, err, recent[0].pos)
	}
	more := x.app(l, recs("more", 2, 4))
	checkEntries(t, x.readAll(l, recent[0].pos, bigRead, bigRead), append(recent, more...))
}

// TrimBefore on an empty log removes nothing.
func testTrimEmpty(t *testing.T, x *env) {
	l := x.newLog()
	before := x.info(l)
	n, err := l.TrimBefore(x.ctx, x.clock.Millis()+1e6)
	if err != nil || n != 0 {
		t.Fatalf("TrimBefore of an empty log = %d, %v; want 0, nil", n, err)
	}
	if in := x.info(l); in != before {
		t.Fatalf("Info after TrimBefore of an empty log = %+v, was %+v", in, before)
	}
	x.app(l, recs("k", 1, 1))
}

// TrimBefore with a cutoff at or before every record keeps them all.
func testTrimNothingOlder(t *testing.T, x *env) {
	l := x.newLog()
	first := x.clock.Millis()
	var all []stored
	for range 10 {
		all = append(all, x.app(l, recs("k", 3, 100))...)
		x.clock.Advance(time.Minute)
	}
	before := x.info(l)
	for _, ms := range []int64{0, first - 1, first} {
		if _, err := l.TrimBefore(x.ctx, ms); err != nil {
			t.Fatalf("TrimBefore(%d): %v", ms, err)
		}
	}
	if in := x.info(l); in != before {
		t.Fatalf("Info after TrimBefore of nothing = %+v, was %+v", in, before)
	}
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), all)
}

// Positions are never reused: after TrimBefore of everything it may
// remove, appends still get positions after every earlier record.
func testTrimNoReuse(t *testing.T, x *env) {
	l := x.newLog()
	var last engine.Position
	for range 20 {
		b := x.app(l, recs("k", 2, 500))
		last = b[len(b)-1].pos
		x.clock.Advance(time.Minute)
	}
	x.clock.Advance(time.Hour)
	if _, err := l.TrimBefore(x.ctx, x.clock.Millis()); err != nil {
		t.Fatal(err)
	}
	in := x.info(l)
	if !last.Less(in.End) || in.End.Less(in.Oldest) {
		t.Fatalf("Info after trimming everything = %+v; last record was at %v", in, last)
	}
	b := x.app(l, recs("after", 2, 4))
	if !last.Less(b[0].pos) {
		t.Fatalf("append after TrimBefore got %v, not after the earlier record at %v", b[0].pos, last)
	}
	got := x.readAll(l, engine.Position{}, bigRead, bigRead)
	if len(got) < 2 {
		t.Fatalf("read %d records after the trim and append, want at least 2", len(got))
	}
	checkEntries(t, got[len(got)-2:], b)
}
