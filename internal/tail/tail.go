package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// API is the part of the Kinesis client that Run uses; *kinesis.Client
// implements it.
type API interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Defaults of the Config fields.
const (
	DefaultPollInterval   = time.Second
	DefaultCallInterval   = 200 * time.Millisecond // 5 GetRecords calls per second and shard, the Kinesis limit
	DefaultRelistInterval = 10 * time.Second
	DefaultMaxBackoff     = 10 * time.Second
	DefaultLimit          = 10000
)

// Config configures Run. Client, Stream and Out are required; every other
// zero field takes the default its comment gives.
type Config struct {
	// Client makes the Kinesis calls (a *kinesis.Client).
	Client API
	// Stream is the stream's name, or its ARN ("arn:...").
	Stream string
	// From is where reading starts; the zero value is Latest.
	From From
	// Shard, if not "", restricts the tail to this shard and its
	// descendants (a merged child of it and a shard outside waits only for
	// the parent that is followed). With From.Kind AtSequence, the
	// sequence number must be in this shard; without Shard, the shard is
	// found from ListShards' sequence number ranges.
	Shard string
	// Deaggregate prints the user records of KPL aggregates (package
	// aggregation) instead of the aggregates.
	Deaggregate bool
	// Format is how records are printed; the zero value is Text.
	Format Format
	// Out receives the records. Each GetRecords answer is written with one
	// Write call (several with a Write of more than 1 MiB); writes are
	// serialized. A write error ends Run.
	Out io.Writer
	// Log receives warnings (retried errors, renewed iterators, corrupt
	// aggregates), one line each. Nil discards them.
	Log io.Writer
	// PollInterval is the wait before the next GetRecords call on a shard
	// after one that found it caught up (MillisBehindLatest 0). Zero means
	// DefaultPollInterval (1s).
	PollInterval time.Duration
	// CallInterval is the least time between the starts of two GetRecords
	// calls on one shard, however far behind it is. Zero means
	// DefaultCallInterval (200ms, Kinesis's 5 calls/s per shard); negative
	// means none.
	CallInterval time.Duration
	// RelistInterval is the period of the ListShards calls that look for
	// new shards (the end of a shard's reading also reports its children).
	// Zero means DefaultRelistInterval (10s).
	RelistInterval time.Duration
	// MaxBackoff bounds the wait after a throttled (ProvisionedThroughput-
	// Exceeded) or failed retryable call; the wait starts at
	// max(CallInterval, 100ms) and doubles with each consecutive failure.
	// Zero means DefaultMaxBackoff (10s).
	MaxBackoff time.Duration
	// Limit is GetRecords' Limit. Zero means DefaultLimit (10,000).
	Limit int32
}

func (c Config) withDefaults() (Config, error) {
	var errs []string
	if c.Client == nil {
		errs = append(errs, "no Client")
	}
	if c.Stream == "" {
		errs = append(errs, "no Stream")
	}
	if c.Out == nil {
		errs = append(errs, "no Out")
	}
	if c.From.Kind < Latest || c.From.Kind > AtSequence {
		errs = append(errs, fmt.Sprintf("unknown %v", c.From))
	}
	if c.From.Kind == AtSequence && !isDigits(c.From.Sequence) {
		errs = append(errs, fmt.Sprintf("From.Sequence %q is not a sequence number", c.From.Sequence))
	}
	if c.Format < Text || c.Format > Hex {
		errs = append(errs, fmt.Sprintf("unknown %v", c.Format))
	}
	if c.PollInterval < 0 || c.RelistInterval < 0 || c.MaxBackoff < 0 || c.Limit < 0 {
		errs = append(errs, "negative PollInterval, RelistInterval, MaxBackoff or Limit")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("tail: config: %s", strings.Join(errs, "; "))
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	switch {
	case c.CallInterval == 0:
		c.CallInterval = DefaultCallInterval
	case c.CallInterval < 0:
		c.CallInterval = 0
	}
	if c.RelistInterval == 0 {
		c.RelistInterval = DefaultRelistInterval
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	return c, nil
}

// Run follows the stream of cfg and prints its records to cfg.Out until
// ctx is done, then returns nil once every call it made has ended: being
// stopped is how a tail ends. It returns an error, before that, for a bad
// cfg, a stream or shard that does not exist, a write to Out that fails,
// or a call that fails with an error that is neither a throttle nor
// retryable (those are retried, with backoff, without end).
//
// Every record is printed once, in order within its shard; a shard is read
// only after each of its followed parents was read to its end. See the
// package documentation.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	t := &tailer{cfg: cfg, shards: map[string]*shardState{}, root: cfg.Shard}
	if err := t.run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// status is where a followed shard is.
type status int

const (
	pending status = iota // waiting for its parents
	reading
	done // read to its end, or not to be read (LATEST: closed at the start)
)

// shardState is a shard that Run follows.
type shardState struct {
	id      string
	parents []string // ParentShardId, AdjacentParentShardId (when set)
	start   startSpec
	status  status
	// unlisted: a parent was unknown when ChildShards reported the shard;
	// it waits for a ListShards that may show that parent.
	unlisted bool
}

// tailer is one Run. Its shards map and root are the coordinator's own
// (one goroutine); the readers share only cfg, the output and the log.
type tailer struct {
	cfg    Config
	root   string // the followed subtree's root, "" for every shard
	shards map[string]*shardState

	outMu sync.Mutex // serializes writes to cfg.Out
	logMu sync.Mutex // serializes writes to cfg.Log
}

// result is a reader's end: the children its shard reported, or an error.
type result struct {
	id       string
	children []types.ChildShard
	err      error
}

func (t *tailer) run(ctx context.Context) error {
	listed, err := t.listShards(ctx)
	if err != nil {
		return err
	}
	if f := t.cfg.From; f.Kind == AtSequence && t.root == "" {
		if t.root, err = t.locate(ctx, listed, f.Sequence); err != nil {
			return err
		}
	}
	if t.root != "" && !slices.ContainsFunc(listed, func(s types.Shard) bool { return aws.ToString(s.ShardId) == t.root }) {
		return fmt.Errorf("tail: stream %s has no shard %s", t.cfg.Stream, t.root)
	}
	t.add(listed, true)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make(chan result)
	relist := time.NewTicker(t.cfg.RelistInterval)
	defer relist.Stop()
	for {
		t.startReady(ctx, &wg, results)
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			if r.err != nil {
				return r.err
			}
			if err := t.finished(ctx, r.id, r.children); err != nil {
				return err
			}
		case <-relist.C:
			if err := t.relist(ctx); err != nil {
				return err
			}
		}
	}
}

// listShards returns every shard of the stream (ListShards, all pages).
func (t *tailer) listShards(ctx context.Context) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{}
	t.setStream(&in.StreamName, &in.StreamARN)
	for {
		out, err := t.cfg.Client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("tail: ListShards %s: %w", t.cfg.Stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil || *out.NextToken == "" {
			return shards, nil
		}
		// The token names the stream; the API refuses both together.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// relist adds the shards that ListShards reports and Run does not follow
// yet. A failure other than a missing stream is only a warning: the next
// period tries again.
func (t *tailer) relist(ctx context.Context) error {
	listed, err := t.listShards(ctx)
	if err != nil {
		if _, ok := errors.AsType[*types.ResourceNotFoundException](err); ok {
			return err
		}
		if ctx.Err() == nil {
			t.warnf("%v (retried in %v)", err, t.cfg.RelistInterval)
		}
		return nil
	}
	t.add(listed, false)
	for _, s := range t.shards {
		s.unlisted = false // a parent not listed now is gone, or out of scope
	}
	return nil
}

// add follows the shards of listed that are in scope (every shard, or the
// root and its descendants) and not followed yet. initial says whether
// listed is the listing made at the start.
func (t *tailer) add(listed []types.Shard, initial bool) {
	for {
		added := false
		for _, s := range listed {
			id := aws.ToString(s.ShardId)
			if _, ok := t.shards[id]; ok || id == "" {
				continue
			}
			var parents []string
			for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p != nil && *p != "" {
					parents = append(parents, *p)
				}
			}
			if !t.inScope(id, parents) {
				continue
			}
			closed := s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
			t.follow(id, parents, initial, closed)
			added = true
		}
		// A child may come before its parent in listed: go again until
		// nothing is added.
		if !added || t.root == "" {
			return
		}
	}
}

// inScope reports whether a shard with these parents is to be followed.
func (t *tailer) inScope(id string, parents []string) bool {
	if t.root == "" || id == t.root {
		return true
	}
	for _, p := range parents {
		if _, ok := t.shards[p]; ok {
			return true
		}
	}
	return false
}

// follow starts following a shard: where its reading starts depends on
// From and on whether the shard existed at the start (initial).
func (t *tailer) follow(id string, parents []string, initial, closed bool) {
	s := &shardState{id: id, parents: parents, start: startSpec{typ: types.ShardIteratorTypeTrimHorizon}}
	switch f := t.cfg.From; f.Kind {
	case AtTimestamp:
		s.start = startSpec{typ: types.ShardIteratorTypeAtTimestamp, ts: f.Time}
	case AtSequence:
		if id == t.root {
			s.start = startSpec{typ: types.ShardIteratorTypeAtSequenceNumber, seq: f.Sequence}
		}
	case Latest:
		switch {
		case initial && closed:
			s.status = done
		case initial:
			s.start = startSpec{typ: types.ShardIteratorTypeLatest}
		}
	}
	t.shards[id] = s
}

// finished records the end of a shard's reading and follows the children
// it reported. A child with a parent Run does not know (when it follows
// every shard: a parent born of a reshard not seen yet) waits for a
// ListShards, made at once (and retried every RelistInterval if it fails),
// so that it does not start before that parent; a parent still unknown
// then is gone (past the retention period) and is not waited for.
func (t *tailer) finished(ctx context.Context, id string, children []types.ChildShard) error {
	t.shards[id].status = done
	unknown := false
	for _, c := range children {
		cid := aws.ToString(c.ShardId)
		if _, ok := t.shards[cid]; ok || cid == "" {
			continue
		}
		parents := slices.DeleteFunc(slices.Clone(c.ParentShards), func(p string) bool { return p == "" })
		t.follow(cid, parents, false, false)
		for _, p := range parents {
			if _, ok := t.shards[p]; !ok && t.root == "" {
				t.shards[cid].unlisted = true
				unknown = true
			}
		}
	}
	if unknown {
		return t.relist(ctx)
	}
	return nil
}

// startReady starts a reader for every pending shard whose followed
// parents are done, in shard id order.
func (t *tailer) startReady(ctx context.Context, wg *sync.WaitGroup, results chan<- result) {
	var ready []*shardState
	for _, s := range t.shards {
		if s.status == pending && t.parentsDone(s) {
			ready = append(ready, s)
		}
	}
	slices.SortFunc(ready, func(a, b *shardState) int { return strings.Compare(a.id, b.id) })
	for _, s := range ready {
		s.status = reading
		r := &reader{t: t, id: s.id, start: s.start}
		wg.Go(func() {
			children, err := r.run(ctx)
			select {
			case results <- result{id: s.id, children: children, err: err}:
			case <-ctx.Done():
			}
		})
	}
}

func (t *tailer) parentsDone(s *shardState) bool {
	if s.unlisted {
		return false
	}
	for _, p := range s.parents {
		if ps, ok := t.shards[p]; ok && ps.status != done {
			return false
		}
	}
	return true
}

// setStream sets a request's StreamName or StreamARN from cfg.Stream.
func (t *tailer) setStream(name, arn **string) {
	if strings.HasPrefix(t.cfg.Stream, "arn:") {
		*arn = aws.String(t.cfg.Stream)
	} else {
		*name = aws.String(t.cfg.Stream)
	}
}

// write writes b to cfg.Out, serialized with the other readers' writes.
func (t *tailer) write(b []byte) error {
	t.outMu.Lock()
	defer t.outMu.Unlock()
	if _, err := t.cfg.Out.Write(b); err != nil {
		return fmt.Errorf("tail: write: %w", err)
	}
	return nil
}

// warnf writes one line to cfg.Log.
func (t *tailer) warnf(format string, args ...any) {
	line := "tail: " + fmt.Sprintf(format, args...) + "\n"
	t.logMu.Lock()
	defer t.logMu.Unlock()
	_, _ = io.WriteString(t.cfg.Log, line)
}
