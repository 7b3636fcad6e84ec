package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/internal/bench"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

const (
	numWriters    = 4
	keysPerWriter = 16
	maxBatch      = 100  // records per PutRecords call
	maxDataBytes  = 4096 // largest payload
	headerLen     = 24   // self-describing payload header, when the payload is long enough
	seqDigits     = 39   // shoal sequence numbers are fixed width
)

// ---- record identities and payloads ----

// recID names one record a writer generated: writer w, key k of that writer,
// and the key's counter c (0, 1, 2, ... in the order the writer sent them).
// Each identity is sent at most once.
type recID uint64

func newID(w, k int, c uint64) recID { return recID(uint64(w)<<56 | uint64(k)<<48 | c) }

func (id recID) writer() int     { return int(id >> 56) }
func (id recID) key() int        { return int(id >> 48 & 0xff) }
func (id recID) counter() uint64 { return uint64(id) & (1<<48 - 1) }

// String is the record's partition key, "w<writer>-k<key>-c<counter>".
func (id recID) String() string {
	return "w" + strconv.Itoa(id.writer()) + "-k" + strconv.Itoa(id.key()) + "-c" + strconv.FormatUint(id.counter(), 10)
}

// parseID parses a partition key made by recID.String.
func parseID(pk string) (recID, bool) {
	var w, k int
	var c uint64
	if n, err := fmt.Sscanf(pk, "w%d-k%d-c%d", &w, &k, &c); n != 3 || err != nil {
		return 0, false
	}
	if w < 0 || w >= numWriters || k < 0 || k >= keysPerWriter || c >= 1<<48 {
		return 0, false
	}
	id := newID(w, k, c)
	return id, id.String() == pk
}

// workload derives everything a test sends from one seed, so that any record
// read back can be checked against what its writer generated without keeping
// the bytes: the data of a record is a pure function of the seed and its id.
type workload struct {
	seed uint64
	ehk  [numWriters][keysPerWriter]string // explicit hash key of each ordering key
}

// Every record carries its counter in its partition key, so that even an
// empty record is self-identifying; the records of one ordering key
// "w<writer>-k<key>" share an explicit hash key (the MD5 of the ordering key,
// exactly as Kinesis would hash that partition key), so they go to one shard
// and their order there is meaningful.
func newWorkload(seed uint64) *workload {
	wl := &workload{seed: seed}
	for w := range numWriters {
		for k := range keysPerWriter {
			sum := md5.Sum([]byte(fmt.Sprintf("w%d-k%d", w, k)))
			wl.ehk[w][k] = new(big.Int).SetBytes(sum[:]).String()
		}
	}
	return wl
}

// payload returns the data of record id: 0..4096 pseudo-random bytes which,
// when long enough, start with a header naming the record: "SHL\x01", writer,
// key, counter, length and a CRC-32 of those. 5% are empty and 10% shorter
// than the header; of the rest, most sizes are log-uniform (many small
// records, whose framing differs, and a mean near 1 KiB that keeps the
// volume each verification reads down) and some uniform up to 4096.
func (wl *workload) payload(id recID) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], wl.seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(id))
	copy(seed[16:], "shoal-integration")
	src := rand.NewChaCha8(seed)
	r := rand.New(src)
	var n int
	switch p := r.IntN(100); {
	case p < 5:
		n = 0
	case p < 15:
		n = 1 + r.IntN(headerLen-1)
	case p < 35:
		n = headerLen + r.IntN(maxDataBytes-headerLen+1)
	default:
		n = int(math.Exp(math.Log(headerLen) + r.Float64()*math.Log(float64(maxDataBytes+1)/headerLen)))
		n = min(max(n, headerLen), maxDataBytes)
	}
	b := make([]byte, n)
	_, _ = src.Read(b)
	if n >= headerLen {
		copy(b, "SHL\x01")
		binary.BigEndian.PutUint16(b[4:], uint16(id.writer()))
		binary.BigEndian.PutUint16(b[6:], uint16(id.key()))
		binary.BigEndian.PutUint64(b[8:], id.counter())
		binary.BigEndian.PutUint32(b[16:], uint32(n))
		binary.BigEndian.PutUint32(b[20:], crc32.ChecksumIEEE(b[:20]))
	}
	return b
}

// describePayload says what a payload claims to be, for error messages.
func describePayload(b []byte) string {
	if len(b) < headerLen || string(b[:4]) != "SHL\x01" || crc32.ChecksumIEEE(b[:20]) != binary.BigEndian.Uint32(b[20:]) {
		return fmt.Sprintf("%d bytes without a valid header, starting %x", len(b), b[:min(len(b), 16)])
	}
	return fmt.Sprintf("%d bytes claiming w%d-k%d-c%d of length %d", len(b),
		binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint32(b[16:]))
}

// ---- seeds ----

// testSeed returns SHOAL_CRASH_SEED if set, or a random seed.
func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("SHOAL_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("SHOAL_CRASH_SEED=%q: %v", s, err)
		}
		return v
	}
	var b [8]byte
	_, _ = crand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// ---- the model of what the server must hold ----

// ack is one acknowledged record.
type ack struct {
	id    recID
	shard string
	seq   string
	sent  uint64 // logical clock when its call was sent
	ret   uint64 // logical clock when its call returned
	round string // which phase wrote it
	size  int
}

// seen is one record as a verification read it.
type seen struct {
	seq string
	id  recID
}

// model tracks everything sent to one stream and checks what is read back.
type model struct {
	t        *testing.T
	wl       *workload
	stream   string
	shardIDs []string
	keyShard [numWriters][keysPerWriter]string // where each ordering key must land
	writers  [numWriters]*writer
	clock    atomic.Uint64 // logical clock ordering call sends and returns

	acks    map[string]*ack // by sequence number
	ackOf   map[recID]*ack
	pending map[recID]string // unknown outcome, not yet verified: id -> phase
	found   map[recID]bool   // unknown outcome, found by a verification
	lost    map[recID]bool   // unknown outcome, absent at a verification: must never appear
	prev    map[string][]seen

	st stats
}

type stats struct {
	calls, errCalls     int
	acked, ackedBytes   int
	failedEntries       int
	unknownFound        int
	unknownLost         int
	killsInFlight       int // SIGKILLs sent while at least one PutRecords was in flight
	kills               int
	verifications       int
	verifyTime          time.Duration
	readRecords         int
	readBytes           int64
	maxVerifyRecords    int
	retriesUnexpectedly int64
}

func newModel(t *testing.T, seed uint64, stream string) *model {
	m := &model{
		t: t, wl: newWorkload(seed), stream: stream,
		acks: map[string]*ack{}, ackOf: map[recID]*ack{}, pending: map[recID]string{},
		found: map[recID]bool{}, lost: map[recID]bool{}, prev: map[string][]seen{},
	}
	for w := range numWriters {
		m.writers[w] = &writer{w: w, rng: rand.New(rand.NewPCG(seed, uint64(w)+1))}
	}
	return m
}

// createStream creates the stream and learns its shards' hash key ranges.
func (m *model) createStream(ctx context.Context, c *kinesis.Client, shards int32) {
	t := m.t
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(m.stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(m.stream)})
		if err != nil {
			t.Fatalf("DescribeStreamSummary: %v", err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream still %s", out.StreamDescriptionSummary.StreamStatus)
		}
		time.Sleep(20 * time.Millisecond)
	}
	list := m.listShards(ctx, c)
	if len(list) != int(shards) {
		t.Fatalf("ListShards: %d shards, want %d", len(list), shards)
	}
	for _, sh := range list {
		m.shardIDs = append(m.shardIDs, aws.ToString(sh.ShardId))
	}
	for w := range numWriters {
		for k := range keysPerWriter {
			h, _ := new(big.Int).SetString(m.wl.ehk[w][k], 10)
			for _, sh := range list {
				lo, ok1 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
				hi, ok2 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
				if !ok1 || !ok2 {
					t.Fatalf("shard %s: bad hash key range %+v", aws.ToString(sh.ShardId), sh.HashKeyRange)
				}
				if lo.Cmp(h) <= 0 && h.Cmp(hi) <= 0 {
					m.keyShard[w][k] = aws.ToString(sh.ShardId)
				}
			}
			if m.keyShard[w][k] == "" {
				t.Fatalf("no shard covers hash key %s", h)
			}
		}
	}
}

func (m *model) listShards(ctx context.Context, c *kinesis.Client) []types.Shard {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(m.stream)}
	for {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			m.t.Fatalf("ListShards: %v", err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// ---- writers ----

// writer is one load goroutine's persistent state: its own ordering keys and
// their next counters survive server restarts.
type writer struct {
	w    int
	rng  *rand.Rand
	next [keysPerWriter]uint64
}

// writerResult is what one writer observed during one phase.
type writerResult struct {
	acks          []*ack
	unknown       []recID
	calls         int
	errCalls      int
	failedEntries int
	apiErrors     []error // errors the server answered (as opposed to transport errors)
	firstErr      error
}

// phase runs the writers against one server incarnation.
type phase struct {
	m           *model
	name        string
	stopOnError bool // a writer stops after its first failed call
	stop        atomic.Bool
	inflight    atomic.Int32
	wg          sync.WaitGroup
	results     [numWriters]*writerResult
	clients     [numWriters]*bench.Client
}

// startWriters starts every writer against endpoint. Each stops when halted,
// after maxCalls calls if maxCalls > 0, or after its first failed call if
// stopOnError.
func (m *model) startWriters(endpoint, name string, maxCalls int, stopOnError bool) *phase {
	ph := &phase{m: m, name: name, stopOnError: stopOnError}
	for w := range numWriters {
		// Retries are off: a failed call has an unknown outcome, and is never
		// sent again, so a record exists at most once.
		ph.clients[w] = bench.NewClient(endpoint, "us-east-1", 0)
		ph.results[w] = &writerResult{}
		ph.wg.Go(func() { ph.run(m.writers[w], ph.clients[w], ph.results[w], maxCalls) })
	}
	return ph
}

// writerRate caps the records one writer sends per second. Every
// verification reads everything written so far, so the cost of a test grows
// with the square of its records; the cap keeps a 20-cycle run at roughly
// 20,000 records on fast machines, where the writers are not CPU-bound.
const writerRate = 1000

func (ph *phase) run(wr *writer, c *bench.Client, res *writerResult, maxCalls int) {
	m := ph.m
	begin := time.Now()
	sentRecords := 0
	for !ph.stop.Load() && (maxCalls <= 0 || res.calls < maxCalls) {
		if d := time.Until(begin.Add(time.Duration(sentRecords) * time.Second / writerRate)); d > 0 {
			time.Sleep(min(d, 10*time.Millisecond)) // then check stop again
			continue
		}
		n := 1 + wr.rng.IntN(maxBatch)
		ids := make([]recID, n)
		entries := make([]types.PutRecordsRequestEntry, n)
		for i := range n {
			k := wr.rng.IntN(keysPerWriter)
			id := newID(wr.w, k, wr.next[k])
			wr.next[k]++
			ids[i] = id
			entries[i] = types.PutRecordsRequestEntry{
				Data:            m.wl.payload(id),
				PartitionKey:    aws.String(id.String()),
				ExplicitHashKey: aws.String(m.wl.ehk[wr.w][k]),
			}
		}
		sentRecords += n
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		sent := m.clock.Add(1)
		ph.inflight.Add(1)
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(m.stream), Records: entries})
		ph.inflight.Add(-1)
		ret := m.clock.Add(1)
		cancel()
		res.calls++
		if err != nil {
			res.errCalls++
			res.unknown = append(res.unknown, ids...)
			if res.firstErr == nil {
				res.firstErr = err
			}
			var ae smithy.APIError
			if errors.As(err, &ae) {
				res.apiErrors = append(res.apiErrors, err)
			}
			if ph.stopOnError {
				return
			}
			time.Sleep(time.Millisecond) // the server is going away; do not spin
			continue
		}
		if len(out.Records) != n {
			m.t.Errorf("%s: PutRecords of %d records returned %d result entries", ph.name, n, len(out.Records))
			res.unknown = append(res.unknown, ids...)
			continue
		}
		failed := 0
		lastSeq := map[string]string{}
		for i, e := range out.Records {
			id := ids[i]
			if e.ErrorCode != nil || e.SequenceNumber == nil {
				if e.ErrorCode == nil {
					m.t.Errorf("%s: PutRecords entry %d (%s) has neither a sequence number nor an error code", ph.name, i, id)
				}
				failed++
				res.unknown = append(res.unknown, id)
				continue
			}
			seq, shard := aws.ToString(e.SequenceNumber), aws.ToString(e.ShardId)
			want := m.keyShard[id.writer()][id.key()]
			if shard != want {
				m.t.Errorf("%s: record %s acknowledged in %s, but its explicit hash key belongs to %s", ph.name, id, shard, want)
			}
			if !validSeq(seq) {
				m.t.Errorf("%s: record %s acknowledged with malformed sequence number %q", ph.name, id, seq)
			}
			if p, ok := lastSeq[shard]; ok && seq <= p {
				m.t.Errorf("%s: in one PutRecords, record %s (entry %d) got %s, not after the previous entry of %s, %s", ph.name, id, i, seq, shard, p)
			}
			lastSeq[shard] = seq
			res.acks = append(res.acks, &ack{id: id, shard: shard, seq: seq, sent: sent, ret: ret, round: ph.name, size: len(entries[i].Data)})
		}
		if got := int(aws.ToInt32(out.FailedRecordCount)); got != failed {
			m.t.Errorf("%s: FailedRecordCount %d, but %d entries failed", ph.name, got, failed)
		}
		res.failedEntries += failed
	}
}

// awaitInFlight waits (briefly) for a moment when PutRecords calls are in
// flight, preferably several, so that a crash hits appends that share one
// fdatasync; it returns the number in flight.
func (ph *phase) awaitInFlight() int32 {
	for _, want := range []int32{2, 1} {
		for wait := time.Now().Add(100 * time.Millisecond); ph.inflight.Load() < want && time.Now().Before(wait); {
			time.Sleep(50 * time.Microsecond)
		}
	}
	return ph.inflight.Load()
}

// halt tells the writers to stop after their current call.
func (ph *phase) halt() { ph.stop.Store(true) }

// wait waits for the writers to stop (after halt, or after their maxCalls
// calls) and merges what they observed into the model.
func (ph *phase) wait() {
	ph.wg.Wait()
	m := ph.m
	for w, res := range ph.results {
		m.st.calls += res.calls
		m.st.errCalls += res.errCalls
		m.st.failedEntries += res.failedEntries
		if r := ph.clients[w].Retries(); r != 0 {
			m.st.retriesUnexpectedly += r
			m.t.Errorf("%s: writer %d's SDK retried %d times with retries off", ph.name, w, r)
		}
		for _, a := range res.acks {
			if o, dup := m.acks[a.seq]; dup {
				m.t.Errorf("%s: sequence number %s acknowledged twice: for %s (%s) and %s (%s)", ph.name, a.seq, o.id, o.round, a.id, a.round)
				continue
			}
			m.acks[a.seq] = a
			m.ackOf[a.id] = a
			m.st.acked++
			m.st.ackedBytes += a.size
		}
		for _, id := range res.unknown {
			m.pending[id] = ph.name
		}
	}
}

// summary describes a finished phase in one line.
func (ph *phase) summary() string {
	var calls, errCalls, acks, unknown int
	var first error
	for _, r := range ph.results {
		calls += r.calls
		errCalls += r.errCalls
		acks += len(r.acks)
		unknown += len(r.unknown)
		if first == nil {
			first = r.firstErr
		}
	}
	s := fmt.Sprintf("%s: %d calls (%d failed), %d records acknowledged, %d unknown", ph.name, calls, errCalls, acks, unknown)
	if first != nil {
		s += fmt.Sprintf("; first error: %v", first)
	}
	return s
}

// ---- verification ----

func validSeq(s string) bool {
	if len(s) != seqDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// verifier reports at most maxErrors problems of one verification, then
// stops the test.
type verifier struct {
	t      *testing.T
	label  string
	errors int
}

const maxErrors = 25

func (v *verifier) errorf(format string, args ...any) {
	v.t.Helper()
	v.errors++
	v.t.Errorf("verify %s: "+format, append([]any{v.label}, args...)...)
	if v.errors >= maxErrors {
		v.t.Fatalf("verify %s: too many errors, giving up", v.label)
	}
}

// verify reads every shard from TRIM_HORIZON through endpoint and checks
// everything the model knows. It resolves the pending unknown records.
func (m *model) verify(endpoint, label string) {
	t := m.t
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := servertest.Client(endpoint)
	v := &verifier{t: t, label: label}

	// The shards survived.
	list := m.listShards(ctx, c)
	var ids []string
	for _, sh := range list {
		ids = append(ids, aws.ToString(sh.ShardId))
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			v.errorf("shard %s is closed (ending sequence number %s)", aws.ToString(sh.ShardId), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber))
		}
	}
	if !slices.Equal(ids, m.shardIDs) {
		v.errorf("ListShards returned %v, want %v", ids, m.shardIDs)
	}

	present := map[recID]string{} // id -> sequence number, over all shards
	ackFound := 0
	var lastCounter [numWriters][keysPerWriter]int64
	for w := range lastCounter {
		for k := range lastCounter[w] {
			lastCounter[w][k] = -1
		}
	}
	cur := map[string][]seen{}
	total := 0
	pages := fetchShards(ctx, c, m.stream, m.shardIDs)
	for si, shard := range m.shardIDs {
		var (
			prevSeq     string
			prevBig     = new(big.Int)
			prevArrival time.Time
			got         []seen
			old         = m.prev[shard]
		)
		check := func(r types.Record) {
			seq, pk := aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey)
			i := len(got)
			where := lazy(func() string { return fmt.Sprintf("%s record #%d (seq %s, key %q)", shard, i, seq, pk) })
			// (2) Sequence numbers are well formed and strictly increase,
			// numerically and as strings.
			if !validSeq(seq) {
				v.errorf("%s: malformed sequence number", where)
			}
			n, ok := new(big.Int).SetString(seq, 10)
			if !ok {
				n = new(big.Int)
			}
			if i > 0 && (n.Cmp(prevBig) <= 0 || seq <= prevSeq) {
				v.errorf("%s: sequence number does not increase: previous record has %s", where, prevSeq)
			}
			prevSeq, prevBig = seq, n
			if r.ApproximateArrivalTimestamp == nil {
				v.errorf("%s: no ApproximateArrivalTimestamp", where)
			} else {
				if r.ApproximateArrivalTimestamp.Before(prevArrival) {
					v.errorf("%s: arrival %v is before the previous record's %v", where, *r.ApproximateArrivalTimestamp, prevArrival)
				}
				prevArrival = *r.ApproximateArrivalTimestamp
			}
			// (4) The record was generated by a writer, routed as its key
			// says, and carries exactly the bytes generated for it.
			id, ok := parseID(pk)
			if !ok {
				v.errorf("%s: partition key names no record any writer sends; data: %s", where, describePayload(r.Data))
				got = append(got, seen{seq: seq, id: ^recID(0)})
				return
			}
			if id.counter() >= m.writers[id.writer()].next[id.key()] {
				v.errorf("%s: record was never sent (the writer's next counter for this key is %d)", where, m.writers[id.writer()].next[id.key()])
			}
			if want := m.keyShard[id.writer()][id.key()]; want != shard {
				v.errorf("%s: record belongs in %s", where, want)
			}
			if want := m.wl.payload(id); !bytes.Equal(r.Data, want) {
				v.errorf("%s: data differs from what was sent: got %s, want %s", where, describePayload(r.Data), describePayload(want))
			}
			// Never twice.
			if other, dup := present[id]; dup {
				v.errorf("%s: record is present twice, also at %s", where, other)
			}
			present[id] = seq
			// (3) The records of one key are in the order they were sent.
			lc := &lastCounter[id.writer()][id.key()]
			if int64(id.counter()) <= *lc {
				v.errorf("%s: counter %d read after counter %d of the same key: records of a key were reordered", where, id.counter(), *lc)
			}
			*lc = max(*lc, int64(id.counter()))
			// (1) Acknowledged records are where their acknowledgement said.
			if a, ok := m.acks[seq]; ok {
				if a.id != id {
					v.errorf("%s: sequence number was acknowledged (%s) for record %s", where, a.round, a.id)
				} else {
					ackFound++
				}
			} else if a, ok := m.ackOf[id]; ok {
				v.errorf("%s: record was acknowledged (%s) with sequence number %s in %s", where, a.round, a.seq, a.shard)
			} else if m.lost[id] {
				v.errorf("%s: unknown-outcome record reappeared after an earlier verification found it absent", where)
			} else if _, ok := m.pending[id]; !ok && !m.found[id] {
				v.errorf("%s: record is neither acknowledged nor of unknown outcome", where)
			}
			// (5) What the previous verification read is a prefix of this.
			if i < len(old) && old[i] != (seen{seq, id}) {
				v.errorf("%s: previous verification read %s (seq %s) at this position", where, old[i].id, old[i].seq)
			}
			got = append(got, seen{seq: seq, id: id})
			total++
			m.st.readBytes += int64(len(r.Data))
		}
		for pg := range pages[si] {
			if pg.err != nil {
				t.Fatalf("verify %s: reading %s: %v", label, shard, pg.err)
			}
			for _, r := range pg.records {
				check(r)
			}
		}
		if len(got) < len(old) {
			v.errorf("%s: %d records, but the previous verification read %d; first missing: %s (seq %s)", shard, len(got), len(old), old[len(got)].id, old[len(got)].seq)
		}
		cur[shard] = got
	}

	// (1) Every acknowledged record was found.
	if ackFound != len(m.acks) {
		var missing []*ack
		for _, a := range m.acks {
			if seq, ok := present[a.id]; !ok || seq != a.seq {
				missing = append(missing, a)
			}
		}
		slices.SortFunc(missing, func(a, b *ack) int { return compareStrings(a.seq, b.seq) })
		v.errorf("%d of %d acknowledged records are missing", len(missing), len(m.acks))
		for _, a := range missing[:min(len(missing), 10)] {
			v.errorf("missing acknowledged record %s: %s seq %s, %d bytes, written in %s", a.id, a.shard, a.seq, a.size, a.round)
		}
	}

	// (2) Acknowledgements are linearizable per shard: a record whose call
	// was sent after another call returned has a larger sequence number.
	m.checkAckOrder(v)

	// Resolve the unknown outcomes.
	for id, ph := range m.pending {
		if _, ok := present[id]; ok {
			m.found[id] = true
			m.st.unknownFound++
		} else {
			m.lost[id] = true
			m.st.unknownLost++
		}
		_ = ph
	}
	clear(m.pending)

	m.prev = cur
	m.st.verifications++
	m.st.readRecords += total
	m.st.maxVerifyRecords = max(m.st.maxVerifyRecords, total)
	d := time.Since(start)
	m.st.verifyTime += d
	t.Logf("verify %s: %d records in %d shards, %d of %d acknowledged records present (%v)", label, total, len(m.shardIDs), ackFound, len(m.acks), d.Round(time.Millisecond))
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkAckOrder checks, per shard, that no acknowledged record A has a larger
// sequence number than a record B whose call was sent after A's returned.
func (m *model) checkAckOrder(v *verifier) {
	byShard := map[string][]*ack{}
	for _, a := range m.acks {
		byShard[a.shard] = append(byShard[a.shard], a)
	}
	for shard, list := range byShard {
		slices.SortFunc(list, func(a, b *ack) int { return compareStrings(a.seq, b.seq) })
		var minRet *ack // among the acks with larger sequence numbers, the one returned first
		for i := len(list) - 1; i >= 0; i-- {
			b := list[i]
			if minRet != nil && minRet.ret < b.sent {
				v.errorf("%s: %s (seq %s, %s) was acknowledged before %s was sent, but %s got the smaller sequence number %s",
					shard, minRet.id, minRet.seq, minRet.round, b.id, b.id, b.seq)
			}
			if minRet == nil || b.ret < minRet.ret {
				minRet = b
			}
		}
	}
}

// lazy formats a string only when an error message needs it.
type lazy func() string

func (l lazy) String() string { return l() }

// page is one GetRecords result, or the error that ended a shard's reading.
type page struct {
	records []types.Record
	err     error
}

// fetchShards reads the shards concurrently (decoding responses is most of
// the cost of a verification), delivering each shard's pages in order on its
// channel. The readers give up when ctx ends.
func fetchShards(ctx context.Context, c *kinesis.Client, stream string, shards []string) []chan page {
	chans := make([]chan page, len(shards))
	for i, shard := range shards {
		ch := make(chan page, 4)
		chans[i] = ch
		go func() {
			defer close(ch)
			send := func(p page) bool {
				select {
				case ch <- p:
					return true
				case <-ctx.Done():
					return false
				}
			}
			err := readShard(ctx, c, stream, shard, func(recs []types.Record) bool { return send(page{records: recs}) })
			if err != nil {
				send(page{err: err})
			}
		}()
	}
	return chans
}

// readShard reads a shard from TRIM_HORIZON to its end, calling fn with every
// page of records in order until it returns false. No writer may run meanwhile.
func readShard(ctx context.Context, c *kinesis.Client, stream, shard string, fn func([]types.Record) bool) error {
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return fmt.Errorf("GetShardIterator: %w", err)
	}
	iter := it.ShardIterator
	for calls := 0; ; calls++ {
		if iter == nil {
			return errors.New("GetRecords returned no NextShardIterator for an open shard")
		}
		if calls > 100000 {
			return errors.New("GetRecords never reached the end of the shard")
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return fmt.Errorf("GetRecords (call %d): %w", calls+1, err)
		}
		if len(out.Records) == 0 {
			return nil
		}
		if !fn(out.Records) {
			return ctx.Err()
		}
		iter = out.NextShardIterator
	}
}
