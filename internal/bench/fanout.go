package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/fanout"
)

// fanoutFlags are the flags of "bench fanout".
type fanoutFlags struct {
	c         common
	consumers int
	rate      int
	size      int
	mode      string
	dbURL     string
	drain     time.Duration
	noCP      bool
}

// fanoutHeader is the bytes every bench record starts with: the put time
// (Unix nanoseconds) and the record's index.
const fanoutHeader = 16

func runFanout(ctx context.Context, args []string, out io.Writer) error {
	var f fanoutFlags
	fs := newFlagSet("fanout", "shoal bench fanout [flags]",
		`Measures enhanced fan-out delivery: -consumers registered stream consumers
each read every shard (-mode subscriber: one fanout.Subscriber each; -mode
consumer: one consumer.Worker each, in its own application, in FanOut mode,
with leases and checkpoints in PostgreSQL at -database-url), while one
goroutine puts -rate records/s (PutRecords every 10ms, random partition keys)
for -duration. Each record carries its put time; the report gives the
put->receive latency over every first delivery (p50/p99/max), and per
consumer the records delivered, missing and duplicated. Readers start at
the run's start time (AT_TIMESTAMP) and are subscribed before the puts
begin; after the puts they have -drain to catch up.
`, out)
	fs.StringVar(&f.c.endpoint, "endpoint", "http://127.0.0.1:4567", "Kinesis endpoint URL; with two, comma-separated, records are put through the first and received through the second")
	fs.StringVar(&f.c.region, "region", "us-east-1", "region used for SigV4 signing")
	fs.StringVar(&f.c.stream, "stream", "bench-fanout", "stream name")
	fs.IntVar(&f.c.shards, "shards", 4, "shard count of the stream when the tool creates it")
	fs.BoolVar(&f.c.create, "create", true, "create the stream if it is missing and wait until it is ACTIVE")
	fs.DurationVar(&f.c.duration, "duration", 20*time.Second, "how long to put records")
	fs.IntVar(&f.c.retries, "retries", 2, "SDK retries per call after the first attempt")
	fs.IntVar(&f.consumers, "consumers", 5, "registered stream consumers, each reading every shard")
	fs.IntVar(&f.rate, "rate", 2000, "records put per second")
	fs.IntVar(&f.size, "size", 100, "bytes per record (at least 16: the put time and index)")
	fs.StringVar(&f.mode, "mode", "subscriber", "subscriber (package fanout) or consumer (package consumer, FanOut retrieval)")
	fs.StringVar(&f.dbURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL for -mode consumer's leases")
	fs.BoolVar(&f.noCP, "no-checkpoint", false, "-mode consumer: do not checkpoint after each batch")
	fs.DurationVar(&f.drain, "drain", 10*time.Second, "how long the readers get to catch up after the puts")
	registerProfile(fs, &f.c.profile)
	if done, err := parse(fs, args); done {
		return err
	}
	switch {
	case f.consumers < 1 || f.consumers > 20:
		return fmt.Errorf("bench: -consumers must be in [1, 20] (Kinesis's limit per stream), got %d", f.consumers)
	case f.rate < 1:
		return fmt.Errorf("bench: -rate must be >= 1, got %d", f.rate)
	case f.size < fanoutHeader:
		return fmt.Errorf("bench: -size must be >= %d, got %d", fanoutHeader, f.size)
	case f.mode != "subscriber" && f.mode != "consumer":
		return fmt.Errorf("bench: -mode must be subscriber or consumer, got %q", f.mode)
	case f.c.duration <= 0:
		return errors.New("bench: -duration must be > 0")
	}
	if err := f.c.loadCredentials(ctx); err != nil {
		return err
	}
	eps := endpoints(f.c.endpoint)
	cl := f.c.newStreamingClient(eps[len(eps)-1]) // readers
	wcl := cl                                     // the writer
	if len(eps) > 1 {
		wcl = f.c.newClient(eps[0], f.c.retries)
	}
	open, err := ensureStream(ctx, cl, &f.c, out)
	if err != nil {
		return err
	}
	shards, err := listShards(ctx, cl, f.c.stream)
	if err != nil {
		return err
	}
	if open == 0 {
		open = len(shards)
	}
	total := f.rate * int(f.c.duration/time.Millisecond) / 1000
	rec := newReceipts(f.consumers, total)
	start := time.Now()

	runCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var wg sync.WaitGroup
	readerErrs := make([]error, f.consumers)
	var ready func() bool
	switch f.mode {
	case "subscriber":
		var subscribed atomic.Int64
		for i := range f.consumers {
			s, err := fanout.New(cl.Client, fanout.Config{
				StreamName: f.c.stream, ConsumerName: fmt.Sprintf("%s-consumer-%d", f.c.stream, i),
				StartingPosition: fanout.AtTimestamp(start),
				Options:          fanout.Options{OnSubscribe: func(string, fanout.Position) { subscribed.Add(1) }},
				Handler: func(_ context.Context, b fanout.Batch) error {
					now := time.Now()
					for _, r := range b.Records {
						rec.got(i, r.Data, now)
					}
					return nil
				},
			})
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			wg.Go(func() { readerErrs[i] = s.Run(runCtx) })
		}
		ready = func() bool { return subscribed.Load() >= int64(f.consumers*open) }
	case "consumer":
		pool, err := pgxpool.New(ctx, f.dbURL)
		if err != nil {
			return fmt.Errorf("bench: connect to PostgreSQL: %w", err)
		}
		defer pool.Close()
		store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Table: "shoal_bench_fanout_leases"})
		if err != nil {
			return fmt.Errorf("bench: lease store: %w", err)
		}
		defer func() { _ = store.Close() }()
		var workers []*consumer.Worker
		for i := range f.consumers {
			app := fmt.Sprintf("%s-app-%d-%d", f.c.stream, i, start.UnixNano())
			w, err := consumer.New(cl.Client, store, func(string) consumer.Processor { return &benchProc{rec: rec, i: i, noCP: f.noCP} }, consumer.Config{
				ApplicationName: app, StreamName: f.c.stream, ConsumerName: fmt.Sprintf("%s-consumer-%d", f.c.stream, i),
				Retrieval: consumer.FanOut, InitialPosition: consumer.AtTimestamp, InitialTimestamp: start,
				TakeInterval: time.Second, ShardSyncInterval: 5 * time.Second,
			})
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			workers = append(workers, w)
			wg.Go(func() { readerErrs[i] = w.Run(runCtx) })
		}
		// Subscriptions start right after a worker takes its leases.
		ready = func() bool {
			for _, w := range workers {
				if len(w.HeldShards()) < open {
					return false
				}
			}
			return true
		}
	}
	_, _ = fmt.Fprintf(out, "fanout: %s, %d consumers (%s), %d records/s for %v, %d B records\n",
		streamDesc(&f.c, open), f.consumers, f.mode, f.rate, f.c.duration, f.size)
	for !ready() {
		select {
		case <-ctx.Done():
			stopReaders()
			wg.Wait()
			return fmt.Errorf("bench: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(time.Second) // the last subscriptions' initial responses
	_, _ = fmt.Fprintf(out, "readers ready after %v\n", time.Since(start).Round(time.Millisecond))

	sent, putErr := putAtRate(ctx, wcl, f.c.stream, f.rate, total, f.size)
	deadline := time.Now().Add(f.drain)
	for time.Now().Before(deadline) && !rec.complete(sent) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopReaders()
	wg.Wait()

	lat := summarize(rec.latencies())
	_, _ = fmt.Fprintf(out, "sent %d records\n", sent)
	for i := range f.consumers {
		d, dup := rec.counts(i, sent)
		_, _ = fmt.Fprintf(out, "consumer %d: delivered %d, missing %d, duplicates %d\n", i, d, sent-d, dup)
	}
	_, _ = fmt.Fprintf(out, "put->receive latency over %d deliveries: p50 %s  p90 %s  p99 %s  max %s\n",
		len(rec.latencies()), fmtLatency(lat.P50), fmtLatency(lat.P90), fmtLatency(lat.P99), fmtLatency(lat.Max))
	first := ""
	if putErr != nil {
		first = putErr.Error()
	}
	for _, err := range readerErrs {
		if err != nil && first == "" {
			first = err.Error()
		}
	}
	return printTail(out, first, ctx.Err() != nil, false, nil)
}

// benchProc is the consumer mode's Processor: it records, and checkpoints
// every batch, as an application would.
type benchProc struct {
	rec  *receipts
	i    int
	noCP bool
}

func (p *benchProc) Initialize(context.Context, consumer.InitializeInput) error { return nil }
func (p *benchProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	now := time.Now()
	for _, r := range in.Records {
		p.rec.got(p.i, r.Data, now)
	}
	if len(in.Records) == 0 || p.noCP {
		return nil
	}
	if err := in.Checkpointer.Checkpoint(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, checkpoint.ErrLeaseLost) {
		return err
	}
	return nil
}
func (p *benchProc) LeaseLost(context.Context, consumer.LeaseLostInput) {}
func (p *benchProc) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *benchProc) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// putAtRate puts total records, rate per second, in a PutRecords call
// every 10ms; each record starts with its put time and index. It returns
// how many records were accepted.
func putAtRate(ctx context.Context, cl *Client, stream string, rate, total, size int) (int, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	next := 0
	var firstErr error
	for next < total {
		select {
		case <-ctx.Done():
			return next, ctx.Err()
		case <-tick.C:
		}
		due := min(total, int(time.Since(begin).Seconds()*float64(rate)))
		for next < due {
			n := min(due-next, 500)
			entries := make([]types.PutRecordsRequestEntry, n)
			now := time.Now().UnixNano()
			for j := range entries {
				data := make([]byte, size)
				binary.BigEndian.PutUint64(data, uint64(now))
				binary.BigEndian.PutUint64(data[8:], uint64(next+j))
				entries[j] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(strconv.Itoa((next + j) * 7919))}
			}
			for len(entries) > 0 {
				res, err := cl.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					if ctx.Err() != nil {
						return next, ctx.Err()
					}
					continue
				}
				var retry []types.PutRecordsRequestEntry
				for j, r := range res.Records {
					if r.ErrorCode != nil {
						retry = append(retry, entries[j])
					}
				}
				entries = retry
			}
			next += n
		}
	}
	return next, firstErr
}

// receipts records what each consumer received.
type receipts struct {
	mu   sync.Mutex // guards the following
	seen [][]uint8  // [consumer][index] deliveries
	lat  []time.Duration
}

func newReceipts(consumers, total int) *receipts {
	r := &receipts{seen: make([][]uint8, consumers)}
	for i := range r.seen {
		r.seen[i] = make([]uint8, total)
	}
	return r
}

func (r *receipts) got(consumer int, data []byte, now time.Time) {
	if len(data) < fanoutHeader {
		return
	}
	put := time.Unix(0, int64(binary.BigEndian.Uint64(data)))
	idx := int(binary.BigEndian.Uint64(data[8:]))
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen[consumer]
	if idx < 0 || idx >= len(s) {
		return
	}
	if s[idx] == 0 {
		r.lat = append(r.lat, now.Sub(put))
	}
	if s[idx] < 255 {
		s[idx]++
	}
}

func (r *receipts) complete(sent int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		for _, n := range s[:sent] {
			if n == 0 {
				return false
			}
		}
	}
	return true
}

func (r *receipts) counts(consumer, sent int) (delivered, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen[consumer][:sent] {
		if n > 0 {
			delivered++
			dups += int(n) - 1
		}
	}
	return delivered, dups
}

func (r *receipts) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat...)
}
