package enginetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

var durabilityTests = []test{
	{name: "Logs", durable: true, fn: testDurableLogs},
	{name: "SealedLog", durable: true, fn: testDurableSealed},
	{name: "Trimmed", durable: true, fn: testDurableTrimmed},
	{name: "Catalog", durable: true, fn: testDurableCatalog},
	{name: "Empty", durable: true, fn: testDurableEmpty},
}

// Logs, their records and positions survive Reopen, deleted logs stay
// deleted, and positions handed out afterwards follow the old ones.
func testDurableLogs(t *testing.T, x *env) {
	ids := []engine.LogID{logID(0), logID(1), logID(2), {Stream: "enginetest-other", Shard: 3}}
	want := map[engine.LogID][]stored{}
	infos := map[engine.LogID]engine.Info{}
	for i, id := range ids {
		l := x.create(id)
		for j := range 5 + i {
			x.clock.Advance(time.Duration(j) * time.Millisecond)
			want[id] = append(want[id], x.app(l, recs(fmt.Sprint(id, "-", j), 1+j%4, 10*j))...)
		}
		infos[id] = x.info(l)
	}
	if err := x.e.DeleteLog(x.ctx, logID(1)); err != nil {
		t.Fatal(err)
	}
	delete(want, logID(1))
	for round := range 2 {
		x.reopen()
		live := make([]engine.LogID, 0, len(want))
		for id := range want {
			live = append(live, id)
		}
		checkLogs(t, x, live)
		for id, w := range want {
			l := x.open(id)
			checkEntries(t, x.readAll(l, engine.Position{}, 3, bigRead), w)
			in := x.info(l)
			if in.Oldest != infos[id].Oldest || in.LastArrivalMillis != infos[id].LastArrivalMillis {
				t.Fatalf("round %d: %v: Info after Reopen = %+v, before %+v", round, id, in, infos[id])
			}
			last := w[len(w)-1]
			if !last.pos.Less(in.End) {
				t.Fatalf("round %d: %v: End after Reopen %v is not after the last record %v", round, id, in.End, last.pos)
			}
			if p, err := l.SeekTime(x.ctx, last.ms); err != nil || p.Less(w[0].pos) || last.pos.Less(p) {
				t.Fatalf("round %d: %v: SeekTime after Reopen = %v, %v", round, id, p, err)
			}
			more := x.app(l, recs(fmt.Sprint("more", round), 2, 3))
			if !last.pos.Less(more[0].pos) || more[0].ms < last.ms {
				t.Fatalf("round %d: %v: append after Reopen at %v arriving %d; last before at %v arriving %d",
					round, id, more[0].pos, more[0].ms, last.pos, last.ms)
			}
			want[id] = append(w, more...)
			infos[id] = x.info(l)
		}
		_, err := x.e.CreateLog(x.ctx, logID(0))
		wantErr(t, fmt.Sprintf("round %d: CreateLog of a log from before Reopen", round), err, engine.ErrExists)
	}
}

// A sealed log's records survive Reopen.
func testDurableSealed(t *testing.T, x *env) {
	l := x.newLog()
	want := x.app(l, recs("a", 3, 5))
	end, err := l.Seal(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	x.reopen()
	l = x.open(logID(0))
	checkEntries(t, x.readAll(l, engine.Position{}, bigRead, bigRead), want)
	if in := x.info(l); in.End.Less(end) {
		t.Fatalf("End after Reopen %v is before the sealed end %v", in.End, end)
	}
}

// After TrimBefore and Reopen, the kept records remain and new positions
// still follow every old one.
func testDurableTrimmed(t *testing.T, x *env) {
	l := x.newLog()
	var last engine.Position
	for range 30 {
		b := x.app(l, recs("old", 3, 300))
		last = b[len(b)-1].pos
		x.clock.Advance(time.Second)
	}
	x.clock.Advance(time.Hour)
	cutoff := x.clock.Millis()
	recent := x.app(l, recs("new", 2, 10))
	if _, err := l.TrimBefore(x.ctx, cutoff); err != nil {
		t.Fatal(err)
	}
	oldest := x.info(l).Oldest
	x.reopen()
	l = x.open(logID(0))
	if in := x.info(l); in.Oldest.Less(oldest) {
		t.Fatalf("Oldest after Reopen %v is before the trimmed Oldest %v", in.Oldest, oldest)
	}
	checkEntries(t, x.readAll(l, recent[0].pos, bigRead, bigRead), recent)
	b := x.app(l, recs("after", 1, 1))
	if !recent[1].pos.Less(b[0].pos) || !last.Less(b[0].pos) {
		t.Fatalf("append after trim and Reopen at %v, not after %v", b[0].pos, recent[1].pos)
	}
}

// Catalog records, their versions and the account survive Reopen, and
// compare-and-set goes on from the stored versions.
func testDurableCatalog(t *testing.T, x *env) {
	c := x.e.Catalog()
	want := map[string]engine.VersionedStream{}
	for i := range 4 {
		m := sampleStream(fmt.Sprint("s", i), fmt.Sprint("id", i))
		v := x.put(m, 0)
		if i%2 == 1 {
			m.Status = "UPDATING"
			v = x.put(m, v)
		}
		want[m.Name] = engine.VersionedStream{Meta: m, Version: v}
	}
	if err := c.DeleteStream(x.ctx, "s2", want["s2"].Version); err != nil {
		t.Fatal(err)
	}
	delete(want, "s2")
	a := engine.AccountMeta{Secret: "abcdef", CommitmentStatus: "DISABLED"}
	av, err := c.PutAccount(x.ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	x.reopen()
	c = x.e.Catalog()
	checkStreams(t, x, want)
	checkAccount(t, x, a, av)
	// Old versions conflict; the stored ones work.
	s1 := want["s1"]
	_, err = c.PutStream(x.ctx, s1.Meta, s1.Version+1000)
	wantErr(t, "PutStream with a wrong version after Reopen", err, engine.ErrConflict)
	_, err = c.PutStream(x.ctx, s1.Meta, 0)
	wantErr(t, "PutStream(expect 0) of a record from before Reopen", err, engine.ErrExists)
	s1.Meta.Status = "ACTIVE"
	s1.Version = x.put(s1.Meta, s1.Version)
	want["s1"] = s1
	a.CommitmentStatus = "ENABLED"
	if av, err = c.PutAccount(x.ctx, a, av); err != nil {
		t.Fatal(err)
	}
	x.reopen()
	checkStreams(t, x, want)
	checkAccount(t, x, a, av)
}

// A new engine reopened holds nothing.
func testDurableEmpty(t *testing.T, x *env) {
	x.reopen()
	checkLogs(t, x, nil)
	checkStreams(t, x, nil)
	checkAccount(t, x, engine.AccountMeta{}, 0)
}
