package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// Config configures a Subscriber. StreamARN or StreamName, ConsumerName or
// ConsumerARN, and Handler are required; every other zero field takes the
// default its comment gives.
type Config struct {
	// StreamARN is the stream to read. Either it or StreamName is
	// required; with only StreamName, Run looks the ARN up.
	StreamARN string
	// StreamName names the stream to read instead.
	StreamName string
	// ConsumerName is the enhanced fan-out consumer to read as: Run
	// registers it, or reuses it if it exists, and waits until it is
	// ACTIVE. Required unless ConsumerARN is set. The Subscriber never
	// deregisters it.
	ConsumerName string
	// ConsumerARN names an ACTIVE consumer to read as, instead of
	// ConsumerName.
	ConsumerARN string

	// ShardIDs are the shards to read. Nil means every shard: with a
	// LATEST StartingPosition the open shards, otherwise all the shards
	// the stream holds, each parent before its children.
	ShardIDs []string
	// StartingPosition is where the shards named by ShardIDs (or found at
	// start) are read from, unless ShardPositions names another. Zero
	// means LATEST. Children of shards that end are always read from
	// TRIM_HORIZON, so that none of their records is missed.
	StartingPosition Position
	// ShardPositions overrides StartingPosition per shard: typically
	// AfterSequenceNumber of the last processed batch's
	// ContinuationSequenceNumber, to resume after a restart.
	ShardPositions map[string]Position

	// Handler processes the batches. Required. It is called for one
	// shard at a time in the shard's order, and concurrently for
	// different shards. While it runs for a shard, nothing more is read
	// from that shard's subscription (back-pressure, nothing is buffered).
	// An error stops the Subscriber: Run returns it as a *HandlerError.
	// ctx ends when Run's ctx does.
	Handler func(ctx context.Context, b Batch) error
	// Deaggregate unpacks KPL aggregated records into their user records
	// (and drops those outside the shard's hash key range, as the
	// consumer library does). Default false: records are delivered as
	// Kinesis stored them.
	Deaggregate bool
	// DeliverEmptyBatches calls Handler for events without records too
	// (to observe MillisBehindLatest and ContinuationSequenceNumber).
	// Default false; a shard's last batch is always delivered.
	DeliverEmptyBatches bool

	Options
}

// Subscriber reads a stream's shards through enhanced fan-out: one
// SubscribeShard loop per shard, parents before children.
type Subscriber struct {
	client KinesisAPI
	cfg    Config
	log    *zap.Logger
	ran    atomic.Bool

	mu          sync.Mutex // guards the following
	consumerARN string
}

// New checks cfg and returns a Subscriber that reads with client. It
// returns every problem found, joined.
func New(client KinesisAPI, cfg Config) (*Subscriber, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if client == nil {
		bad("nil client")
	}
	if cfg.StreamARN == "" && cfg.StreamName == "" {
		bad("StreamARN or StreamName is required")
	}
	if cfg.ConsumerName == "" && cfg.ConsumerARN == "" {
		bad("ConsumerName or ConsumerARN is required")
	}
	if cfg.Handler == nil {
		bad("Handler is required")
	}
	if err := cfg.StartingPosition.validate(); err != nil {
		bad("StartingPosition: %w", err)
	}
	for id, p := range cfg.ShardPositions {
		if err := p.validate(); err != nil {
			bad("ShardPositions[%s]: %w", id, err)
		}
	}
	if cfg.ShardIDs != nil && len(cfg.ShardIDs) == 0 {
		bad("ShardIDs is empty (nil means every shard)")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fanout config: %w", errors.Join(errs...))
	}
	cfg.Options = cfg.Options.withDefaults()
	cfg.ShardIDs = slices.Clone(cfg.ShardIDs)
	return &Subscriber{client: client, cfg: cfg, log: cfg.Logger, consumerARN: cfg.ConsumerARN}, nil
}

// ConsumerARN returns the consumer's ARN: Config.ConsumerARN, or once Run
// has registered it, the registered consumer's; else "".
func (s *Subscriber) ConsumerARN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumerARN
}

// shardState is what Run knows of a shard it reads or will read.
type shardState struct {
	id      string
	parents []string // parents Run reads too, which must end first
	pos     Position
	rng     hashkey.Range
	started bool
	ended   bool
}

// shardDone is what a shard's goroutine reports when it returns.
type shardDone struct {
	id       string
	children []types.ChildShard
	err      error
}

// Run registers (or finds) the consumer, lists the shards, and reads them
// until ctx ends (it then returns nil), every shard read has ended and
// has no child to follow (nil), the Handler fails (a *HandlerError) or
// Kinesis fails in a way retrying cannot fix (the error, wrapped). It
// returns only after every goroutine it started has stopped. A Subscriber
// runs once; a second Run returns ErrClosed.
//
// Children are followed: when a shard ends, each child shard is read (from
// TRIM_HORIZON) once all its parents have ended, provided the Subscriber
// reads all of them. A merge child with a parent the Subscriber does not
// read (Config.ShardIDs names only one of the two) is not followed: its
// records would otherwise come before the other parent's last ones, and two
// Subscribers dividing the parents would both read it. The shard's last
// Batch names it in ChildShards, for the caller to decide.
func (s *Subscriber) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrClosed
	}
	streamARN := s.cfg.StreamARN
	var err error
	if streamARN == "" {
		if streamARN, err = StreamARN(ctx, s.client, s.cfg.StreamName); err != nil {
			return ctxOr(ctx, err)
		}
	}
	if s.ConsumerARN() == "" {
		arn, err := RegisterConsumer(ctx, s.client, streamARN, s.cfg.ConsumerName, s.cfg.Backoff, s.log)
		if err != nil {
			return ctxOr(ctx, err)
		}
		s.mu.Lock()
		s.consumerARN = arn
		s.mu.Unlock()
	}
	shards, err := listShards(ctx, s.client, streamARN)
	if err != nil {
		return ctxOr(ctx, err)
	}
	states, err := s.initialShards(shards)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan shardDone)
	var wg sync.WaitGroup
	running := 0
	startReady := func() {
		for _, st := range states {
			if st.started || !parentsEnded(st, states) {
				continue
			}
			st.started = true
			running++
			wg.Go(func() {
				children, err := s.readShard(runCtx, st)
				done <- shardDone{id: st.id, children: children, err: err}
			})
		}
	}
	startReady()
	var firstErr error
	for running > 0 {
		d := <-done
		running--
		if d.err != nil {
			if firstErr == nil && runCtx.Err() == nil {
				firstErr = d.err
				cancel()
			}
			continue
		}
		if runCtx.Err() != nil {
			continue
		}
		states[d.id].ended = true
		s.follow(states, d.id, d.children)
		startReady()
	}
	wg.Wait()
	return firstErr
}

// ctxOr returns nil when ctx ended (Run's clean stop), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// initialShards picks the shards to read from the listing.
func (s *Subscriber) initialShards(shards []types.Shard) (map[string]*shardState, error) {
	byID := make(map[string]types.Shard, len(shards))
	for _, sh := range shards {
		byID[aws.ToString(sh.ShardId)] = sh
	}
	states := map[string]*shardState{}
	add := func(sh types.Shard) {
		id := aws.ToString(sh.ShardId)
		pos := s.cfg.StartingPosition
		if p, ok := s.cfg.ShardPositions[id]; ok {
			pos = p
		}
		states[id] = &shardState{id: id, pos: pos, rng: hashRange(sh.HashKeyRange)}
	}
	switch {
	case s.cfg.ShardIDs != nil:
		for _, id := range s.cfg.ShardIDs {
			sh, ok := byID[id]
			if !ok {
				return nil, fmt.Errorf("fanout: shard %s is not in the stream", id)
			}
			add(sh)
		}
	case s.cfg.StartingPosition.kind() == types.ShardIteratorTypeLatest:
		for _, sh := range shards {
			if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
				add(sh)
			}
		}
	default:
		for _, sh := range shards {
			add(sh)
		}
	}
	for id, st := range states {
		sh := byID[id]
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if _, ok := states[aws.ToString(p)]; ok {
				st.parents = append(st.parents, aws.ToString(p))
			}
		}
	}
	return states, nil
}

// follow adds the children of the shard that ended.
func (s *Subscriber) follow(states map[string]*shardState, ended string, children []types.ChildShard) {
	for _, c := range children {
		id := aws.ToString(c.ShardId)
		if _, ok := states[id]; ok {
			continue // listed at start, or added by its other parent
		}
		var missing []string
		for _, p := range c.ParentShards {
			if _, ok := states[p]; !ok {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			s.log.Info("child shard not followed: the subscriber does not read all its parents",
				zap.String("shard_id", id), zap.Strings("other_parents", missing))
			continue
		}
		states[id] = &shardState{id: id, parents: slices.Clone(c.ParentShards), pos: TrimHorizon(), rng: hashRange(c.HashKeyRange)}
		s.log.Debug("following child shard", zap.String("shard_id", id), zap.String("parent", ended))
	}
}

func parentsEnded(st *shardState, states map[string]*shardState) bool {
	for _, p := range st.parents {
		if ps, ok := states[p]; ok && !ps.ended {
			return false
		}
	}
	return true
}

// readShard runs SubscribeShard for one shard, converting events to
// batches.
func (s *Subscriber) readShard(ctx context.Context, st *shardState) ([]types.ChildShard, error) {
	log := s.log.With(zap.String("shard_id", st.id))
	m := s.cfg.Metrics
	children, err := SubscribeShard(ctx, s.client, ShardSubscription{
		ConsumerARN: s.ConsumerARN(), ShardID: st.id, Position: st.pos, Options: s.cfg.Options,
		Handler: func(ctx context.Context, ev Event) error {
			recs, dropped := toRecords(ev.Records, s.cfg.Deaggregate, st.rng)
			if dropped > 0 {
				m.RecordsDropped(st.id, dropped)
				log.Debug("user records outside the shard's hash key range dropped", zap.Int("records", dropped))
			}
			if len(recs) == 0 && !ev.ShardEnded() && !s.cfg.DeliverEmptyBatches {
				return nil
			}
			began := time.Now()
			err := s.cfg.Handler(ctx, Batch{
				ShardID: st.id, Records: recs, ContinuationSequenceNumber: ev.ContinuationSequenceNumber,
				MillisBehindLatest: ev.MillisBehindLatest, ChildShards: ev.ChildShards,
			})
			m.HandlerCall(st.id, time.Since(began), err)
			if err == nil && len(recs) > 0 {
				m.RecordsProcessed(st.id, len(recs))
				m.DataBytesProcessed(st.id, dataBytes(recs))
			}
			return err
		},
	})
	if err != nil && ctx.Err() != nil {
		return nil, nil // stopping
	}
	if err == nil {
		log.Info("shard ended", zap.Int("children", len(children)))
	}
	return children, err
}

// listShards lists every shard of the stream.
func listShards(ctx context.Context, client KinesisAPI, streamARN string) ([]types.Shard, error) {
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamARN: aws.String(streamARN)}
	for {
		page, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("fanout: list shards: %w", err)
		}
		out = append(out, page.Shards...)
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}
