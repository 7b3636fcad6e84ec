// Command fanout-subscriber shows two independent applications reading the
// same stream through enhanced fan-out, each through its own registered
// stream consumer: "audit", a fanout.Subscriber without leases that counts
// every record with its MillisBehindLatest and latency, and "metrics", a
// consumer.Worker in FanOut retrieval mode with checkpoints in PostgreSQL
// that aggregates the values per partition key. A producer puts records at
// a steady rate meanwhile. Either application can be made slow on purpose
// (-slow): it falls behind, and the other does not.
//
// Without -endpoint it runs an embedded shoal server on a loopback port
// with a temporary data directory. It stops once both applications
// received -n records (or on Ctrl-C) and prints a summary. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/producer"
)

// config is what the flags set.
type config struct {
	Endpoint    string // shoal server URL; "" runs an embedded one
	Profile     string // AWS profile to sign with; "" means the SDK's default chain
	DataDir     string // the embedded server's data; "" means a temporary directory
	DatabaseURL string // PostgreSQL for the metrics application's leases
	Schema      string // schema of the lease table
	Table       string // lease table
	Stream      string // stream name
	Shards      int    // shards of the stream, if it is created

	Records     int           // records to put; 0 means until interrupted
	Rate        int           // records put per second; 0 means as fast as possible
	Keys        int           // distinct partition keys
	MaxBuffered time.Duration // the producer's MaxBufferedTime

	AuditName  string        // stream consumer of the audit application
	MetricsApp string        // application (and stream consumer) name of the metrics application
	Slow       string        // "", "audit" or "metrics": which application is slow on purpose
	SlowDelay  time.Duration // the slow application's extra time per record

	Status  time.Duration // progress line interval; 0 means none
	Quiet   bool          // no line per record
	Timeout time.Duration // give up after this long; 0 means never
	Verbose bool          // library logs on stderr

	// holdMetrics, if not nil, holds the metrics application's processors
	// before their first record until it is closed: the extreme of a slow
	// application, for the test.
	holdMetrics <-chan struct{}
}

// Which application -slow names.
const (
	slowNone    = ""
	slowAudit   = "audit"
	slowMetrics = "metrics"
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fanout-subscriber", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Endpoint, "endpoint", "", "shoal server URL, e.g. http://127.0.0.1:4567; empty runs an embedded server")
	fs.StringVar(&c.Profile, "profile", "", exkit.ProfileUsage)
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory of the embedded server; empty means a temporary one")
	fs.StringVar(&c.DatabaseURL, "database-url", exkit.DatabaseURL(), "PostgreSQL URL for the metrics application's leases and checkpoints (default: $DATABASE_URL)")
	fs.StringVar(&c.Schema, "schema", "shoal_examples", "PostgreSQL schema of the lease table (created if missing)")
	fs.StringVar(&c.Table, "table", "fanout_metrics_leases", "lease table (created if missing)")
	fs.StringVar(&c.Stream, "stream", "fanout-subscriber", "stream name")
	fs.IntVar(&c.Shards, "shards", 2, "shard count of the stream, if it has to be created")
	fs.IntVar(&c.Records, "n", 200, "records to put; the program stops once both applications received them (0: until interrupted)")
	fs.IntVar(&c.Rate, "rate", 50, "records put per second; 0 means as fast as possible")
	fs.IntVar(&c.Keys, "keys", 4, "distinct partition keys (sensor-0, sensor-1, ...)")
	fs.DurationVar(&c.MaxBuffered, "max-buffered-time", 100*time.Millisecond, "the producer's MaxBufferedTime: how long a record may wait to be batched (part of the latency)")
	fs.StringVar(&c.AuditName, "audit-consumer", "audit", "stream consumer name of the audit application")
	fs.StringVar(&c.MetricsApp, "metrics-app", "metrics", "application and stream consumer name of the metrics application")
	fs.StringVar(&c.Slow, "slow", slowNone, "make one application slow on purpose: audit or metrics")
	fs.DurationVar(&c.SlowDelay, "slow-delay", 100*time.Millisecond, "the slow application's extra time per record")
	fs.DurationVar(&c.Status, "status", time.Second, "interval of the progress line; 0 means none")
	fs.BoolVar(&c.Quiet, "quiet", false, "no line per record received")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "give up after this long; 0 means never")
	fs.BoolVar(&c.Verbose, "v", false, "log what the libraries do, on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Records < 0 || c.Rate < 0 {
		errs = append(errs, errors.New("-n and -rate must not be negative"))
	}
	if c.Shards < 1 || c.Keys < 1 {
		errs = append(errs, errors.New("-shards and -keys must be positive"))
	}
	if c.Slow != slowNone && c.Slow != slowAudit && c.Slow != slowMetrics {
		errs = append(errs, fmt.Errorf("-slow %q: want audit or metrics", c.Slow))
	}
	if c.SlowDelay < 0 || c.Status < 0 || c.Timeout < 0 || c.MaxBuffered < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.AuditName == "" || c.MetricsApp == "" || c.AuditName == c.MetricsApp {
		errs = append(errs, errors.New("-audit-consumer and -metrics-app must be set and differ: each application reads through its own consumer"))
	}
	return errors.Join(errs...)
}

func main() { exkit.Main("fanout-subscriber", parseFlags, run) }

// run is the whole program: main parses the flags and calls it, and so does
// the test. It returns nil when both applications received every record,
// and when ctx ends (Ctrl-C): both print the summary.
func run(ctx context.Context, cfg config, w io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	interrupted := ctx
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	out := exkit.NewLockedWriter(w)
	logger := exkit.Logger(cfg.Verbose)
	defer logger.Sync() //nolint:errcheck // stderr sync errors are not interesting

	// 1. A server, and the stream.
	srv, err := exkit.Connect(cfg.Endpoint, cfg.DataDir, logger.Named("server"))
	if err != nil {
		return err
	}
	defer srv.Stop() //nolint:errcheck // nothing to do about it on the way out
	if srv.Embedded() {
		_, _ = fmt.Fprintf(out, "embedded shoal server at %s\n", srv.Endpoint)
	}
	client, creds, err := srv.Stream(ctx, cfg.Profile, cfg.Stream, cfg.Shards)
	if err != nil {
		return err
	}
	// Subscriptions last minutes: the readers' HTTP client has no timeout.
	readClient := exkit.FanOutClient(srv.Endpoint, creds)

	// 2. The metrics application's lease table.
	store, closeStore, err := srv.LeaseStore(ctx, cfg.DatabaseURL, cfg.Schema, cfg.Table, cfg.MetricsApp, logger.Named("checkpoint"))
	if err != nil {
		return err
	}
	defer closeStore()

	// 3. The two applications, each with its own stream consumer. Both
	// start at this run's start (less a second, for clocks that disagree
	// a little): a record of an earlier run that they meet anyway is
	// counted as "other".
	runID := exkit.RunID()
	start := time.Now()
	from := start.Add(-time.Second)
	width := max(len(cfg.AuditName), len(cfg.MetricsApp))
	var recOut io.Writer = out
	if cfg.Quiet {
		recOut = nil
	}
	auditStats := newAppStats(cfg.AuditName, runID, cfg.Records, recOut, width)
	metricsStats := newAppStats(cfg.MetricsApp, runID, cfg.Records, recOut, width)
	agg := &aggregator{keys: map[string]*keyAgg{}}
	auditDelay, metricsDelay := time.Duration(0), time.Duration(0)
	switch cfg.Slow {
	case slowAudit:
		auditDelay = cfg.SlowDelay
	case slowMetrics:
		metricsDelay = cfg.SlowDelay
	}
	audit, err := newAudit(readClient, cfg, auditStats, from, auditDelay, logger.Named("audit"))
	if err != nil {
		return err
	}
	metrics, err := newMetrics(readClient, store, cfg, metricsStats, agg, from, metricsDelay, cfg.holdMetrics, logger.Named("metrics"))
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "run %s: %s (fanout.Subscriber) and %s (consumer.Worker, FanOut) read stream %s; slow: %s\n",
		runID, cfg.AuditName, cfg.MetricsApp, cfg.Stream, slowName(cfg))

	appCtx, stopApps := context.WithCancel(ctx)
	defer stopApps()
	auditRan := make(chan error, 1)
	metricsRan := make(chan error, 1)
	go func() { auditRan <- audit.Run(appCtx) }()
	go func() { metricsRan <- metrics.Run(appCtx) }()

	// 4. The producer, at a steady rate.
	var stored, failed atomic.Int64
	produced := make(chan error, 1)
	prodCtx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	go func() {
		produced <- produce(prodCtx, client, cfg, runID, &stored, &failed, out, logger.Named("producer"))
	}()

	// 5. Until both applications received every record, something fails,
	// or ctx ends.
	var tick <-chan time.Time
	if cfg.Status > 0 {
		t := time.NewTicker(cfg.Status)
		defer t.Stop()
		tick = t.C
	}
	auditFin, metricsFin := auditStats.done, metricsStats.done
	var failure error
	for failure == nil && (auditFin != nil || metricsFin != nil) && ctx.Err() == nil {
		select {
		case <-auditFin:
			auditFin = nil
			_, _ = fmt.Fprintf(out, "%s: received all %d records, %s after the start\n", cfg.AuditName, cfg.Records, time.Since(start).Round(time.Millisecond))
		case <-metricsFin:
			metricsFin = nil
			_, _ = fmt.Fprintf(out, "%s: received all %d records, %s after the start\n", cfg.MetricsApp, cfg.Records, time.Since(start).Round(time.Millisecond))
		case err := <-auditRan:
			auditRan = nil
			failure = fmt.Errorf("%s stopped early: %w", cfg.AuditName, orStopped(err))
		case err := <-metricsRan:
			metricsRan = nil
			failure = fmt.Errorf("%s stopped early: %w", cfg.MetricsApp, orStopped(err))
		case err := <-produced:
			produced = nil
			if err != nil {
				failure = err
			}
		case <-tick:
			_, _ = fmt.Fprintf(out, "status %s: produced %d, %s, %s\n",
				time.Since(start).Round(time.Second), stored.Load(), auditStats.status(), metricsStats.status())
		case <-ctx.Done():
		}
	}

	// 6. Stop: the producer (if a failure cut the run short), the
	// Subscriber, which closes its subscriptions, and the Worker, which
	// checkpoints each shard and releases its lease.
	if failure != nil {
		stopProducer()
	}
	stopApps()
	if auditRan != nil {
		if err := <-auditRan; err != nil && failure == nil {
			failure = fmt.Errorf("%s: %w", cfg.AuditName, err)
		}
	}
	if metricsRan != nil {
		if err := <-metricsRan; err != nil && failure == nil {
			failure = fmt.Errorf("%s: %w", cfg.MetricsApp, err)
		}
	}
	if produced != nil {
		if err := <-produced; err != nil && failure == nil {
			failure = err
		}
	}

	// 7. The stream's consumers, and the summary.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	consumers, err := listConsumers(lctx, client, cfg.Stream)
	if err != nil {
		failure = errors.Join(failure, err)
	} else {
		_, _ = fmt.Fprintf(out, "consumers of stream %s: %s\n", cfg.Stream, strings.Join(consumers, ", "))
	}
	n := int(stored.Load())
	_, _ = fmt.Fprintf(out, "summary of run %s: produced %d records (%d failed), slow: %s\n", runID, n, failed.Load(), slowName(cfg))
	_, _ = fmt.Fprintf(out, "  %s\n", auditStats.summary(n))
	_, _ = fmt.Fprintf(out, "  %s\n", metricsStats.summary(n))
	for _, l := range agg.lines(cfg.MetricsApp) {
		_, _ = fmt.Fprintf(out, "  %s\n", l)
	}
	switch {
	case failure != nil:
		return failure
	case interrupted.Err() != nil:
		return nil // Ctrl-C: the summary is of what was received until then
	case ctx.Err() != nil:
		return fmt.Errorf("timed out after %v: %s received %d, %s received %d of %d records",
			cfg.Timeout, cfg.AuditName, auditStats.count(), cfg.MetricsApp, metricsStats.count(), cfg.Records)
	}
	return nil
}

// orStopped turns the nil an application returns when it has nothing
// left to read into an error: here, that is too early.
func orStopped(err error) error {
	if err == nil {
		return errors.New("nothing left to read")
	}
	return err
}

func slowName(cfg config) string {
	switch cfg.Slow {
	case slowAudit:
		return fmt.Sprintf("%s (+%v per record)", cfg.AuditName, cfg.SlowDelay)
	case slowMetrics:
		return fmt.Sprintf("%s (+%v per record)", cfg.MetricsApp, cfg.SlowDelay)
	}
	return "none"
}

// produce puts cfg.Records records (until ctx ends if 0), cfg.Rate per
// second if set, then flushes the producer. stored and failed count the
// results as they come.
func produce(ctx context.Context, client producer.KinesisAPI, cfg config, runID string, stored, failed *atomic.Int64, out io.Writer, logger *zap.Logger) error {
	var firstErr atomic.Value
	p, err := producer.New(client, producer.Config{
		StreamName:      cfg.Stream,
		MaxBufferedTime: cfg.MaxBuffered,
		Logger:          logger,
		OnResult: func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.Err)
				return
			}
			stored.Add(1)
		},
	})
	if err != nil {
		return err
	}
	began := time.Now()
	n := 0
	for ; cfg.Records == 0 || n < cfg.Records; n++ {
		if cfg.Rate > 0 {
			due := began.Add(time.Duration(n) * time.Second / time.Duration(cfg.Rate))
			if err := pause(ctx, time.Until(due)); err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		pl := payload{Run: runID, N: n, Value: valueOf(n), Put: time.Now()}
		if _, err := p.Put(ctx, keyOf(n, cfg.Keys), pl.encode()); err != nil {
			if ctx.Err() != nil {
				break
			}
			_ = p.Close(ctx)
			return fmt.Errorf("put record %d: %w", n, err)
		}
	}
	// Close sends what is buffered and waits for every result; bound it,
	// since ctx may have ended already (interrupted).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	took := time.Since(began)
	_, _ = fmt.Fprintf(out, "producer: put %d records in %s (%.0f/s), %d failed\n",
		stored.Load(), took.Round(time.Millisecond), float64(n)/took.Seconds(), failed.Load())
	if e, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("%d records failed, the first with: %w", failed.Load(), e)
	}
	return nil
}

// listConsumers returns "name (STATUS)" for each consumer registered on the
// stream, sorted.
func listConsumers(ctx context.Context, client *kinesis.Client, stream string) ([]string, error) {
	arn, err := fanout.StreamARN(ctx, client, stream)
	if err != nil {
		return nil, err
	}
	var names []string
	in := &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn)}
	for {
		page, err := client.ListStreamConsumers(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list stream consumers: %w", err)
		}
		for _, c := range page.Consumers {
			names = append(names, fmt.Sprintf("%s (%s)", aws.ToString(c.ConsumerName), c.ConsumerStatus))
		}
		if aws.ToString(page.NextToken) == "" {
			slices.Sort(names)
			return names, nil
		}
		in = &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), NextToken: page.NextToken}
	}
}
