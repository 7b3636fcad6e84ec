// Command stock-trades is shoal's version of the AWS tutorial "Process
// Real-Time Stock Data Using KPL and KCL": a producer puts simulated stock
// trades (JSON, keyed by ticker symbol) into a stream, and a consumer
// application reads them with the consumer library and prints, for every
// window of trade time, the most popular stocks being bought and sold and
// the largest buy and sell orders.
//
//	go run ./examples/stock-trades -mode both
//
// See README.md for the modes and flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/producer"
)

// Modes.
const (
	modeProduce = "produce"
	modeConsume = "consume"
	modeBoth    = "both"
)

// config is what the flags set.
type config struct {
	Mode        string
	Endpoint    string // "" runs an embedded server (mode both only)
	Profile     string // AWS profile to sign with; "" means the SDK's default chain
	DataDir     string
	DatabaseURL string
	Schema      string
	Table       string
	Stream      string
	Shards      int
	Application string

	Trades int           // trades to put; 0 means until interrupted (produce mode)
	Rate   int           // trades put per second; 0 means as fast as possible
	Seed   uint64        // the generator's seed
	Start  time.Time     // simulated time of the first trade
	Tick   time.Duration // simulated time between trades

	Window   time.Duration // report window, in trade time
	Lateness time.Duration // how long after its end a window waits for trades
	Timeout  time.Duration // give up after this long; 0 means never (both: 5m)
	Verbose  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var start string
	fs := flag.NewFlagSet("stock-trades", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Mode, "mode", modeBoth, "produce, consume, or both")
	fs.StringVar(&c.Endpoint, "endpoint", "", "shoal server URL; empty runs an embedded server (mode both only)")
	fs.StringVar(&c.Profile, "profile", "", exkit.ProfileUsage)
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory of the embedded server; empty means a temporary one")
	fs.StringVar(&c.DatabaseURL, "database-url", exkit.DatabaseURL(), "PostgreSQL URL for leases and checkpoints (default: $DATABASE_URL)")
	fs.StringVar(&c.Schema, "schema", "shoal_examples", "PostgreSQL schema of the lease table")
	fs.StringVar(&c.Table, "table", "stock_trades_leases", "lease table")
	fs.StringVar(&c.Stream, "stream", "stock-trades", "stream name")
	fs.IntVar(&c.Shards, "shards", 2, "shard count, if the stream has to be created")
	fs.StringVar(&c.Application, "app", "stock-trades-stats", "consumer application name")
	fs.IntVar(&c.Trades, "trades", 1000, "trades to put; 0 means until interrupted (produce mode)")
	fs.IntVar(&c.Rate, "rate", 0, "trades put per second; 0 means as fast as possible")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the trade generator: the same seed gives the same trades")
	fs.StringVar(&start, "start", "2024-01-02T09:30:00Z", "simulated time of the first trade (RFC 3339)")
	fs.DurationVar(&c.Tick, "tick", 100*time.Millisecond, "simulated time between two trades")
	fs.DurationVar(&c.Window, "window", 10*time.Second, "report window, in simulated trade time")
	fs.DurationVar(&c.Lateness, "lateness", 10*time.Second, "how long (trade time) after its end a window still waits for trades")
	fs.DurationVar(&c.Timeout, "timeout", 0, "give up after this long; 0 means never (mode both: 5m)")
	fs.BoolVar(&c.Verbose, "v", false, "log what the libraries do, on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return c, fmt.Errorf("-start: %w", err)
	}
	c.Start = t
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	switch c.Mode {
	case modeBoth:
		if c.Trades < 1 {
			errs = append(errs, errors.New("-mode both needs -trades > 0: it stops once it consumed them"))
		}
	case modeProduce, modeConsume:
		if c.Endpoint == "" {
			errs = append(errs, fmt.Errorf("-mode %s needs -endpoint: the producer and consumer share a running server", c.Mode))
		}
	default:
		errs = append(errs, fmt.Errorf("-mode %q: want produce, consume or both", c.Mode))
	}
	if c.Trades < 0 || c.Rate < 0 || c.Shards < 1 {
		errs = append(errs, errors.New("-trades and -rate must not be negative, -shards must be positive"))
	}
	if c.Tick <= 0 || c.Window <= 0 || c.Lateness < 0 {
		errs = append(errs, errors.New("-tick and -window must be positive, -lateness not negative"))
	}
	return errors.Join(errs...)
}

func main() { exkit.Main("stock-trades", parseFlags, run) }

// run is the whole program: main parses the flags and calls it, and so does
// the test.
func run(ctx context.Context, cfg config, w io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	timeout := cfg.Timeout
	if timeout == 0 && cfg.Mode == modeBoth {
		timeout = 5 * time.Minute
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := exkit.NewLockedWriter(w) // the producer and the consumer share it
	logger := exkit.Logger(cfg.Verbose)
	defer logger.Sync() //nolint:errcheck // stderr sync errors are not interesting

	srv, err := exkit.Connect(cfg.Endpoint, cfg.DataDir, logger.Named("server"))
	if err != nil {
		return err
	}
	defer srv.Stop() //nolint:errcheck // nothing to do about it on the way out
	client, _, err := srv.Stream(ctx, cfg.Profile, cfg.Stream, cfg.Shards)
	if err != nil {
		return err
	}

	if cfg.Mode == modeProduce {
		return produce(ctx, client, cfg, out, logger)
	}

	// The consumer application.
	store, closeStore, err := srv.LeaseStore(ctx, cfg.DatabaseURL, cfg.Schema, cfg.Table, cfg.Application, logger.Named("checkpoint"))
	if err != nil {
		return err
	}
	defer closeStore()
	shards, err := openShards(ctx, client, cfg.Stream)
	if err != nil {
		return err
	}
	want := 0
	if cfg.Mode == modeBoth {
		want = cfg.Trades
	}
	agg := newAggregator(out, shards, cfg.Window, cfg.Lateness, want, logger.Named("stats"))
	worker, err := consumer.New(client, store, func(string) consumer.Processor {
		return &tradeProcessor{agg: agg}
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
	go func() { ran <- worker.Run(wctx) }()

	if cfg.Mode == modeConsume {
		// Until interrupted.
		err := <-ran
		agg.flush("at shutdown: may be incomplete")
		_, _ = fmt.Fprintln(out, agg.summary())
		return err
	}

	// Both: put the trades while the consumer reads them; stop once every
	// trade was counted.
	produced := make(chan error, 1)
	go func() { produced <- produce(ctx, client, cfg, out, logger) }()
	var perr error
	for {
		select {
		case perr = <-produced:
			produced = nil
			if perr != nil {
				stopWorker()
				<-ran //nolint:errcheck // waits for the worker; perr is the error to report (`_ =` trips staticcheck S1005)
				return perr
			}
			continue
		case <-agg.done:
		case err := <-ran:
			if produced != nil {
				<-produced //nolint:errcheck // waits for the producer; the consumer's error is the one to report (`_ =` trips staticcheck S1005)
			}
			return fmt.Errorf("consumer stopped early: %w", err)
		case <-ctx.Done():
		}
		break
	}
	stopWorker()
	if err := <-ran; err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if produced != nil {
		if perr = <-produced; perr != nil {
			return perr
		}
	}
	if err := ctx.Err(); err != nil {
		agg.flush("at timeout: may be incomplete")
		_, _ = fmt.Fprintln(out, agg.summary())
		return err
	}
	agg.flush("")
	_, _ = fmt.Fprintln(out, agg.summary())
	return nil
}

// produce puts cfg.Trades trades (until ctx ends if 0), paced at cfg.Rate
// per second if set, then flushes the producer.
func produce(ctx context.Context, client producer.KinesisAPI, cfg config, out io.Writer, logger *zap.Logger) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	p, err := producer.New(client, producer.Config{
		StreamName: cfg.Stream,
		Logger:     logger.Named("producer"),
		OnResult: func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.Err)
			}
		},
	})
	if err != nil {
		return err
	}
	gen := newGenerator(cfg.Seed, cfg.Start, cfg.Tick)
	began := time.Now()
	n := 0
	for ; cfg.Trades == 0 || n < cfg.Trades; n++ {
		if cfg.Rate > 0 {
			due := began.Add(time.Duration(n) * time.Second / time.Duration(cfg.Rate))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		t := gen.Next()
		data, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode trade: %w", err)
		}
		if _, err := p.Put(ctx, t.Ticker, data); err != nil {
			if ctx.Err() != nil {
				break
			}
			_ = p.Close(ctx)
			return fmt.Errorf("put trade %d: %w", t.ID, err)
		}
	}
	// Close sends what is buffered and waits for every result; bound it,
	// since ctx may have ended already (interrupted).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	_, _ = fmt.Fprintf(out, "produced %d trades (%d failed) to stream %s\n", n, failed.Load(), cfg.Stream)
	if e, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("%d trades failed, the first with: %w", failed.Load(), e)
	}
	return nil
}

// openShards lists the shards of the stream that are open.
func openShards(ctx context.Context, client *kinesis.Client, stream string) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		page, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		for _, s := range page.Shards {
			if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
				ids = append(ids, aws.ToString(s.ShardId))
			}
		}
		if page.NextToken == nil {
			return ids, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}
