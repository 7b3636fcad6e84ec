package integration

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/internal/bench"
)

// ---- the load: writers and the resharder ----

// rsPhase is the load running against one server incarnation.
type rsPhase struct {
	m        *rsModel
	name     string
	stop     atomic.Bool
	inflight atomic.Int32
	wg       sync.WaitGroup
	results  [rsWriters]*rsWriterResult
	clients  [rsWriters]*bench.Client
	rs       *rsResharderState
	rsClient *bench.Client
}

type rsWriterResult struct {
	acks          []*rsAck
	unknown       []recID
	calls         int
	errCalls      int
	failedEntries int
	apiErrors     []string // error responses, and failed entries: the server never gives one here
	firstErr      error
}

func (m *rsModel) startLoad(endpoint, name string) *rsPhase {
	ph := &rsPhase{m: m, name: name, rs: m.rs}
	for w := range rsWriters {
		// Retries are off: a failed call has an unknown outcome and is never
		// sent again, so a record exists at most once.
		ph.clients[w] = bench.NewClient(endpoint, "us-east-1", 0)
		ph.results[w] = &rsWriterResult{}
		ph.wg.Go(func() { ph.write(m.writers[w], ph.clients[w], ph.results[w]) })
	}
	ph.rsClient = bench.NewClient(endpoint, "us-east-1", 0)
	ph.rs.begin()
	ph.wg.Go(func() { ph.reshard(ph.rsClient) })
	return ph
}

func (ph *rsPhase) halt() { ph.stop.Store(true) }

// wait waits for the load to stop and merges what it observed into the model.
func (ph *rsPhase) wait() {
	ph.wg.Wait()
	m := ph.m
	t := m.t
	for w, res := range ph.results {
		m.calls += res.calls
		m.errCalls += res.errCalls
		if r := ph.clients[w].Retries(); r != 0 {
			t.Errorf("%s: writer %d's SDK retried %d times with retries off", ph.name, w, r)
		}
		for _, e := range res.apiErrors[:min(len(res.apiErrors), 5)] {
			t.Errorf("%s: writer %d: %s", ph.name, w, e)
		}
		for _, a := range res.acks {
			if o, dup := m.acks[a.id]; dup {
				t.Errorf("%s: record %s acknowledged twice (%s %s and %s %s)", ph.name, rsName(a.id), o.shard, o.seq, a.shard, a.seq)
				continue
			}
			m.acks[a.id] = a
		}
		for _, id := range res.unknown {
			m.pending[id] = m.cycle
		}
	}
	if r := ph.rsClient.Retries(); r != 0 {
		t.Errorf("%s: the resharder's SDK retried %d times with retries off", ph.name, r)
	}
	rs := ph.rs
	for _, e := range rs.apiErrors[:min(len(rs.apiErrors), 5)] {
		t.Errorf("%s: resharder: %s", ph.name, e)
	}
	for _, op := range rs.done {
		if op.merge {
			m.merges++
		} else {
			m.splits++
		}
		for _, s := range op.closes() {
			m.closedByAck[s] = fmt.Sprintf("%s (%s)", op, ph.name)
		}
	}
	m.unknownReshards = append(m.unknownReshards, rs.unknown...)
	m.rsUnknown += len(rs.unknown)
}

// summary describes a finished phase in one line.
func (ph *rsPhase) summary() string {
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
	splits, merges := 0, 0
	for _, op := range ph.rs.done {
		if op.merge {
			merges++
		} else {
			splits++
		}
	}
	s := fmt.Sprintf("this cycle: %d PutRecords calls (%d failed), %d records acknowledged, %d unknown; %d splits and %d merges acknowledged, %d reshard calls failed",
		calls, errCalls, acks, unknown, splits, merges, len(ph.rs.unknown))
	if took := slices.Sorted(slices.Values(ph.rs.took)); len(took) > 0 {
		s += fmt.Sprintf(" (acknowledged reshard calls took %v to %v, median %v)", took[0].Round(10*time.Microsecond),
			took[len(took)-1].Round(10*time.Microsecond), took[len(took)/2].Round(10*time.Microsecond))
	}
	if first != nil {
		s += fmt.Sprintf("; first writer error: %v", first)
	}
	return s
}

// write is one writer: it puts small batches of its own keys, one call at
// a time, until halted.
func (ph *rsPhase) write(wr *rsWriter, c *bench.Client, res *rsWriterResult) {
	m := ph.m
	begin := time.Now()
	sentRecords := 0
	for !ph.stop.Load() {
		if d := time.Until(begin.Add(time.Duration(sentRecords) * time.Second / rsWriterRate)); d > 0 {
			time.Sleep(min(d, 10*time.Millisecond)) // pacing; then check stop again
			continue
		}
		n := 1 + wr.rng.IntN(rsMaxBatch)
		ids := make([]recID, n)
		entries := make([]types.PutRecordsRequestEntry, n)
		for i := range n {
			k := wr.rng.IntN(rsKeysPerWriter)
			id := newID(wr.w, k, wr.next[k])
			wr.next[k]++
			ids[i] = id
			entries[i] = types.PutRecordsRequestEntry{Data: m.payload(id), PartitionKey: aws.String(rsKey(wr.w, k))}
		}
		sentRecords += n
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		sent := m.clock.Add(1)
		ph.inflight.Add(1)
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(rsStream), Records: entries})
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
				res.apiErrors = append(res.apiErrors, fmt.Sprintf("PutRecords answered with an error: %v", err))
			}
			time.Sleep(time.Millisecond) // the server is going away; do not spin
			continue
		}
		if len(out.Records) != n {
			res.apiErrors = append(res.apiErrors, fmt.Sprintf("PutRecords of %d records returned %d result entries", n, len(out.Records)))
			res.unknown = append(res.unknown, ids...)
			continue
		}
		failed := 0
		lastSeq := map[string]rsAt{} // by partition key
		for i, e := range out.Records {
			id := ids[i]
			if e.ErrorCode != nil || e.SequenceNumber == nil || e.ShardId == nil {
				failed++
				res.unknown = append(res.unknown, id)
				res.apiErrors = append(res.apiErrors, fmt.Sprintf("PutRecords entry %d (%s) failed: %s: %s", i, rsName(id), aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)))
				continue
			}
			seq, shard := aws.ToString(e.SequenceNumber), aws.ToString(e.ShardId)
			if !validSeq(seq) {
				res.apiErrors = append(res.apiErrors, fmt.Sprintf("record %s acknowledged with malformed sequence number %q", rsName(id), seq))
			}
			// Within a call, the entries of one key get increasing numbers
			// in one shard. (Entries of different keys bound for one shard
			// need not: when a reshard closed the shards they were routed
			// to, each shard's part of the call is routed again and
			// appended on its own; PutRecords does not promise an order.)
			k := rsKey(id.writer(), id.key())
			if p, ok := lastSeq[k]; ok && (shard != p.shard || seq <= p.seq) {
				res.apiErrors = append(res.apiErrors, fmt.Sprintf("in one PutRecords, record %s (entry %d) got %s %s, not after the previous entry of its key, %s %s", rsName(id), i, shard, seq, p.shard, p.seq))
			}
			lastSeq[k] = rsAt{shard, seq}
			res.acks = append(res.acks, &rsAck{id: id, shard: shard, seq: seq, sent: sent, ret: ret, cycle: m.cycle})
		}
		if got := int(aws.ToInt32(out.FailedRecordCount)); got != failed {
			res.apiErrors = append(res.apiErrors, fmt.Sprintf("FailedRecordCount %d, but %d entries failed", got, failed))
		}
		res.failedEntries += failed
	}
}

// rsAt is a shard and a sequence number.
type rsAt struct{ shard, seq string }

// rsName names a record in messages: its partition key and counter.
func rsName(id recID) string {
	return rsKey(id.writer(), id.key()) + "#" + strconv.FormatUint(id.counter(), 10)
}

// rsOp is one SplitShard or MergeShards call.
type rsOp struct {
	merge    bool
	shard    string // split: the shard; merge: ShardToMerge
	adjacent string // merge: AdjacentShardToMerge
	key      string // split: NewStartingHashKey
}

func (op *rsOp) String() string {
	if op.merge {
		return fmt.Sprintf("MergeShards %s + %s", op.shard, op.adjacent)
	}
	return fmt.Sprintf("SplitShard %s at %s", op.shard, op.key)
}

// closes lists the shards the reshard closes.
func (op *rsOp) closes() []string {
	if op.merge {
		return []string{op.shard, op.adjacent}
	}
	return []string{op.shard}
}

// rsResharderState is the resharder's: its random choices survive restarts.
type rsResharderState struct {
	rng       *rand.Rand
	inflight  atomic.Bool
	mu        sync.Mutex
	cur       *rsOp // the call in flight, if any
	done      []*rsOp
	unknown   []*rsOp
	apiErrors []string
	took      []time.Duration // of the calls in done
}

// begin resets the per-phase observations.
func (rs *rsResharderState) begin() {
	rs.done, rs.unknown, rs.apiErrors, rs.took = nil, nil, nil, nil
}

func (rs *rsResharderState) current() *rsOp {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.cur
}

func (rs *rsResharderState) setCurrent(op *rsOp) {
	rs.mu.Lock()
	rs.cur = op
	rs.mu.Unlock()
	rs.inflight.Store(op != nil)
}

// reshard splits a random open shard at a random hash key inside it, or
// merges a random adjacent pair of open shards, keeping 1..rsMaxOpen open
// shards, until halted. The resharder is the only one resharding, so its
// view (ListShards before each call) is never stale while the server runs.
func (ph *rsPhase) reshard(c *bench.Client) {
	rs := ph.rs
	for !ph.stop.Load() {
		// Pacing: about 20 reshards a second at most.
		time.Sleep(time.Duration(5+rs.rng.IntN(45)) * time.Millisecond)
		if ph.stop.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		open, err := rsOpenShards(ctx, c.Client)
		if err != nil {
			cancel()
			var ae smithy.APIError
			if errors.As(err, &ae) {
				rs.apiErrors = append(rs.apiErrors, fmt.Sprintf("ListShards answered with an error: %v", err))
			}
			continue // the server is going away
		}
		op := rs.choose(open)
		if op == nil {
			cancel()
			continue
		}
		rs.setCurrent(op)
		t0 := time.Now()
		if op.merge {
			_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(rsStream), ShardToMerge: aws.String(op.shard), AdjacentShardToMerge: aws.String(op.adjacent)})
		} else {
			_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(rsStream), ShardToSplit: aws.String(op.shard), NewStartingHashKey: aws.String(op.key)})
		}
		rs.setCurrent(nil)
		cancel()
		if err == nil {
			rs.done = append(rs.done, op)
			rs.took = append(rs.took, time.Since(t0))
			continue
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			// Nothing else reshards and the stream stays ACTIVE: the call
			// has no reason to fail while the server runs. (A call the kill
			// interrupts fails with a transport error, not a response.)
			rs.apiErrors = append(rs.apiErrors, fmt.Sprintf("%s answered with an error: %v", op, err))
			continue
		}
		rs.unknown = append(rs.unknown, op)
	}
}

// choose picks the next reshard of the open shards (sorted by hash key).
func (rs *rsResharderState) choose(open []types.Shard) *rsOp {
	n := len(open)
	if n == 0 {
		return nil
	}
	split := n < rsMaxOpen && (n == 1 || rs.rng.IntN(2) == 0)
	if split {
		// A random shard whose range holds at least two hash keys.
		for _, i := range rs.rng.Perm(n) {
			r, ok := rsShardRange(open[i])
			if !ok {
				return nil
			}
			width := new(big.Int).Sub(r.hi, r.lo)
			if width.Sign() <= 0 {
				continue
			}
			// NewStartingHashKey in [lo+1, hi]: lo + 1 + (random mod width).
			x := new(big.Int).Lsh(new(big.Int).SetUint64(rs.rng.Uint64()), 64)
			x.Or(x, new(big.Int).SetUint64(rs.rng.Uint64()))
			x.Mod(x, width)
			x.Add(x, r.lo)
			x.Add(x, big.NewInt(1))
			return &rsOp{shard: aws.ToString(open[i].ShardId), key: x.String()}
		}
		if n == 1 {
			return nil
		}
	}
	i := rs.rng.IntN(n - 1)
	a, b := aws.ToString(open[i].ShardId), aws.ToString(open[i+1].ShardId)
	if rs.rng.IntN(2) == 0 {
		a, b = b, a
	}
	return &rsOp{merge: true, shard: a, adjacent: b}
}

func rsShardRange(sh types.Shard) (rsRange, bool) {
	if sh.HashKeyRange == nil {
		return rsRange{}, false
	}
	lo, ok1 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
	hi, ok2 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
	return rsRange{lo, hi}, ok1 && ok2
}

// rsListShards lists every shard of the stream, open and closed.
func rsListShards(ctx context.Context, c *kinesis.Client) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(rsStream)}
	for {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// rsOpenShards lists the open shards, sorted by starting hash key.
func rsOpenShards(ctx context.Context, c *kinesis.Client) ([]types.Shard, error) {
	all, err := rsListShards(ctx, c)
	if err != nil {
		return nil, err
	}
	var open []types.Shard
	var starts []*big.Int
	for _, sh := range all {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		r, ok := rsShardRange(sh)
		if !ok {
			return nil, fmt.Errorf("shard %s: bad hash key range", aws.ToString(sh.ShardId))
		}
		open = append(open, sh)
		starts = append(starts, r.lo)
	}
	idx := make([]int, len(open))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return starts[a].Cmp(starts[b]) })
	sorted := make([]types.Shard, len(open))
	for i, j := range idx {
		sorted[i] = open[j]
	}
	return sorted, nil
}

// rsKillEarly starts the server on dataDir and SIGKILLs it after delay,
// ready or not; it reports whether the server had finished loading by then.
func rsKillEarly(t *testing.T, bin string, logs *logBook, label, dataDir string, delay time.Duration) (served bool) {
	t.Helper()
	addr := freeAddr(t)
	l := logs.open(fmt.Sprintf("%s (%s)", label, addr))
	cmd := exec.Command(bin, "server", "--addr", addr, "--data-dir", dataDir, "--fsync", "always", "--log-level", "info", "--segment-bytes", strconv.Itoa(256<<10))
	cmd.Stdout, cmd.Stderr = l, l
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &proc{label: label, endpoint: "http://" + addr, cmd: cmd, log: l, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	time.Sleep(delay)
	if p.exited() {
		t.Errorf("%s: the server exited on its own within %v of its start: %v", label, delay, p.waitErr)
		return false
	}
	p.kill()
	// The binary logs "shoal listening" once the server has loaded its
	// catalog and data and bound its address.
	out, _ := l.contents()
	return strings.Contains(out, "shoal listening")
}
