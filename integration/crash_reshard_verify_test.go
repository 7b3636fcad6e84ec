package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// ---- verification ----

// rsRead is one shard as a verification read it.
type rsRead struct {
	records  []types.Record
	children []types.ChildShard // from the GetRecords that passed the end of a closed shard
	ended    bool               // GetRecords returned no NextShardIterator
	err      error
}

// rsReadShard reads a shard from TRIM_HORIZON to its end: for an open shard
// the first empty page, for a closed one the page without a next iterator.
func rsReadShard(ctx context.Context, c *kinesis.Client, shard string, closed bool) rsRead {
	var r rsRead
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(rsStream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		r.err = fmt.Errorf("GetShardIterator: %w", err)
		return r
	}
	iter := it.ShardIterator
	empty := 0
	for calls := 1; ; calls++ {
		if iter == nil {
			r.err = errors.New("GetShardIterator returned no iterator")
			return r
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			r.err = fmt.Errorf("GetRecords (call %d): %w", calls, err)
			return r
		}
		r.records = append(r.records, out.Records...)
		if out.NextShardIterator == nil {
			r.ended, r.children = true, out.ChildShards
			return r
		}
		if len(out.Records) == 0 {
			if !closed {
				return r
			}
			if empty++; empty > 1000 {
				r.err = fmt.Errorf("closed shard: %d empty GetRecords pages in a row, never reaching its end", empty)
				return r
			}
		} else {
			empty = 0
		}
		if calls > 100000 {
			r.err = errors.New("GetRecords never reached the end of the shard")
			return r
		}
		iter = out.NextShardIterator
	}
}

// verify checks everything the model knows against the server at endpoint
// (see TestCrashReshard). No load runs meanwhile.
func (m *rsModel) verify(endpoint, dataDir, label string) {
	t := m.t
	t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := servertest.Client(endpoint)
	v := &verifier{t: t, label: label}

	// ---- (b) lineage ----
	list, err := rsListShards(ctx, c)
	if err != nil {
		t.Fatalf("verify %s: ListShards: %v", label, err)
	}
	shards := map[string]*rsShard{}
	var order []string // ListShards order
	for _, s := range list {
		id := aws.ToString(s.ShardId)
		r, ok := rsShardRange(s)
		if !ok {
			v.errorf("shard %s: bad hash key range %+v", id, s.HashKeyRange)
			continue
		}
		if _, dup := shards[id]; dup {
			v.errorf("ListShards reports shard %s twice", id)
			continue
		}
		if r.lo.Sign() < 0 || r.hi.Cmp(rsMaxHashKey) > 0 || r.lo.Cmp(r.hi) > 0 {
			v.errorf("shard %s: hash key range %s is not within [0, 2^128-1] or is empty", id, r)
		}
		closed := s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
		shards[id] = &rsShard{id: id, parent: aws.ToString(s.ParentShardId), adjParent: aws.ToString(s.AdjacentParentShardId), rng: r, closed: closed}
		order = append(order, id)
	}
	children := map[string][]*rsShard{}
	for _, id := range order {
		sh := shards[id]
		for _, p := range []string{sh.parent, sh.adjParent} {
			if p == "" {
				continue
			}
			if _, ok := shards[p]; !ok {
				v.errorf("shard %s: parent %s does not exist", id, p)
				continue
			}
			children[p] = append(children[p], sh)
		}
		if sh.adjParent != "" && sh.parent == "" {
			v.errorf("shard %s: an adjacent parent %s but no parent", id, sh.adjParent)
		}
		if sh.parent != "" {
			// A child's range is its parent's (a split's half) or the union
			// of its two adjacent parents' (a merge).
			var parents []rsRange
			for _, p := range []string{sh.parent, sh.adjParent} {
				if ps, ok := shards[p]; ok {
					parents = append(parents, ps.rng)
				}
			}
			if len(parents) == 2 {
				slices.SortFunc(parents, func(a, b rsRange) int { return a.lo.Cmp(b.lo) })
				if rsNext(parents[0].hi).Cmp(parents[1].lo) != 0 || sh.rng.lo.Cmp(parents[0].lo) != 0 || sh.rng.hi.Cmp(parents[1].hi) != 0 {
					v.errorf("shard %s %s: merged from %s and %s, whose ranges %s and %s are not adjacent or not its own", id, sh.rng, sh.parent, sh.adjParent, parents[0], parents[1])
				}
			} else if len(parents) == 1 && sh.adjParent == "" {
				if sh.rng.lo.Cmp(parents[0].lo) < 0 || sh.rng.hi.Cmp(parents[0].hi) > 0 {
					v.errorf("shard %s %s: split from %s %s, but not within its range", id, sh.rng, sh.parent, parents[0])
				}
			}
		}
	}
	var openRanges []*rsShard
	for _, id := range order {
		sh := shards[id]
		kids := children[id]
		if !sh.closed {
			if len(kids) > 0 {
				v.errorf("open shard %s has children %s", id, rsIDs(kids))
			}
			openRanges = append(openRanges, sh)
			continue
		}
		// A closed shard's children cover its range, without overlapping.
		if len(kids) == 0 {
			v.errorf("closed shard %s %s has no children", id, sh.rng)
			continue
		}
		slices.SortFunc(kids, func(a, b *rsShard) int { return a.rng.lo.Cmp(b.rng.lo) })
		if kids[0].rng.lo.Cmp(sh.rng.lo) > 0 || kids[len(kids)-1].rng.hi.Cmp(sh.rng.hi) < 0 {
			v.errorf("closed shard %s %s: its children %s do not cover its range", id, sh.rng, rsIDs(kids))
		}
		for i := 1; i < len(kids); i++ {
			if rsNext(kids[i-1].rng.hi).Cmp(kids[i].rng.lo) != 0 {
				v.errorf("closed shard %s %s: its children %s %s and %s %s leave a gap or overlap", id, sh.rng, kids[i-1].id, kids[i-1].rng, kids[i].id, kids[i].rng)
			}
		}
	}
	// The open shards tile [0, 2^128-1].
	slices.SortFunc(openRanges, func(a, b *rsShard) int { return a.rng.lo.Cmp(b.rng.lo) })
	if len(openRanges) == 0 {
		v.errorf("no open shard")
	} else {
		if openRanges[0].rng.lo.Sign() != 0 {
			v.errorf("the open shards start at %s, not 0 (first: %s)", openRanges[0].rng.lo, openRanges[0].id)
		}
		if last := openRanges[len(openRanges)-1]; last.rng.hi.Cmp(rsMaxHashKey) != 0 {
			v.errorf("the open shards end at %s, not 2^128-1 (last: %s)", last.rng.hi, last.id)
		}
		for i := 1; i < len(openRanges); i++ {
			a, b := openRanges[i-1], openRanges[i]
			if rsNext(a.rng.hi).Cmp(b.rng.lo) != 0 {
				v.errorf("open shards %s %s and %s %s leave a gap or overlap", a.id, a.rng, b.id, b.rng)
			}
		}
	}
	// What was seen stays: every shard ever listed exists with the same
	// range and parents, a closed one stays closed, and the shards an
	// acknowledged reshard closed are closed.
	for id, old := range m.shards {
		sh, ok := shards[id]
		if !ok {
			v.errorf("shard %s (seen by an earlier verification) is gone", id)
			continue
		}
		if old.parent != sh.parent || old.adjParent != sh.adjParent || old.rng.lo.Cmp(sh.rng.lo) != 0 || old.rng.hi.Cmp(sh.rng.hi) != 0 {
			v.errorf("shard %s changed: was parents %q %q range %s, now %q %q %s", id, old.parent, old.adjParent, old.rng, sh.parent, sh.adjParent, sh.rng)
		}
		if old.closed && !sh.closed {
			v.errorf("shard %s was closed at an earlier verification and is open now", id)
		}
	}
	for id, why := range m.closedByAck {
		if sh, ok := shards[id]; !ok {
			v.errorf("shard %s, closed by the acknowledged %s, does not exist", id, why)
		} else if !sh.closed {
			v.errorf("shard %s is open, but the acknowledged %s closed it: the reshard was acknowledged before it was durable", id, why)
		}
	}
	// Reshards of unknown outcome: did they happen?
	for _, op := range m.unknownReshards {
		happened := true
		for _, id := range op.closes() {
			if sh, ok := shards[id]; !ok || !sh.closed {
				happened = false
			}
		}
		outcome := "did not happen"
		if happened {
			m.rsUnknownHappened++
			outcome = "happened"
		}
		t.Logf("verify %s: the %s the kill interrupted %s", label, op, outcome)
	}
	m.unknownReshards = nil

	// ---- (d) shard directories ----
	m.checkDirs(v, dataDir, shards)
	var orphans []string
	for _, d := range m.dirsAtCrash {
		if _, ok := shards[d]; !ok {
			orphans = append(orphans, d)
		}
	}
	if len(orphans) > 0 {
		t.Logf("verify %s: the restart removed the shard directories %v that the crash left and no catalog record names", label, orphans)
	}
	m.orphansRemoved += len(orphans)
	m.dirsAtCrash = nil

	// ---- (a) read every shard ----
	reads := make(map[string]rsRead, len(order))
	{
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, id := range order {
			closed := shards[id].closed
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				r := rsReadShard(ctx, c, id, closed)
				mu.Lock()
				reads[id] = r
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	present := map[recID]string{} // id -> "shard seq"
	ackFound := 0
	total := 0
	cur := map[string][]recID{}
	for _, id := range order {
		sh := shards[id]
		r := reads[id]
		if r.err != nil {
			t.Fatalf("verify %s: reading %s: %v", label, id, r.err)
		}
		if sh.closed != r.ended {
			v.errorf("shard %s: ListShards says closed=%v, but GetRecords %s", id, sh.closed,
				map[bool]string{true: "ended it (no NextShardIterator)", false: "kept returning a NextShardIterator at its end"}[r.ended])
		}
		if r.ended {
			var got []string
			for _, cs := range r.children {
				got = append(got, aws.ToString(cs.ShardId))
			}
			want := rsIDs(children[id])
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				v.errorf("shard %s: GetRecords at its end names children %v, ListShards %v", id, got, want)
			}
		}
		var (
			prevSeq string
			prevBig = new(big.Int)
			got     []recID
			old     = m.prev[id]
		)
		for i, rec := range r.records {
			seq, pk := aws.ToString(rec.SequenceNumber), aws.ToString(rec.PartitionKey)
			where := lazy(func() string { return fmt.Sprintf("%s record #%d (seq %s, key %q)", id, i, seq, pk) })
			n, ok := new(big.Int).SetString(seq, 10)
			if !validSeq(seq) || !ok {
				v.errorf("%s: malformed sequence number", where)
				n = new(big.Int)
			}
			if i > 0 && (n.Cmp(prevBig) <= 0 || seq <= prevSeq) {
				v.errorf("%s: sequence number does not increase: the previous record has %s", where, prevSeq)
			}
			prevSeq, prevBig = seq, n
			w, k, ok := rsParseKey(pk)
			if !ok || len(rec.Data) < 8 {
				v.errorf("%s: not a record any writer sends (%d bytes of data)", where, len(rec.Data))
				got = append(got, ^recID(0))
				continue
			}
			rid := recID(binary.BigEndian.Uint64(rec.Data))
			if rid.writer() != w || rid.key() != k || rid.writer() >= rsWriters || rid.key() >= rsKeysPerWriter {
				v.errorf("%s: data names record %x, of another key", where, uint64(rid))
				got = append(got, ^recID(0))
				continue
			}
			if rid.counter() >= m.writers[w].next[k] {
				v.errorf("%s: record %s was never sent (the writer's next counter of this key is %d)", where, rsName(rid), m.writers[w].next[k])
			}
			if want := m.payload(rid); !bytes.Equal(rec.Data, want) {
				v.errorf("%s: data of %s differs from what was sent: %d bytes %x..., want %d bytes %x...", where, rsName(rid), len(rec.Data), rec.Data[:min(len(rec.Data), 16)], len(want), want[:min(len(want), 16)])
			}
			if h := rsHashKey(pk); h.Cmp(sh.rng.lo) < 0 || h.Cmp(sh.rng.hi) > 0 {
				v.errorf("%s: its hash key %s is outside the shard's range %s", where, h, sh.rng)
			}
			if other, dup := present[rid]; dup {
				v.errorf("%s: record %s is present twice, also at %s", where, rsName(rid), other)
			}
			present[rid] = id + " " + seq
			if a, ok := m.acks[rid]; ok {
				if a.shard != id || a.seq != seq {
					v.errorf("%s: record %s was acknowledged (cycle %d) in %s with sequence number %s", where, rsName(rid), a.cycle, a.shard, a.seq)
				} else {
					ackFound++
				}
			} else if m.lost[rid] {
				v.errorf("%s: unknown-outcome record %s reappeared after an earlier verification found it absent", where, rsName(rid))
			} else if _, ok := m.pending[rid]; !ok && !m.found[rid] {
				v.errorf("%s: record %s is neither acknowledged nor of unknown outcome", where, rsName(rid))
			}
			if i < len(old) && old[i] != rid {
				v.errorf("%s: the previous verification read %s at this position", where, rsName(old[i]))
			}
			got = append(got, rid)
		}
		if len(got) < len(old) {
			v.errorf("shard %s: %d records, but the previous verification read %d; first missing: %s", id, len(got), len(old), rsName(old[len(got)]))
		}
		if o := m.shards[id]; o != nil && o.closed && len(got) != len(old) {
			v.errorf("shard %s was closed at the previous verification with %d records, and now holds %d", id, len(old), len(got))
		}
		cur[id] = got
		total += len(got)
	}
	// Every acknowledged record was found where its acknowledgement said.
	if ackFound != len(m.acks) {
		var missing []*rsAck
		for _, a := range m.acks {
			if at, ok := present[a.id]; !ok || at != a.shard+" "+a.seq {
				missing = append(missing, a)
			}
		}
		slices.SortFunc(missing, func(a, b *rsAck) int { return strings.Compare(a.shard+a.seq, b.shard+b.seq) })
		v.errorf("%d of %d acknowledged records are missing", len(missing), len(m.acks))
		for _, a := range missing[:min(len(missing), 10)] {
			found := "absent"
			if at, ok := present[a.id]; ok {
				found = "found at " + at
			}
			v.errorf("missing acknowledged record %s: %s seq %s, acknowledged in cycle %d; %s", rsName(a.id), a.shard, a.seq, a.cycle, found)
		}
	}
	m.checkAckOrder(v)

	// ---- (c) per-key order in lineage order ----
	topo := rsTopo(order, shards)
	if len(topo) != len(order) {
		v.errorf("the lineage has a cycle: only %d of %d shards can be ordered parents first", len(topo), len(order))
	}
	var last [rsWriters][rsKeysPerWriter]int64
	var lastAt [rsWriters][rsKeysPerWriter]string
	for w := range last {
		for k := range last[w] {
			last[w][k] = -1
		}
	}
	for _, id := range topo {
		for i, rid := range cur[id] {
			if rid == ^recID(0) {
				continue
			}
			w, k := rid.writer(), rid.key()
			if int64(rid.counter()) <= last[w][k] {
				v.errorf("key %s: counter %d (%s record #%d) comes after counter %d (%s) in lineage order: the records of a key were reordered across a reshard",
					rsKey(w, k), rid.counter(), id, i, last[w][k], lastAt[w][k])
			}
			last[w][k] = max(last[w][k], int64(rid.counter()))
			lastAt[w][k] = fmt.Sprintf("%s record #%d", id, i)
		}
	}

	// Resolve the unknown outcomes.
	for rid := range m.pending {
		if _, ok := present[rid]; ok {
			m.found[rid] = true
			m.unknownFound++
		} else {
			m.lost[rid] = true
			m.unknownLost++
		}
	}
	clear(m.pending)
	m.prev = cur
	m.shards = shards
	m.open = len(openRanges)
	m.verifications++
	m.readRecords += total
	d := time.Since(begin)
	m.verifyTime += d
	outcome := "all checks passed"
	if v.errors > 0 {
		outcome = fmt.Sprintf("%d problems (see above)", v.errors)
	}
	t.Logf("verify %s: %d records in %d shards (%d open), %d of %d acknowledged records present; %s (%v)",
		label, total, len(shards), len(openRanges), ackFound, len(m.acks), outcome, d.Round(time.Millisecond))
}

// checkAckOrder checks, per shard, that no acknowledged record A has a larger
// sequence number than a record B whose call was sent after A's returned.
func (m *rsModel) checkAckOrder(v *verifier) {
	byShard := map[string][]*rsAck{}
	for _, a := range m.acks {
		byShard[a.shard] = append(byShard[a.shard], a)
	}
	for shard, list := range byShard {
		slices.SortFunc(list, func(a, b *rsAck) int { return strings.Compare(a.seq, b.seq) })
		var minRet *rsAck // among the acks with larger sequence numbers, the one returned first
		for i := len(list) - 1; i >= 0; i-- {
			b := list[i]
			if minRet != nil && minRet.ret < b.sent {
				v.errorf("%s: %s (seq %s) was acknowledged before %s was sent, but %s got the smaller sequence number %s",
					shard, rsName(minRet.id), minRet.seq, rsName(b.id), rsName(b.id), b.seq)
			}
			if minRet == nil || b.ret < minRet.ret {
				minRet = b
			}
		}
	}
}

// checkDirs checks (d): one stream directory, holding no shard directory of
// a shard the server does not report.
func (m *rsModel) checkDirs(v *verifier, dataDir string, shards map[string]*rsShard) {
	streamsDir := filepath.Join(dataDir, "streams")
	ents, err := os.ReadDir(streamsDir)
	if err != nil {
		v.errorf("read %s: %v", streamsDir, err)
		return
	}
	var streamDirs []string
	for _, e := range ents {
		if e.IsDir() {
			streamDirs = append(streamDirs, e.Name())
		} else {
			v.errorf("unexpected file %s in %s", e.Name(), streamsDir)
		}
	}
	if len(streamDirs) != 1 {
		v.errorf("%d stream directories in %s (%v), want 1", len(streamDirs), streamsDir, streamDirs)
	}
	for _, sd := range streamDirs {
		dir := filepath.Join(streamsDir, sd)
		ents, err := os.ReadDir(dir)
		if err != nil {
			v.errorf("read %s: %v", dir, err)
			continue
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "shardId-") {
				continue
			}
			if _, ok := shards[e.Name()]; !ok {
				var files []string
				if fs, err := os.ReadDir(filepath.Join(dir, e.Name())); err == nil {
					for _, f := range fs {
						files = append(files, f.Name())
					}
				}
				v.errorf("%s/%s exists (holding %v), but ListShards does not report %s: a shard the catalog does not name left its data behind", sd, e.Name(), files, e.Name())
			}
		}
	}
}

// rsShardDirs lists the shard directories under dataDir/streams/*/.
func rsShardDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dataDir, "streams", "*", "shardId-*"))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Base(d)
	}
	return dirs
}

// rsTopo orders the shards parents first (Kahn's algorithm, the ready shards
// in ListShards order). A cycle is reported by leaving shards out, which the
// caller's lineage checks would already have flagged.
func rsTopo(order []string, shards map[string]*rsShard) []string {
	indeg := map[string]int{}
	kids := map[string][]string{}
	for _, id := range order {
		sh := shards[id]
		for _, p := range []string{sh.parent, sh.adjParent} {
			if _, ok := shards[p]; ok && p != "" {
				indeg[id]++
				kids[p] = append(kids[p], id)
			}
		}
	}
	var out, ready []string
	for _, id := range order {
		if indeg[id] == 0 {
			ready = append(ready, id)
		}
	}
	for len(ready) > 0 {
		id := ready[0]
		ready = ready[1:]
		out = append(out, id)
		for _, k := range kids[id] {
			if indeg[k]--; indeg[k] == 0 {
				ready = append(ready, k)
			}
		}
	}
	return out
}

func rsIDs(shards []*rsShard) []string {
	var ids []string
	for _, s := range shards {
		ids = append(ids, s.id)
	}
	return ids
}

// rsNext returns x+1.
func rsNext(x *big.Int) *big.Int { return new(big.Int).Add(x, big.NewInt(1)) }
