package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/fanout"

	"github.com/shoalstream/shoal/internal/natstest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// TestNATSFaults puts records through two shoal servers on a 3-node NATS
// cluster while it injects faults, keeping a ledger of every acknowledged
// record, and checks after each round that none was lost. The faults
// rotate: kill -9 the NATS node leading the most shard streams (restarted
// once writes flow again without it), kill -9 a shoal server, pause a NATS
// node for a while (SIGSTOP), split a shard while its stream's leader is
// killed, and kill -9 all three NATS nodes at once. SHOAL_NATS_CYCLES sets
// the number of faults (default 5: one of each); SHOAL_NATS_PAUSE the
// length of a pause (default 15s).
func TestNATSFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and shoal processes")
	}
	cycles := envInt(t, "SHOAL_NATS_CYCLES", 5)
	pause := 15 * time.Second
	if v := envInt(t, "SHOAL_NATS_PAUSE_SECONDS", 0); v > 0 {
		pause = time.Duration(v) * time.Second
	}
	bin := shoalBinary(t)
	cl := natstest.StartCluster(t, 3, natstest.Options{})
	logs := newLogBook(t)
	const prefix = "FLT"
	nodes := []*proc{startNATSShoal(t, bin, logs, "shoal A", cl, prefix), startNATSShoal(t, bin, logs, "shoal B", cl, prefix)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const name = "faults"
	c0 := servertest.Client(nodes[0].endpoint)
	if _, err := c0.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(cl.URLs(), nats.MaxReconnects(-1), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	f := &faultLedger{acked: map[string]ackedRec{}, unknown: map[string]bool{}}
	var endpoints atomic.Pointer[[]string]
	setEndpoints := func() {
		eps := []string{nodes[0].endpoint, nodes[1].endpoint}
		endpoints.Store(&eps)
	}
	setEndpoints()
	// A fan-out subscriber reads through the faults, re-subscribing (to
	// whichever shoal server is up) from its continuation and following
	// child shards: it must receive every acknowledged record once, in
	// order, including a parent's last records before its children's.
	fan := &fanLedger{got: map[string][]string{}}
	sc := servertest.StreamingClient(nodes[1].endpoint, func(o *kinesis.Options) {
		o.EndpointResolverV2 = currentEndpoint{&endpoints}
	})
	wait.Eventually(t, 30*time.Second, func() error { // the second server learns of the stream through the catalog watch
		_, err := sc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		return err
	})
	sub, err := fanout.New(sc, fanout.Config{StreamName: name, ConsumerName: "audit", StartingPosition: fanout.TrimHorizon(), Handler: fan.handle,
		Options: fanout.Options{Logger: zap.NewNop()}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Run(sctx) }()
	defer func() {
		stopSub()
		if err := <-subDone; err != nil {
			t.Errorf("fan-out subscriber: %v", err)
		}
	}()
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() { f.writer(wctx, w, name, &endpoints) })
	}
	progress := func(what string) {
		t.Helper()
		from := f.count()
		wait.Eventually(t, 2*time.Minute, func() error {
			if n := f.count() - from; n < 200 {
				return fmt.Errorf("%s: %d records acknowledged since, want 200", what, n)
			}
			return nil
		})
	}
	progress("start")
	for cycle := range cycles {
		switch cycle % 5 {
		case 0:
			i := busiestLeader(ctx, t, js, cl, prefix)
			t.Logf("cycle %d: kill -9 NATS node %s (leads the most shard streams)", cycle, cl.Nodes[i].Name)
			cl.Kill(i)
			progress("after killing a NATS node")
			cl.Start(i)
			cl.WaitReady(2 * time.Minute)
		case 1:
			i := cycle / 5 % 2
			t.Logf("cycle %d: kill -9 shoal node %d", cycle, i)
			nodes[i].kill()
			progress("after killing a shoal node")
			nodes[i] = startNATSShoal(t, bin, logs, fmt.Sprintf("shoal %d again", i), cl, prefix)
			setEndpoints()
		case 2:
			i := cycle % 3
			t.Logf("cycle %d: pause NATS node %s for %v", cycle, cl.Nodes[i].Name, pause)
			cl.Pause(i)
			time.Sleep(pause) // the fault's length, not a wait for a condition
			cl.Resume(i)
			cl.WaitReady(2 * time.Minute)
		case 3:
			cs := servertest.Client((*endpoints.Load())[cycle%2])
			out, err := cs.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
			if err != nil {
				t.Fatal(err)
			}
			sh := out.Shards[0]
			i := leaderOfShard(ctx, t, js, cl, prefix, aws.ToString(sh.ShardId))
			t.Logf("cycle %d: split %s while killing its leader %s", cycle, aws.ToString(sh.ShardId), cl.Nodes[i].Name)
			done := make(chan error, 1)
			go func() {
				_, err := cs.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(name), ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(midKey(sh.HashKeyRange))})
				done <- err
			}()
			cl.Kill(i)
			if err := <-done; err != nil {
				t.Logf("cycle %d: the split failed (allowed: its leader died): %v", cycle, err)
			}
			progress("after the split")
			cl.Start(i)
			cl.WaitReady(2 * time.Minute)
		case 4:
			t.Logf("cycle %d: kill -9 all NATS nodes", cycle)
			for i := range cl.Nodes {
				cl.Kill(i)
			}
			for i := range cl.Nodes {
				cl.Start(i)
			}
			cl.WaitReady(2 * time.Minute)
		}
		progress(fmt.Sprintf("after cycle %d", cycle))
	}
	stopWriters()
	wg.Wait()
	cl.WaitReady(2 * time.Minute)
	f.verify(ctx, t, servertest.Client((*endpoints.Load())[0]), name)
	replicasAgree(t, cl, prefix)
	fan.verify(t, f)
}

// currentEndpoint resolves every call to the second shoal server's current
// address (it changes when the server is restarted).
type currentEndpoint struct{ eps *atomic.Pointer[[]string] }

func (c currentEndpoint) ResolveEndpoint(_ context.Context, _ kinesis.EndpointParameters) (smithyendpoints.Endpoint, error) {
	eps := *c.eps.Load()
	u, err := url.Parse(eps[len(eps)-1])
	if err != nil {
		return smithyendpoints.Endpoint{}, err
	}
	return smithyendpoints.Endpoint{URI: *u}, nil
}

// fanLedger is what the fan-out subscriber received: record ids by shard,
// in order, with their sequence numbers.
type fanLedger struct {
	mu    sync.Mutex
	got   map[string][]string // shard -> "seq id"
	n     int
	dupes int
	seen  map[string]bool
}

func (l *fanLedger) handle(_ context.Context, b fanout.Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	for _, r := range b.Records {
		id, _, _ := strings.Cut(string(r.Data), "|")
		if l.seen[id] {
			l.dupes++
		}
		l.seen[id] = true
		l.got[b.ShardID] = append(l.got[b.ShardID], r.SequenceNumber+" "+id)
		l.n++
	}
	return nil
}

// verify waits until the subscriber received every acknowledged record and
// checks order and duplicates.
func (l *fanLedger) verify(t *testing.T, f *faultLedger) {
	t.Helper()
	f.mu.Lock()
	acked := maps.Clone(f.acked)
	f.mu.Unlock()
	wait.Eventually(t, 2*time.Minute, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		missing := 0
		for id := range acked {
			if !l.seen[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("the fan-out subscriber has not received %d of %d acknowledged records", missing, len(acked))
		}
		return nil
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dupes > 0 {
		t.Errorf("the fan-out subscriber received %d records twice", l.dupes)
	}
	for shard, recs := range l.got {
		var prev *big.Int
		for _, r := range recs {
			seqStr, _, _ := strings.Cut(r, " ")
			seq, _ := new(big.Int).SetString(seqStr, 10)
			if prev != nil && seq.Cmp(prev) <= 0 {
				t.Errorf("fan-out: shard %s delivered %s after %s", shard, seq, prev)
			}
			prev = seq
		}
	}
	t.Logf("fan-out: %d records received from %d shards, every acknowledged one once, in order", l.n, len(l.got))
}

// ackedRec is one acknowledged record of the ledger.
type ackedRec struct {
	shard, seq, key string
	n               int
}

// faultLedger records every acknowledged record (and the ids of records
// whose put failed, which may or may not be stored).
type faultLedger struct {
	mu      sync.Mutex
	acked   map[string]ackedRec // by record id
	unknown map[string]bool     // ids of failed or unanswered puts
	calls   atomic.Int64
	n       atomic.Int64
}

func (f *faultLedger) count() int64 { return f.n.Load() }

// writer owns the keys w-0..w-3 and puts their records in order, one
// PutRecords call at a time, alternating between the shoal servers. A
// failed record is retried under a new id, after the earlier one counts as
// unknown; per key, the counter only grows.
func (f *faultLedger) writer(ctx context.Context, w int, stream string, endpoints *atomic.Pointer[[]string]) {
	clients := map[string]*kinesis.Client{}
	counters := make([]int, 4)
	for call := 0; ctx.Err() == nil; call++ {
		eps := *endpoints.Load()
		ep := eps[call%len(eps)]
		c := clients[ep]
		if c == nil {
			c = servertest.Client(ep, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
			clients[ep] = c
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		var ids []string
		for k := range 4 {
			for range 5 {
				counters[k]++
				id := fmt.Sprintf("%d-%d-%d", w, call, len(ids))
				ids = append(ids, id)
				in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("%d-%d", w, k)),
					Data: fmt.Appendf(nil, "%s|%d-%d|%d", id, w, k, counters[k])})
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := c.PutRecords(cctx, in)
		cancel()
		f.calls.Add(1)
		f.mu.Lock()
		if err != nil {
			for _, id := range ids {
				f.unknown[id] = true
			}
			f.mu.Unlock()
			continue
		}
		for j, r := range out.Records {
			if r.ErrorCode != nil {
				f.unknown[ids[j]] = true
				continue
			}
			k := j / 5
			f.acked[ids[j]] = ackedRec{shard: aws.ToString(r.ShardId), seq: aws.ToString(r.SequenceNumber), key: fmt.Sprintf("%d-%d", w, k), n: counterOf(in.Records[j].Data)}
			f.n.Add(1)
		}
		f.mu.Unlock()
	}
}

func counterOf(data []byte) int {
	parts := strings.Split(string(data), "|")
	n, _ := strconv.Atoi(parts[len(parts)-1])
	return n
}

// verify reads every shard through c and checks the ledger: every
// acknowledged record at its shard and sequence number, sequence numbers
// increasing per shard, per key the counters increasing, and duplicates
// only of records whose put failed.
func (f *faultLedger) verify(ctx context.Context, t *testing.T, c *kinesis.Client, stream string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ shard, seq string }
	found := map[string][]seen{}
	var dups, unknownFound, reads int
	for _, sh := range shards.Shards {
		id := aws.ToString(sh.ShardId)
		recs := readShardAll(ctx, t, c, stream, id)
		reads += len(recs)
		var prev *big.Int
		lastByKey := map[string]int{}
		for _, r := range recs {
			seq, _ := new(big.Int).SetString(aws.ToString(r.SequenceNumber), 10)
			if prev != nil && seq.Cmp(prev) <= 0 {
				t.Errorf("shard %s: sequence number %s after %s", id, seq, prev)
			}
			prev = seq
			rid, _, _ := strings.Cut(string(r.Data), "|")
			key := aws.ToString(r.PartitionKey)
			n := counterOf(r.Data)
			if last, ok := lastByKey[key]; ok && n <= last && !f.unknown[rid] {
				t.Errorf("shard %s: key %s counter %d after %d (reordered)", id, key, n, last)
			}
			lastByKey[key] = max(lastByKey[key], n)
			found[rid] = append(found[rid], seen{id, aws.ToString(r.SequenceNumber)})
			if f.unknown[rid] {
				unknownFound++
			}
			if sh.SequenceNumberRange.EndingSequenceNumber != nil {
				end, _ := new(big.Int).SetString(aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber), 10)
				if seq.Cmp(end) > 0 {
					t.Errorf("shard %s: record %s past the shard's end %s", id, seq, end)
				}
			}
		}
	}
	lost := 0
	for rid, a := range f.acked {
		got := found[rid]
		switch {
		case len(got) == 0:
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged record %s (shard %s, %s) is lost", rid, a.shard, a.seq)
			}
		case len(got) > 1:
			dups++
			t.Errorf("acknowledged record %s stored %d times: %v", rid, len(got), got)
		case got[0].shard != a.shard || got[0].seq != a.seq:
			t.Errorf("acknowledged record %s at %s %s, acknowledged at %s %s", rid, got[0].shard, got[0].seq, a.shard, a.seq)
		}
	}
	t.Logf("ledger: %d PutRecords calls, %d records acknowledged, %d lost, %d duplicated; %d records with unknown outcome (%d of them stored); %d records read from %d shards",
		f.calls.Load(), len(f.acked), lost, dups, len(f.unknown), unknownFound, reads, len(shards.Shards))
}

// shardStreams returns the JetStream streams of shoal's shard logs under
// prefix with their leaders.
func shardStreams(ctx context.Context, t *testing.T, js jetstream.JetStream, prefix string) map[string]*jetstream.StreamInfo {
	t.Helper()
	out := map[string]*jetstream.StreamInfo{}
	wait.Eventually(t, 30*time.Second, func() error { // the cluster may be electing
		lister := js.ListStreams(ctx)
		clear(out)
		for si := range lister.Info() {
			if strings.HasPrefix(si.Config.Name, prefix+"_") {
				out[si.Config.Name] = si
			}
		}
		return lister.Err()
	})
	return out
}

// busiestLeader returns the node leading the most shard streams.
func busiestLeader(ctx context.Context, t *testing.T, js jetstream.JetStream, cl *natstest.Cluster, prefix string) int {
	t.Helper()
	count := make([]int, len(cl.Nodes))
	for _, si := range shardStreams(ctx, t, js, prefix) {
		if si.Cluster != nil {
			if i := cl.NodeByName(si.Cluster.Leader); i >= 0 {
				count[i]++
			}
		}
	}
	best := 0
	for i := range count {
		if count[i] > count[best] {
			best = i
		}
	}
	return best
}

// leaderOfShard returns the node leading the stream of a shard (by the
// "shoal.kinesis.shard" metadata the engine records).
func leaderOfShard(ctx context.Context, t *testing.T, js jetstream.JetStream, cl *natstest.Cluster, prefix, shardID string) int {
	t.Helper()
	for _, si := range shardStreams(ctx, t, js, prefix) {
		if si.Config.Metadata["shoal.kinesis.shard"] == shardID && si.Cluster != nil {
			if i := cl.NodeByName(si.Cluster.Leader); i >= 0 {
				return i
			}
		}
	}
	t.Fatalf("no JetStream stream is labelled with shard %s", shardID)
	return -1
}

// replicasAgree checks, through each node's monitoring endpoint, that every
// replica of every shard stream holds the same first and last sequence and
// message count (Jepsen's split-brain symptom is replicas that disagree).
func replicasAgree(t *testing.T, cl *natstest.Cluster, prefix string) {
	t.Helper()
	type state struct {
		Messages uint64 `json:"messages"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	}
	wait.Eventually(t, time.Minute, func() error {
		byStream := map[string]map[string]state{}
		for _, nd := range cl.Nodes {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", nd.MonitorPort))
			if err != nil {
				return err
			}
			var jsz struct {
				Accounts []struct {
					Streams []struct {
						Name  string `json:"name"`
						State state  `json:"state"`
					} `json:"stream_detail"`
				} `json:"account_details"`
			}
			err = json.NewDecoder(resp.Body).Decode(&jsz)
			_ = resp.Body.Close()
			if err != nil {
				return err
			}
			for _, a := range jsz.Accounts {
				for _, s := range a.Streams {
					if strings.HasPrefix(s.Name, prefix+"_") {
						if byStream[s.Name] == nil {
							byStream[s.Name] = map[string]state{}
						}
						byStream[s.Name][nd.Name] = s.State
					}
				}
			}
		}
		for name, reps := range byStream {
			if len(reps) != len(cl.Nodes) {
				return fmt.Errorf("stream %s has replicas on %d nodes, want %d", name, len(reps), len(cl.Nodes))
			}
			var first *state
			for node, st := range reps {
				if first == nil {
					first = &st
					continue
				}
				if st != *first {
					return fmt.Errorf("stream %s: replica on %s holds %+v, another %+v", name, node, st, *first)
				}
			}
		}
		t.Logf("replicas agree on %d shard streams", len(byStream))
		return nil
	})
}
