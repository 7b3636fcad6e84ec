package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/consumer/deadletter"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

// TestMain fails the package if any goroutine outlives the tests: the
// worker's, the producer's, the Store's listener, the servers'.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	source = "orders"
	dlq    = "orders-dlq"
	app    = "orders-app"
)

// processor fails every batch that holds a record whose data starts with
// "poison", after checkpointing the records before the first one; it
// checkpoints the others.
type processor struct {
	mu  *sync.Mutex
	ok  map[string]bool // data of the records processed
	bad map[string]int  // data of a poison record -> calls that failed on it
}

func (p *processor) Initialize(context.Context, consumer.InitializeInput) error { return nil }

func (p *processor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for i, r := range in.Records {
		if strings.HasPrefix(string(r.Data), "poison") {
			p.mu.Lock()
			p.bad[string(r.Data)]++
			p.mu.Unlock()
			if i > 0 {
				if err := in.Checkpointer.CheckpointRecord(ctx, in.Records[i-1]); err != nil {
					return err
				}
			}
			return fmt.Errorf("cannot process %s", r.Data)
		}
		p.mu.Lock()
		p.ok[string(r.Data)] = true
		p.mu.Unlock()
	}
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *processor) LeaseLost(context.Context, consumer.LeaseLostInput) {}

func (p *processor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *processor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// TestDeadLetterStream runs a worker whose failure policy dead-letters
// through a Handler into a second stream of a real server, with its leases
// in the real PostgreSQL, and reads the dead-letter stream back record by
// record: every record given up on is there once, with its source stream,
// shard, sequence and sub-sequence numbers (a KPL aggregate's user records
// among them), partition key, data, error and attempt count; the records
// around them are processed, and the checkpoint ends past the last one.
func TestDeadLetterStream(t *testing.T) {
	srv := servertest.Start(t, server.Config{Logger: zap.NewNop(), Fsync: storage.FsyncNever})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range []string{source, dlq} {
		if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}

	// The source: plain records and a KPL aggregate, some of them poison.
	// The worker reads one Kinesis record per GetRecords (MaxRecords 1), so
	// that each batch is one plain record or one aggregate.
	agg, err := aggregation.NewAggregator(aggregation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{"ok-a0", "poison-a1", "poison-a2", "ok-a3"} {
		if err := agg.Add(aggregation.UserRecord{PartitionKey: fmt.Sprint("user-", i), Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
	aggRec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	entries := []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k0"), Data: []byte("ok-0")},
		{PartitionKey: aws.String("k1"), Data: []byte("poison-1")},
		{PartitionKey: aws.String("k2"), Data: []byte("ok-2")},
		{PartitionKey: aws.String(aggRec.PartitionKey), Data: aggRec.Data},
		{PartitionKey: aws.String("k4"), Data: []byte("ok-4")},
		{PartitionKey: aws.String("k5"), Data: []byte("poison-5")},
	}
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(source), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put: %v", err)
	}
	seq := func(i int) string { return aws.ToString(out.Records[i].SequenceNumber) }
	shard := aws.ToString(out.Records[0].ShardId)
	want := []deadletter.Envelope{
		{SequenceNumber: seq(1), PartitionKey: "k1", Data: []byte("poison-1"), Error: "cannot process poison-1"},
		{SequenceNumber: seq(3), SubSequenceNumber: 1, PartitionKey: "user-1", Data: []byte("poison-a1"), Aggregated: true, Error: "cannot process poison-a1"},
		{SequenceNumber: seq(3), SubSequenceNumber: 2, PartitionKey: "user-2", Data: []byte("poison-a2"), Aggregated: true, Error: "cannot process poison-a1"},
		{SequenceNumber: seq(3), SubSequenceNumber: 3, PartitionKey: "user-3", Data: []byte("ok-a3"), Aggregated: true, Error: "cannot process poison-a1"},
		{SequenceNumber: seq(5), PartitionKey: "k5", Data: []byte("poison-5"), Error: "cannot process poison-5"},
	}

	pool, schema := pgtest.New(t)
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, FailoverTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	prod, err := producer.New(client, producer.Config{StreamName: dlq, MaxBufferedTime: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close(context.Background()) }()

	proc := &processor{mu: &sync.Mutex{}, ok: map[string]bool{}, bad: map[string]int{}}
	w, err := consumer.New(client, store, func(string) consumer.Processor { return proc }, consumer.Config{
		ApplicationName: app, StreamName: source, InitialPosition: consumer.TrimHorizon,
		FailoverTime: 2 * time.Second, MaxRecords: 1, IdleTimeBetweenReads: 50 * time.Millisecond,
		TaskBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		FailurePolicy: consumer.FailurePolicy{Action: consumer.DeadLetter, MaxAttempts: 3, DeadLetter: deadletter.New(prod)},
		Logger:        zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Processing goes past the poison: the checkpoint reaches the last
	// record, and every good record before it is processed.
	wait.Eventually(t, time.Minute, func() error {
		l, err := store.GetLease(ctx, app, shard)
		if err != nil || l.Checkpoint.SequenceNumber != seq(5) {
			return fmt.Errorf("checkpoint %s (%v), want %s", l.Checkpoint, err, seq(5))
		}
		return nil
	})
	proc.mu.Lock()
	for _, d := range []string{"ok-0", "ok-2", "ok-a0", "ok-4"} {
		if !proc.ok[d] {
			t.Errorf("%s not processed", d)
		}
	}
	for d, n := range proc.bad {
		if n != 3 {
			t.Errorf("%s: %d failed calls, want 3", d, n)
		}
	}
	proc.mu.Unlock()

	got := readDLQ(ctx, t, client, len(want))
	for i, w := range want {
		g := got[i]
		if g.Version != deadletter.Version || g.Application != app || g.Stream != source || g.StreamARN != "" || g.ShardID != shard ||
			g.SequenceNumber != w.SequenceNumber || g.SubSequenceNumber != w.SubSequenceNumber || g.PartitionKey != w.PartitionKey ||
			string(g.Data) != string(w.Data) || g.Aggregated != w.Aggregated || g.Error != w.Error || g.Attempts != 3 ||
			g.ApproximateArrivalTimestamp.IsZero() || g.FailedAt.IsZero() || g.FailedAt.Before(g.ApproximateArrivalTimestamp) {
			t.Errorf("dead letter %d:\n got %+v\nwant %+v", i, g, w)
		}
		if r := g.Record(); r.Position() != g.Position() || string(r.Data) != string(w.Data) {
			t.Errorf("dead letter %d: Record %+v", i, r)
		}
	}
}

// readDLQ reads the dead-letter stream until it holds n user records, and
// returns their envelopes in source order (the records of different keys
// may be stored in any order).
func readDLQ(ctx context.Context, t *testing.T, client *kinesis.Client, n int) []deadletter.Envelope {
	t.Helper()
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(dlq)})
	if err != nil {
		t.Fatal(err)
	}
	var got []deadletter.Envelope
	keys := map[string]string{} // data -> the dead-letter record's partition key
	for _, s := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(dlq), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		wait.Eventually(t, 30*time.Second, func() error {
			res, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return err
			}
			iter = res.NextShardIterator
			for _, r := range res.Records {
				subs, err := aggregation.Deaggregate(aws.ToString(r.PartitionKey), r.Data)
				if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
					t.Fatalf("deaggregate: %v", err)
				}
				for _, sr := range subs {
					e, err := deadletter.Decode(sr.Data)
					if err != nil {
						t.Fatalf("decode %q: %v", sr.Data, err)
					}
					got = append(got, e)
					keys[string(e.Data)] = sr.PartitionKey
				}
			}
			if len(got) < n {
				return fmt.Errorf("%d of %d dead letters", len(got), n)
			}
			return nil
		})
	}
	if len(got) != n {
		t.Fatalf("%d dead letters, want %d: %+v", len(got), n, got)
	}
	slices.SortFunc(got, func(a, b deadletter.Envelope) int { return a.Position().Compare(b.Position()) })
	for _, e := range got {
		if keys[string(e.Data)] != e.PartitionKey {
			t.Errorf("%s put with key %q, want the record's own %q", e.Data, keys[string(e.Data)], e.PartitionKey)
		}
	}
	return got
}

// TestDecode: what is not an envelope of this version is refused, and an
// envelope round-trips through its JSON form with the data in base64.
func TestDecode(t *testing.T) {
	for _, in := range []string{``, `not json`, `{"version":2,"shard_id":"s","sequence_number":"1"}`, `{"version":1}`} {
		if _, err := deadletter.Decode([]byte(in)); !errors.Is(err, deadletter.ErrNotEnvelope) {
			t.Errorf("Decode(%q): %v, want ErrNotEnvelope", in, err)
		}
	}
	e, err := deadletter.Decode([]byte(`{"version":1,"stream":"orders","shard_id":"shardId-000000000001","sequence_number":"42",` +
		`"sub_sequence_number":3,"partition_key":"k","error":"boom","attempts":5,"data":"aGVsbG8="}`))
	if err != nil || e.Stream != "orders" || e.ShardID != "shardId-000000000001" || e.SequenceNumber != "42" ||
		e.SubSequenceNumber != 3 || e.PartitionKey != "k" || e.Error != "boom" || e.Attempts != 5 || string(e.Data) != "hello" {
		t.Errorf("Decode: %+v, %v", e, err)
	}
}

// failingProducer refuses every record.
type failingProducer struct{}

func (failingProducer) PutRecord(context.Context, producer.UserRecord) (*producer.Pending, error) {
	return nil, producer.ErrClosed
}

// TestDeadLetterReportsPutErrors: a record the producer refuses fails the
// call, naming the record, so that the worker calls again.
func TestDeadLetterReportsPutErrors(t *testing.T) {
	err := deadletter.New(failingProducer{}).DeadLetter(context.Background(), consumer.FailedBatch{
		ShardID: "shardId-000000000000", Err: errors.New("boom"), Attempts: 1,
		Records: []consumer.Record{{SequenceNumber: "7", PartitionKey: "k", Data: []byte("x")}},
	})
	if !errors.Is(err, producer.ErrClosed) || !strings.Contains(err.Error(), "shardId-000000000000") || !strings.Contains(err.Error(), "7") {
		t.Errorf("DeadLetter: %v", err)
	}
}
