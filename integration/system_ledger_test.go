package integration

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pos is an extended sequence number: sequence number, then sub-sequence
// number. shoal's sequence numbers are fixed width, so strings compare as
// numbers. The zero pos (seq "") is before every record: TRIM_HORIZON.
type pos struct {
	seq string
	sub int64
}

func (a pos) compare(b pos) int {
	if c := strings.Compare(a.seq, b.seq); c != 0 {
		return c
	}
	return cmp.Compare(a.sub, b.sub)
}

func (a pos) String() string { return a.seq + "/" + strconv.FormatInt(a.sub, 10) }

// parsePos parses a position a worker reported; a checkpoint sentinel
// (TRIM_HORIZON and the like) is the zero pos.
func parsePos(seq, sub string) (pos, error) {
	n, err := strconv.ParseInt(sub, 10, 64)
	if err != nil {
		return pos{}, fmt.Errorf("sub-sequence number %q: %w", sub, err)
	}
	if !validSeq(seq) {
		return pos{}, nil
	}
	return pos{seq: seq, sub: n}, nil
}

// recKey names one record a producer put: its key and counter.
type recKey struct {
	key     string
	counter int
}

func (r recKey) String() string { return r.key + ":" + strconv.Itoa(r.counter) }

// parseRecKey parses "<key>:<counter>", the start of a record's data.
func parseRecKey(s string) (recKey, bool) {
	k, c, ok := strings.Cut(s, ":")
	if !ok || k == "" {
		return recKey{}, false
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 {
		return recKey{}, false
	}
	return recKey{k, n}, true
}

// shardPos names a record in the stream.
type shardPos struct {
	shard string
	pos
}

// sysTenure is one processor's hold of one shard: from its Initialize to
// LeaseLost, ShardEnded, ShutdownRequested, or the end of its process.
type sysTenure struct {
	id      int
	worker  string // "w1#2": worker w1, second incarnation
	shard   string
	start   int64 // Initialize time, Unix ns
	startCk pos   // the checkpoint it started after
	end     string
	endTS   int64
	deliv   []*sysDelivery
}

// sysDelivery is one record a processor reported.
type sysDelivery struct {
	ts     int64
	tenure *sysTenure
	at     shardPos
	rec    recKey
}

// sysCkpt is a checkpoint a worker confirmed.
type sysCkpt struct {
	ts     int64
	tenure *sysTenure
	at     pos
}

// sysLedger collects what every worker process reported.
type sysLedger struct {
	mu        sync.Mutex // guards the following
	tenures   []*sysTenure
	byPos     map[shardPos][]*sysDelivery
	byRec     map[recKey][]*sysDelivery
	ckpts     map[string][]sysCkpt // by shard
	ckptFails []string
	lastPos   map[string]pos // by shard: the last record processed, fillers included
	bogus     []string       // lines or data the test cannot account for
	fillers   int            // disk filler records delivered
	lines     int
}

func newSysLedger() *sysLedger {
	return &sysLedger{byPos: map[shardPos][]*sysDelivery{}, byRec: map[recKey][]*sysDelivery{}, ckpts: map[string][]sysCkpt{}, lastPos: map[string]pos{}}
}

// uniqueRecords is the number of distinct records processed so far.
func (l *sysLedger) uniqueRecords() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byRec)
}

// lostDuring counts the tenures of worker (a label) that ended with
// LeaseLost between from and to.
func (l *sysLedger) lostDuring(worker string, from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, tn := range l.tenures {
		if tn.worker == worker && tn.end == "lost" && tn.endTS >= from.UnixNano() && tn.endTS <= to.UnixNano() {
			n++
		}
	}
	return n
}

// lastProcessed returns the last record of each shard processed.
func (l *sysLedger) lastProcessed() map[string]pos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.lastPos)
}

// maxCounter returns the highest counter of key processed, or -1.
func (l *sysLedger) maxCounter(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := -1
	for rk := range l.byRec {
		if rk.key == key {
			m = max(m, rk.counter)
		}
	}
	return m
}

// describeTenures describes the last three tenures of each shard.
func (l *sysLedger) describeTenures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	byShard := map[string][]*sysTenure{}
	for _, tn := range l.tenures {
		byShard[tn.shard] = append(byShard[tn.shard], tn)
	}
	var out []string
	for _, shard := range slices.Sorted(maps.Keys(byShard)) {
		list := byShard[shard]
		for _, tn := range list[max(0, len(list)-3):] {
			last := "no record"
			if n := len(tn.deliv); n > 0 {
				d := tn.deliv[n-1]
				last = fmt.Sprintf("%d records, last %s (%s) at %s", n, d.at.pos, d.rec, time.Unix(0, d.ts).Format("15:04:05.000"))
			}
			out = append(out, fmt.Sprintf("%s: tenure of %s from %s (after %s), ended %q at %s; %s", shard, tn.worker,
				time.Unix(0, tn.start).Format("15:04:05.000"), tn.startCk, tn.end, time.Unix(0, tn.endTS).Format("15:04:05.000"), last))
		}
	}
	return out
}

// delivered reports whether r was processed.
func (l *sysLedger) delivered(r recKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byRec[r]) > 0
}

// readWorker consumes one worker process's stdout until EOF. ready is
// closed at its READY line. killed reports, at EOF, whether the test
// SIGKILLed the process; its open tenures end as "killed" or "exit".
func (l *sysLedger) readWorker(label string, r io.Reader, ready chan<- struct{}, killed func() bool) {
	open := map[string]*sysTenure{} // by processor
	br := bufio.NewReaderSize(r, 1<<16)
	readyClosed := false
	var lastTS int64
	for {
		s, err := br.ReadString('\n')
		if err != nil {
			// A line without its newline was cut by a SIGKILL: its record
			// was not checkpointed, so it is simply not reported.
			break
		}
		f := strings.Fields(s)
		if len(f) < 2 {
			l.addBogus(fmt.Sprintf("%s: short line %q", label, s))
			continue
		}
		ts, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			l.addBogus(fmt.Sprintf("%s: bad time in %q", label, s))
			continue
		}
		lastTS = ts
		l.mu.Lock()
		l.lines++
		l.mu.Unlock()
		switch f[0] {
		case "READY":
			if !readyClosed {
				close(ready)
				readyClosed = true
			}
		case "EXIT":
		default:
			if len(f) < 4 {
				l.addBogus(fmt.Sprintf("%s: short line %q", label, s))
				continue
			}
			l.handle(label, f, ts, open)
		}
	}
	if !readyClosed {
		close(ready)
	}
	how := "exit"
	if killed() {
		how = "killed"
	}
	l.mu.Lock()
	for _, tn := range open {
		tn.end, tn.endTS = how, lastTS
	}
	l.mu.Unlock()
}

// handle applies one line "<kind> <ts> <shard> <proc> ..." of worker label;
// open holds the label's processors that have not ended.
func (l *sysLedger) handle(label string, f []string, ts int64, open map[string]*sysTenure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bogus := func(format string, args ...any) {
		l.bogus = append(l.bogus, label+": "+fmt.Sprintf(format, args...))
	}
	shard, proc := f[2], f[3]
	cur := open[proc]
	if f[0] != "I" && cur == nil {
		bogus("%s line of %s processor %s outside a tenure: %v", f[0], shard, proc, f)
		return
	}
	if cur != nil && cur.shard != shard {
		bogus("processor %s of %s reports for %s: %v", proc, cur.shard, shard, f)
		return
	}
	closeCur := func(how string) {
		cur.end, cur.endTS = how, ts
		delete(open, proc)
	}
	switch f[0] {
	case "I":
		if len(f) != 6 {
			bogus("bad line %v", f)
			return
		}
		if cur != nil {
			bogus("processor %s initialized twice", proc)
			return
		}
		p, err := parsePos(f[4], f[5])
		if err != nil {
			bogus("%v", err)
			return
		}
		tn := &sysTenure{id: len(l.tenures), worker: label, shard: shard, start: ts, startCk: p}
		l.tenures = append(l.tenures, tn)
		open[proc] = tn
	case "R":
		if len(f) != 7 {
			bogus("bad line %v", f)
			return
		}
		p, err := parsePos(f[4], f[5])
		if err != nil || p.seq == "" {
			bogus("bad position in %v", f)
			return
		}
		if p.compare(l.lastPos[shard]) > 0 {
			l.lastPos[shard] = p
		}
		if strings.HasPrefix(f[6], "filler:") {
			l.fillers++
			return
		}
		rk, ok := parseRecKey(f[6])
		if !ok {
			bogus("record data %q is no record the test put", f[6])
			return
		}
		d := &sysDelivery{ts: ts, tenure: cur, at: shardPos{shard, p}, rec: rk}
		cur.deliv = append(cur.deliv, d)
		l.byPos[d.at] = append(l.byPos[d.at], d)
		l.byRec[rk] = append(l.byRec[rk], d)
	case "C", "S":
		if len(f) != 6 {
			bogus("bad line %v", f)
			return
		}
		p, err := parsePos(f[4], f[5])
		if err != nil {
			bogus("%v", err)
			return
		}
		l.ckpts[shard] = append(l.ckpts[shard], sysCkpt{ts: ts, tenure: cur, at: p})
		if f[0] == "S" {
			closeCur("shutdown")
		}
	case "X":
		l.ckptFails = append(l.ckptFails, label+" "+strings.Join(f[2:], " "))
	case "L":
		closeCur("lost")
	case "E":
		closeCur("ended")
	default:
		bogus("unknown line %v", f)
	}
}

func (l *sysLedger) addBogus(s string) {
	l.mu.Lock()
	l.bogus = append(l.bogus, s)
	l.mu.Unlock()
}

// sysAck is a record the producer acknowledged, where it said it stored it.
type sysAck struct {
	at shardPos
}

// sysEvent is a fault the test injected, for the report.
type sysEvent struct {
	ts   int64
	what string
}

// sysReport sums up the check.
type sysReport struct {
	lost                                       int // acknowledged records never processed
	deliveries, uniquePositions, uniqueRecords int
	redeliveries                               int            // extra deliveries of one position
	redeliveryCause                            map[string]int // how the lease of the redelivering tenure's predecessor ended
	redeliveryEvent                            map[string]int // the last fault injected before the redelivering tenure started
	maxRedeliveriesPerTenure                   int
	producerDuplicates                         int // records stored at more than one position
	tenures                                    int
	tenureEnds                                 map[string]int
	ckptFails                                  int
	fillers                                    int
	// zombieDeliveries counts deliveries by a tenure after the next tenure
	// of its shard had started (its holder did not know it had lost the
	// lease); maxOverlap is the longest such overlap.
	zombieDeliveries int
	maxOverlap       time.Duration
	zombieEvent      map[string]int // by the last fault before the successor started
}

// lastEventBefore names the last fault injected at or before ts.
func lastEventBefore(events []sysEvent, ts int64) string {
	ev := "none"
	for _, e := range events {
		if e.ts <= ts {
			ev = e.what
		}
	}
	return ev
}

// check verifies the invariants over everything reported, against the
// producers' acknowledgements acks and the number of counters put for
// each key. It returns the report and the problems found, at most ten of
// each kind.
func (l *sysLedger) check(acks map[recKey]sysAck, putCount map[string]int, events []sysEvent) (sysReport, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := sysReport{redeliveryCause: map[string]int{}, redeliveryEvent: map[string]int{}, tenureEnds: map[string]int{}, zombieEvent: map[string]int{}}
	var problems []string
	limited := func(kind string) func(format string, args ...any) {
		n := 0
		return func(format string, args ...any) {
			n++
			if n <= 10 {
				problems = append(problems, kind+": "+fmt.Sprintf(format, args...))
			} else if n == 11 {
				problems = append(problems, kind+": more problems of this kind not shown")
			}
		}
	}

	bogusErr := limited("unaccountable worker output")
	for _, b := range l.bogus {
		bogusErr("%s", b)
	}

	// 1. No acknowledged record lost: each was processed, at the position
	// its acknowledgement gave.
	lostErr, misplacedErr := limited("acknowledged record never processed"), limited("acknowledged record not processed at its acknowledged position")
	var lost []recKey
	for rk, a := range acks {
		ds := l.byRec[rk]
		if len(ds) == 0 {
			lost = append(lost, rk)
			continue
		}
		if len(l.byPos[a.at]) == 0 {
			var got []string
			for _, d := range ds {
				got = append(got, d.at.shard+" "+d.at.pos.String())
			}
			misplacedErr("%s acknowledged at %s %s, processed at %v", rk, a.at.shard, a.at.pos, got)
		}
	}
	slices.SortFunc(lost, func(a, b recKey) int { return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.counter, b.counter)) })
	rep.lost = len(lost)
	for _, rk := range lost {
		lostErr("%s acknowledged at %s %s", rk, acks[rk].at.shard, acks[rk].at.pos)
	}

	// 2. Every record processed was put, and is where the producer put it.
	neverPut := limited("record processed but never put")
	for rk, ds := range l.byRec {
		if n, ok := putCount[rk.key]; !ok || rk.counter >= n {
			neverPut("%s on %s %s (counters put for the key: %d)", rk, ds[0].at.shard, ds[0].at.pos, n)
		}
	}

	// 3. Within a tenure, records come in shard order, each once.
	orderErr := limited("tenure delivered out of order")
	for _, tn := range l.tenures {
		rep.tenures++
		end := tn.end
		if end == "" {
			end = "open"
		}
		rep.tenureEnds[end]++
		for i := 1; i < len(tn.deliv); i++ {
			if tn.deliv[i].at.pos.compare(tn.deliv[i-1].at.pos) <= 0 {
				orderErr("%s on %s: %s (%s) after %s (%s)", tn.worker, tn.shard, tn.deliv[i].at.pos, tn.deliv[i].rec, tn.deliv[i-1].at.pos, tn.deliv[i-1].rec)
			}
		}
		// Per key, the counters increase, except for a record the
		// producer stored twice, whose second copy may follow later ones.
		maxCounter := map[string]int{}
		for _, d := range tn.deliv {
			m, seen := maxCounter[d.rec.key]
			if seen && d.rec.counter <= m && !storedTwice(l.byRec[d.rec]) {
				orderErr("%s on %s: key %s counter %d (%s) after counter %d", tn.worker, tn.shard, d.rec.key, d.rec.counter, d.at.pos, m)
			}
			maxCounter[d.rec.key] = max(m, d.rec.counter)
		}
		if len(tn.deliv) > 0 && tn.deliv[0].at.pos.compare(tn.startCk) <= 0 {
			orderErr("%s on %s: first record %s at or before the checkpoint %s it started from", tn.worker, tn.shard, tn.deliv[0].at.pos, tn.startCk)
		}
	}

	// 4. Per key, the first copies are in counter order in one shard.
	keyErr := limited("per-key order broken")
	type first struct {
		counter int
		at      shardPos
	}
	byKey := map[string][]first{}
	for rk, ds := range l.byRec {
		f := ds[0].at
		positions := map[shardPos]bool{}
		for _, d := range ds {
			positions[d.at] = true
			if d.at.shard != f.shard {
				keyErr("%s stored in two shards, %s and %s", rk, f.shard, d.at.shard)
				continue
			}
			if d.at.pos.compare(f.pos) < 0 {
				f = d.at
			}
		}
		if len(positions) > 1 {
			rep.producerDuplicates++
		}
		byKey[rk.key] = append(byKey[rk.key], first{rk.counter, f})
	}
	for key, fs := range byKey {
		slices.SortFunc(fs, func(a, b first) int { return cmp.Compare(a.counter, b.counter) })
		for i := 1; i < len(fs); i++ {
			if fs[i].at.shard != fs[i-1].at.shard {
				keyErr("key %s in two shards: counter %d in %s, %d in %s", key, fs[i-1].counter, fs[i-1].at.shard, fs[i].counter, fs[i].at.shard)
			} else if fs[i].at.pos.compare(fs[i-1].at.pos) <= 0 {
				keyErr("key %s: counter %d stored at %s, before counter %d at %s", key, fs[i].counter, fs[i].at.pos, fs[i-1].counter, fs[i-1].at.pos)
			}
		}
	}

	// 5. A position is processed again only by a later tenure of its shard
	// that started from a checkpoint before it: a lease that moved before
	// the record was checkpointed.
	redelErr := limited("redelivery outside a failover")
	tenuresOf := map[string][]*sysTenure{}
	for _, tn := range l.tenures {
		tenuresOf[tn.shard] = append(tenuresOf[tn.shard], tn)
	}
	for _, list := range tenuresOf {
		slices.SortFunc(list, func(a, b *sysTenure) int { return cmp.Compare(a.start, b.start) })
	}
	perTenure := map[*sysTenure]int{}
	for at, ds := range l.byPos {
		rep.uniquePositions++
		rep.deliveries += len(ds)
		if len(ds) == 1 {
			continue
		}
		ds = slices.Clone(ds)
		slices.SortFunc(ds, func(a, b *sysDelivery) int { return cmp.Compare(a.tenure.start, b.tenure.start) })
		for i := 1; i < len(ds); i++ {
			d, prev := ds[i], ds[i-1]
			rep.redeliveries++
			perTenure[d.tenure]++
			if d.tenure == prev.tenure {
				redelErr("%s %s (%s) delivered twice by one tenure of %s", at.shard, at.pos, d.rec, d.tenure.worker)
				continue
			}
			if d.at.pos.compare(d.tenure.startCk) <= 0 {
				redelErr("%s %s (%s) delivered again by %s, which started from the later checkpoint %s", at.shard, at.pos, d.rec, d.tenure.worker, d.tenure.startCk)
			}
			// The tenure the lease came from: the one of this shard that
			// started last before d's.
			var from *sysTenure
			for _, tn := range tenuresOf[at.shard] {
				if tn.start < d.tenure.start {
					from = tn
				}
			}
			if from == nil {
				redelErr("%s %s (%s) delivered again by %s, but no tenure of the shard started before it", at.shard, at.pos, d.rec, d.tenure.worker)
				continue
			}
			// A redelivery needs the lease to have moved without a
			// checkpoint of the record: its holder was killed or lost it
			// (to a steal or an expiry), or still ran when the lease moved.
			cause := from.end
			if cause == "" || from.endTS > d.tenure.start {
				cause = "overlap (" + cmp.Or(from.end, "open") + ")"
			} else if cause != "killed" && cause != "lost" {
				redelErr("%s %s (%s) delivered again by %s after %s's tenure ended by %q", at.shard, at.pos, d.rec, d.tenure.worker, from.worker, cause)
			}
			rep.redeliveryCause[cause]++
			rep.redeliveryEvent[lastEventBefore(events, d.tenure.start)]++
		}
	}
	for _, n := range perTenure {
		rep.maxRedeliveriesPerTenure = max(rep.maxRedeliveriesPerTenure, n)
	}
	rep.uniqueRecords = len(l.byRec)

	// Overlaps: a tenure still delivering after its successor started.
	for _, list := range tenuresOf {
		for i := 1; i < len(list); i++ {
			prev, next := list[i-1], list[i]
			for _, d := range prev.deliv {
				if d.ts > next.start {
					rep.zombieDeliveries++
					rep.maxOverlap = max(rep.maxOverlap, time.Duration(d.ts-next.start))
					rep.zombieEvent[lastEventBefore(events, next.start)]++
				}
			}
		}
	}

	// 6. Checkpoints never go back: a tenure starts at or after every
	// checkpoint of its shard confirmed before it started.
	ckErr := limited("checkpoint went back")
	for _, tn := range l.tenures {
		for _, c := range l.ckpts[tn.shard] {
			if c.ts < tn.start && c.tenure != tn && tn.startCk.compare(c.at) < 0 {
				ckErr("%s took %s at %s from checkpoint %s, but %s had confirmed %s at %s",
					tn.worker, tn.shard, time.Unix(0, tn.start).Format("15:04:05.000"), tn.startCk, c.tenure.worker, c.at, time.Unix(0, c.ts).Format("15:04:05.000"))
			}
		}
	}
	rep.ckptFails = len(l.ckptFails)
	rep.fillers = l.fillers
	return rep, problems
}

// storedTwice reports whether the deliveries of one record are at more than
// one position.
func storedTwice(ds []*sysDelivery) bool {
	for _, d := range ds[1:] {
		if d.at != ds[0].at {
			return true
		}
	}
	return false
}
