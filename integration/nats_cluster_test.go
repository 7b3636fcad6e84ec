package integration

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/natstest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// startNATSShoal starts "shoal server --storage nats" on cluster c.
func startNATSShoal(t *testing.T, bin string, logs *logBook, label string, c *natstest.Cluster, prefix string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--storage", "nats", "--nats-url", c.URLs(), "--nats-prefix", prefix}, extra...)
	return startServer(t, bin, logs, label, t.TempDir(), args...)
}

// natsPair is two shoal servers, A and B, on one 3-node NATS cluster.
type natsPair struct {
	bin    string
	cl     *natstest.Cluster
	logs   *logBook
	a, b   *proc
	ca, cb *kinesis.Client
}

// startNATSPair starts a 3-node NATS cluster and shoal servers A then B on
// it (extra: more flags for both).
func startNATSPair(t *testing.T, prefix string, extra ...string) *natsPair {
	t.Helper()
	if testing.Short() {
		t.Skip("runs nats-server and shoal processes")
	}
	p := &natsPair{bin: shoalBinary(t), cl: natstest.StartCluster(t, 3, natstest.Options{}), logs: newLogBook(t)}
	p.a = startNATSShoal(t, p.bin, p.logs, "shoal A", p.cl, prefix, extra...)
	p.b = startNATSShoal(t, p.bin, p.logs, "shoal B", p.cl, prefix, extra...)
	p.ca, p.cb = servertest.Client(p.a.endpoint), servertest.Client(p.b.endpoint)
	return p
}

// TestNATSTwoNodes runs two shoal servers on one 3-node NATS cluster and
// uses them as one Kinesis: streams, records, consumers and reshards made
// through one are seen through the other, SubscribeToShard on one receives
// what is put through the other, and killing one leaves the other serving
// everything.
func TestNATSTwoNodes(t *testing.T) {
	p := startNATSPair(t, "TWO")
	bin, cl, logs, a, b, ca, cb := p.bin, p.cl, p.logs, p.a, p.b, p.ca, p.cb
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "two-nodes"

	if _, err := ca.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// B learns of the stream through the catalog watch.
	var shards []types.Shard
	wait.Eventually(t, 30*time.Second, func() error {
		out, err := cb.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
		if err != nil {
			return err
		}
		if len(out.Shards) != 2 {
			return fmt.Errorf("B lists %d shards, want 2", len(out.Shards))
		}
		shards = out.Shards
		return nil
	})
	if _, err := cb.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); !isCode(err, "ResourceInUseException") {
		t.Fatalf("creating the stream again through B: %v, want ResourceInUseException", err)
	}

	// Put through A, read through B, in order, at the sequence numbers A gave.
	want := map[string][]string{} // shard -> sequence numbers in order
	data := map[string]string{}   // sequence number -> data
	for i := range 40 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(name)}
		for j := range 10 {
			k := strconv.Itoa(i*10 + j)
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String("key-" + strconv.Itoa(j)), Data: []byte("rec-" + k)})
		}
		client := ca
		if i%2 == 1 {
			client = cb // writes through both nodes
		}
		out, err := client.PutRecords(ctx, in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords %d: %v (failed %d)", i, err, aws.ToInt32(out.FailedRecordCount))
		}
		for j, r := range out.Records {
			want[aws.ToString(r.ShardId)] = append(want[aws.ToString(r.ShardId)], aws.ToString(r.SequenceNumber))
			data[aws.ToString(r.SequenceNumber)] = string(in.Records[j].Data)
		}
	}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		got := readShardAll(ctx, t, cb, name, id)
		var seqs []string
		for _, r := range got {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
			if data[aws.ToString(r.SequenceNumber)] != string(r.Data) {
				t.Fatalf("shard %s: record %s holds %q, want %q", id, aws.ToString(r.SequenceNumber), r.Data, data[aws.ToString(r.SequenceNumber)])
			}
		}
		if !slices.Equal(seqs, sortedSeqs(want[id])) {
			t.Fatalf("shard %s read through B: %d records %v, want %d %v", id, len(seqs), seqs, len(want[id]), want[id])
		}
	}

	// A consumer registered through A; SubscribeToShard through B receives
	// a record put through A.
	sum, err := ca.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	arn := sum.StreamDescriptionSummary.StreamARN
	reg, err := ca.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	sc := servertest.StreamingClient(b.endpoint)
	var events *kinesis.SubscribeToShardOutput
	wait.Eventually(t, 30*time.Second, func() error {
		events, err = sc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: shards[0].ShardId,
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
		return err
	})
	stream := events.GetStream()
	defer func() { _ = stream.Close() }()
	put, err := ca.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), Data: []byte("pushed"), PartitionKey: aws.String("p"),
		ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey})
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, stream, 1)
	if aws.ToString(got[0].SequenceNumber) != aws.ToString(put.SequenceNumber) || string(got[0].Data) != "pushed" {
		t.Fatalf("subscription through B received %s %q, want %s \"pushed\"", aws.ToString(got[0].SequenceNumber), got[0].Data, aws.ToString(put.SequenceNumber))
	}

	// Split through B: A sees the children and routes writes to them; the
	// subscriber on the parent ends with the children.
	parent := aws.ToString(shards[0].ShardId)
	if _, err := cb.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(name), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String(midKey(shards[0].HashKeyRange))}); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 30*time.Second, func() error {
		out, err := ca.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			return err
		}
		if len(out.Shards) != 3 {
			return fmt.Errorf("A lists %d open shards, want 3", len(out.Shards))
		}
		return nil
	})
	after, err := ca.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), Data: []byte("after split"), PartitionKey: aws.String("p"),
		ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(after.ShardId) == parent {
		t.Fatalf("a put through A after the split landed in the closed parent %s", parent)
	}
	if children := waitChildren(t, stream); len(children) != 2 {
		t.Fatalf("the parent's subscription ended with %d child shards, want 2", len(children))
	}

	// Kill A: B serves everything, including the record put through A.
	a.kill()
	recs := readShardAll(ctx, t, cb, name, aws.ToString(after.ShardId))
	if len(recs) != 1 || aws.ToString(recs[0].SequenceNumber) != aws.ToString(after.SequenceNumber) {
		t.Fatalf("B reads %d records from %s after A died, want the one put through A", len(recs), aws.ToString(after.ShardId))
	}
	if _, err := cb.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// A restarted on the same cluster does not resurrect it.
	a = startNATSShoal(t, bin, logs, "shoal A again", cl, "TWO")
	ca = servertest.Client(a.endpoint)
	wait.Eventually(t, 30*time.Second, func() error {
		_, err := ca.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if isCode(err, "ResourceNotFoundException") {
			return nil
		}
		return fmt.Errorf("DescribeStreamSummary through the restarted A: %v, want ResourceNotFoundException", err)
	})
}

// sortedSeqs sorts decimal sequence numbers numerically.
func sortedSeqs(seqs []string) []string {
	out := slices.Clone(seqs)
	slices.SortFunc(out, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return out
}

// receive reads n records from a subscription.
func receive(t *testing.T, s *kinesis.SubscribeToShardEventStream, n int) []types.Record {
	t.Helper()
	var out []types.Record
	for len(out) < n {
		ev, ok := <-s.Events()
		if !ok {
			t.Fatalf("subscription ended after %d of %d records: %v", len(out), n, s.Err())
		}
		if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
			out = append(out, e.Value.Records...)
		}
	}
	return out
}

// waitChildren reads a subscription until an event names child shards.
func waitChildren(t *testing.T, s *kinesis.SubscribeToShardEventStream) []types.ChildShard {
	t.Helper()
	for {
		ev, ok := <-s.Events()
		if !ok {
			t.Fatalf("subscription ended without child shards: %v", s.Err())
		}
		if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(e.Value.ChildShards) > 0 {
			return e.Value.ChildShards
		}
	}
}

// midKey returns the middle of a hash key range, as a decimal string.
func midKey(r *types.HashKeyRange) string {
	lo, _ := new(big.Int).SetString(aws.ToString(r.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(r.EndingHashKey), 10)
	return lo.Add(lo, hi).Rsh(lo, 1).String()
}

func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// The coordinator lease moves when its holder dies: a stream whose
// CREATING period the dead server began becomes ACTIVE through the other,
// once the other has taken the lease and resumed the transition.
func TestNATSCoordinatorTakeover(t *testing.T) {
	// A starts first and so takes the coordinator lease.
	p := startNATSPair(t, "CRD", "--create-delay", "2s", "--log-level", "info")
	a, b, ca, cb := p.a, p.b, p.ca, p.cb
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := ca.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orphan"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	a.kill() // before its 2 s CREATING timer
	wait.Eventually(t, time.Minute, func() error {
		out, err := cb.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orphan")})
		if err != nil {
			return err
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s != types.StreamStatusActive {
			return fmt.Errorf("status %s through B", s)
		}
		return nil
	})
	if out, _ := b.log.contents(); !strings.Contains(out, `"holds_lease":true`) {
		t.Fatalf("B never logged taking the coordinator lease:\n%s", out)
	}
}
