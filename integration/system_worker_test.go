package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// The consumer worker process of TestSystem: the test binary re-executes
// itself with sysWorkerEnv set, and TestMain runs workerMain instead of the
// tests. The worker runs consumer.Worker against the server (through the
// test's proxy) and PostgreSQL, and reports on stdout, one line each:
//
//	READY <ts>
//	I <ts> <shard> <proc> <seq> <subseq>          Initialize, with the starting checkpoint
//	R <ts> <shard> <proc> <seq> <subseq> <data>   a record was processed
//	C <ts> <shard> <proc> <seq> <subseq>          a checkpoint succeeded
//	X <ts> <shard> <proc> <error>                 a checkpoint failed
//	L <ts> <shard> <proc>                         LeaseLost
//	E <ts> <shard> <proc>                         ShardEnded, checkpointed
//	S <ts> <shard> <proc> <seq> <subseq>          ShutdownRequested, checkpointed there
//	EXIT <ts> <error or ok>
//
// <ts> is time.Now().UnixNano(); <proc> names the Processor instance ("p1",
// "p2", ...), since a worker may start a new processor for a shard it
// took back before the old one's LeaseLost was called. A batch's R lines are written (one write)
// before its checkpoint is attempted, so a record reported is at least
// processed, and a record checkpointed was reported.

const (
	sysWorkerEnv   = "SHOAL_SYSTEM_WORKER" // the worker ID; set only in worker processes
	sysEndpointEnv = "SHOAL_SYSTEM_ENDPOINT"
	sysPGAddrEnv   = "SHOAL_SYSTEM_PG_ADDR" // host:port replacing the database URL's
	sysSchemaEnv   = "SHOAL_SYSTEM_SCHEMA"
	sysStreamEnv   = "SHOAL_SYSTEM_STREAM"
	sysAppEnv      = "SHOAL_SYSTEM_APP"

	// sysFailover is the lease failover time of the workers and the store.
	sysFailover = 2 * time.Second
	// sysWorkTime is how long processing one batch takes.
	sysWorkTime = 20 * time.Millisecond
)

// sysAppName is the PostgreSQL application_name of a worker's connections,
// so that the test can cut exactly that worker off the database.
func sysAppName(schema, worker string) string { return schema + "-" + worker }

// workerMain runs one worker process until SIGTERM and returns its exit
// code.
func workerMain() int {
	id := os.Getenv(sysWorkerEnv)
	out := &lineOut{}
	zcfg := zap.NewProductionConfig()
	zcfg.Level = zap.NewAtomicLevelAt(zapcore.WarnLevel)
	zcfg.OutputPaths = []string{"stderr"}
	zcfg.ErrorOutputPaths = []string{"stderr"}
	logger, err := zcfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: logger:", err)
		return 2
	}
	logger = logger.Named(id)
	err = runWorker(id, out, logger)
	_ = logger.Sync()
	if err != nil {
		out.emit("EXIT", oneField(err.Error()))
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	out.emit("EXIT", "ok")
	return 0
}

func runWorker(id string, out *lineOut, logger *zap.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	schema := os.Getenv(sysSchemaEnv)
	pcfg, err := pgxpool.ParseConfig(pgtest.URL())
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	if addr := os.Getenv(sysPGAddrEnv); addr != "" {
		// The test's proxy to PostgreSQL, which can cut this worker off.
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", sysPGAddrEnv, addr, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", sysPGAddrEnv, addr, err)
		}
		pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Fallbacks = host, uint16(p), nil
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pcfg.ConnConfig.RuntimeParams["application_name"] = sysAppName(schema, id)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	defer pool.Close()
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, FailoverTime: sysFailover, Logger: logger.Named("store")})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer func() { _ = store.Close() }() // always nil
	cfg := consumer.Config{
		ApplicationName:      os.Getenv(sysAppEnv),
		StreamName:           os.Getenv(sysStreamEnv),
		WorkerID:             id,
		InitialPosition:      consumer.TrimHorizon,
		FailoverTime:         sysFailover,
		TakeInterval:         time.Second,
		ShardSyncInterval:    5 * time.Second,
		IdleTimeBetweenReads: 50 * time.Millisecond,
		MaxRecords:           2000,
		TaskBackoff:          50 * time.Millisecond,
		MaxBackoff:           time.Second,
		ShutdownTimeout:      10 * time.Second,
		Logger:               logger,
	}
	var processors atomic.Int64
	factory := func(shardID string) consumer.Processor {
		return &sysProcessor{out: out, shard: shardID, id: "p" + strconv.FormatInt(processors.Add(1), 10)}
	}
	w, err := consumer.New(servertest.Client(os.Getenv(sysEndpointEnv)), store, factory, cfg)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	out.emit("READY")
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// lineOut writes protocol lines to stdout. os.File serialises concurrent
// Writes, and each call is one Write, so lines never interleave.
type lineOut struct{}

func (lineOut) emit(kind string, fields ...string) {
	_, _ = os.Stdout.WriteString(line(kind, fields...))
}

func line(kind string, fields ...string) string {
	return kind + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + " " + strings.Join(fields, " ") + "\n"
}

// oneField makes s safe as the last field of a line.
func oneField(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// sysProcessor reports every record and checkpoints after every batch.
type sysProcessor struct {
	out   *lineOut
	shard string
	id    string // unique in the process: a worker may run a new processor of a shard before the old one's LeaseLost
	// last is the position ShutdownRequested's checkpoint records: the
	// last record delivered, or the starting checkpoint.
	lastSeq string
	lastSub int64
}

func (p *sysProcessor) Initialize(_ context.Context, in consumer.InitializeInput) error {
	p.lastSeq, p.lastSub = in.Checkpoint.SequenceNumber, in.Checkpoint.SubSequenceNumber
	p.out.emit("I", p.shard, p.id, in.Checkpoint.SequenceNumber, strconv.FormatInt(in.Checkpoint.SubSequenceNumber, 10))
	return nil
}

func (p *sysProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	if len(in.Records) == 0 {
		return nil
	}
	var b strings.Builder
	for _, r := range in.Records {
		data, _, _ := strings.Cut(string(r.Data), " ") // the key and counter, without padding
		b.WriteString(line("R", p.shard, p.id, r.SequenceNumber, strconv.FormatInt(r.SubSequenceNumber, 10), oneField(data)))
	}
	_, _ = os.Stdout.WriteString(b.String())
	// The processing itself: a pause that gives the faults a window
	// between processing and checkpointing, as real work would.
	select {
	case <-time.After(sysWorkTime):
	case <-ctx.Done():
	}
	last := in.Records[len(in.Records)-1]
	p.lastSeq, p.lastSub = last.SequenceNumber, last.SubSequenceNumber
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		p.out.emit("X", p.shard, p.id, oneField(err.Error()))
		return nil // the next batch's checkpoint covers this one
	}
	p.out.emit("C", p.shard, p.id, last.SequenceNumber, strconv.FormatInt(last.SubSequenceNumber, 10))
	return nil
}

func (p *sysProcessor) LeaseLost(context.Context, consumer.LeaseLostInput) {
	p.out.emit("L", p.shard, p.id)
}

func (p *sysProcessor) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.out.emit("E", p.shard, p.id)
	return nil
}

func (p *sysProcessor) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		p.out.emit("X", p.shard, p.id, oneField(err.Error()))
		return err
	}
	p.out.emit("S", p.shard, p.id, p.lastSeq, strconv.FormatInt(p.lastSub, 10))
	return nil
}
