// Command quickstart is shoal's smallest end-to-end program: it creates a
// stream, puts records into it with the producer library, reads them back
// with the consumer library (leases and checkpoints in PostgreSQL), prints
// each record it processes, and exits once all of them were processed.
//
// Without -endpoint it runs an embedded shoal server on a loopback port
// with a temporary data directory. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/producer"
)

// config is what the flags set.
type config struct {
	Endpoint    string        // shoal server URL; "" runs an embedded one
	Profile     string        // AWS profile to sign with; "" means the SDK's default chain
	DataDir     string        // the embedded server's data; "" means a temporary directory
	DatabaseURL string        // PostgreSQL for leases and checkpoints
	Schema      string        // schema of the lease table
	Table       string        // lease table
	Stream      string        // stream name
	Shards      int           // shards of the stream, if it is created
	Records     int           // records to put and then process
	Application string        // consumer application name
	Timeout     time.Duration // give up after this long
	Verbose     bool          // library logs on stderr
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Endpoint, "endpoint", "", "shoal server URL, e.g. http://127.0.0.1:4567; empty runs an embedded server")
	fs.StringVar(&c.Profile, "profile", "", exkit.ProfileUsage)
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory of the embedded server; empty means a temporary one")
	fs.StringVar(&c.DatabaseURL, "database-url", exkit.DatabaseURL(), "PostgreSQL URL for leases and checkpoints (default: $DATABASE_URL)")
	fs.StringVar(&c.Schema, "schema", "shoal_examples", "PostgreSQL schema of the lease table (created if missing)")
	fs.StringVar(&c.Table, "table", "quickstart_leases", "lease table (created if missing)")
	fs.StringVar(&c.Stream, "stream", "quickstart", "stream name")
	fs.IntVar(&c.Shards, "shards", 2, "shard count of the stream, if it has to be created")
	fs.IntVar(&c.Records, "n", 10, "how many records to put and process")
	fs.StringVar(&c.Application, "app", "quickstart", "consumer application name")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&c.Verbose, "v", false, "log what the libraries do, on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Records < 1 || c.Shards < 1 {
		return c, errors.New("-n and -shards must be positive")
	}
	return c, nil
}

func main() { exkit.Main("quickstart", parseFlags, run) }

// run is the whole program: main parses the flags and calls it, and so does
// the test.
func run(ctx context.Context, cfg config, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	logger := exkit.Logger(cfg.Verbose)
	defer logger.Sync() //nolint:errcheck // stderr sync errors are not interesting

	// 1. A server: the one at -endpoint, or an embedded one.
	srv, err := exkit.Connect(cfg.Endpoint, cfg.DataDir, logger.Named("server"))
	if err != nil {
		return err
	}
	defer srv.Stop() //nolint:errcheck // nothing to do about it on the way out
	if srv.Embedded() {
		_, _ = fmt.Fprintf(out, "embedded shoal server at %s\n", srv.Endpoint)
	}
	client, _, err := srv.Stream(ctx, cfg.Profile, cfg.Stream, cfg.Shards)
	if err != nil {
		return err
	}

	// 2. The lease table in PostgreSQL.
	// (On a new embedded server, whose stream is new, the application's
	// checkpoints of an earlier run are forgotten: they would name records
	// the stream does not hold and stall its shards.)
	store, closeStore, err := srv.LeaseStore(ctx, cfg.DatabaseURL, cfg.Schema, cfg.Table, cfg.Application, logger.Named("checkpoint"))
	if err != nil {
		return err
	}
	defer closeStore()

	// 3. Put the records. Each carries this run's id, so that the count
	// below is of this run's records even on a stream that has others.
	runID := exkit.RunID()
	if err := produce(ctx, client, cfg, runID, logger); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "produced %d records (run %s) to stream %s\n", cfg.Records, runID, cfg.Stream)

	// 4. Consume until every record of this run was processed.
	t := &tally{out: out, runID: runID, want: cfg.Records, seen: map[int]int{}, done: make(chan struct{})}
	w, err := consumer.New(client, store, func(shardID string) consumer.Processor {
		return &printer{tally: t}
	}, consumer.Config{
		ApplicationName:      cfg.Application,
		StreamName:           cfg.Stream,
		InitialPosition:      consumer.TrimHorizon,
		IdleTimeBetweenReads: 200 * time.Millisecond,
		ShutdownTimeout:      10 * time.Second,
		Logger:               logger.Named("consumer"),
	})
	if err != nil {
		return err
	}
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(wctx) }()
	select {
	case <-t.done:
		stopWorker() // graceful: each shard checkpoints and releases its lease
		if err := <-ran; err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
	case err := <-ran:
		return fmt.Errorf("consumer stopped early (%d of %d records processed): %w", t.count(), cfg.Records, err)
	case <-ctx.Done():
		stopWorker()
		<-ran //nolint:errcheck // waits for the worker; ctx's error is the one to report (`_ =` trips staticcheck S1005)
		return fmt.Errorf("%d of %d records processed: %w", t.count(), cfg.Records, ctx.Err())
	}
	shards := t.shards()
	_, _ = fmt.Fprintf(out, "processed %d records from %d shards (%s); checkpoints are in %s.%s\n",
		cfg.Records, len(shards), strings.Join(shards, ", "), cfg.Schema, cfg.Table)
	return nil
}

// produce puts cfg.Records records and waits until every one is stored.
func produce(ctx context.Context, client producer.KinesisAPI, cfg config, runID string, logger *zap.Logger) error {
	p, err := producer.New(client, producer.Config{StreamName: cfg.Stream, Logger: logger.Named("producer")})
	if err != nil {
		return err
	}
	pending := make([]*producer.Pending, 0, cfg.Records)
	for i := range cfg.Records {
		pd, err := p.Put(ctx, "key-"+strconv.Itoa(i), fmt.Appendf(nil, "run %s record %d", runID, i))
		if err != nil {
			_ = p.Close(ctx)
			return fmt.Errorf("put: %w", err)
		}
		pending = append(pending, pd)
	}
	// Close sends what is still buffered and waits for every result.
	if err := p.Close(ctx); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	for _, pd := range pending {
		if _, err := pd.Wait(ctx); err != nil {
			return fmt.Errorf("record %s: %w", pd.Record().PartitionKey, err)
		}
	}
	return nil
}

// printer is the record processor: it prints every record of its batch,
// then checkpoints the batch.
type printer struct{ tally *tally }

// Initialize is called before the first batch of the shard.
func (p *printer) Initialize(context.Context, consumer.InitializeInput) error { return nil }

// ProcessRecords prints the batch and checkpoints after its last record.
func (p *printer) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for _, r := range in.Records {
		p.tally.add(in.ShardID, r)
	}
	return in.Checkpointer.Checkpoint(ctx)
}

// LeaseLost: another worker has the shard; nothing to do.
func (p *printer) LeaseLost(context.Context, consumer.LeaseLostInput) {}

// ShardEnded checkpoints SHARD_END so that the shard's children can start.
func (p *printer) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// ShutdownRequested checkpoints, so that the next run starts after the last
// record printed.
func (p *printer) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}

// tally prints records and counts those of this run; the processors of all
// shards share it.
type tally struct {
	out   io.Writer
	runID string
	want  int

	mu       sync.Mutex // guards the fields below and writes to out
	seen     map[int]int
	byShard  []string
	finished bool
	done     chan struct{} // closed when every record of the run was seen
}

func (t *tally) add(shardID string, r consumer.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = fmt.Fprintf(t.out, "%s %s/%d %s: %s\n", shardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
	var run string
	var i int
	if _, err := fmt.Sscanf(string(r.Data), "run %s record %d", &run, &i); err != nil || run != t.runID {
		return // another run's record
	}
	t.seen[i]++
	if !slices.Contains(t.byShard, shardID) {
		t.byShard = append(t.byShard, shardID)
	}
	if len(t.seen) == t.want && !t.finished {
		t.finished = true
		close(t.done)
	}
}

func (t *tally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func (t *tally) shards() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(slices.Values(t.byShard))
}
