package producer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// KinesisAPI is the part of the Kinesis API the producer uses. The
// aws-sdk-go-v2 *kinesis.Client satisfies it, so the producer runs
// unchanged against AWS and against shoal.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Producer puts records to one Kinesis stream in the background: it
// predicts each record's shard, aggregates and batches per shard, limits
// its rate per shard, and retries until each record is stored or expires.
// Create one with New and stop it with Close. A Producer is safe for
// concurrent use.
type Producer struct {
	cfg    Config
	client KinesisAPI
	log    *zap.Logger
	m      Metrics
	start  time.Time // origin of the monotonic mono() clock

	closed  atomic.Bool
	closing chan struct{} // closed when Close begins: wakes blocked Puts
	abortCh chan struct{} // closed when Close gives up draining
	stopCh  chan struct{} // closed when background goroutines must stop
	ctx     context.Context
	cancel  context.CancelFunc // cancels ctx, the lifecycle context of every call

	closeOnce sync.Once
	closeErr  error
	closeDone chan struct{}

	// Back-pressure: records and bytes put but not yet delivered.
	bufRecords atomic.Int64
	bufBytes   atomic.Int64
	waiters    atomic.Int64
	spaceMu    sync.Mutex    // guards spaceCh
	spaceCh    chan struct{} // closed and replaced when space is freed while someone waits

	genMu sync.Mutex // guards generation.prev links
	gen   atomic.Pointer[generation]

	flushing atomic.Int32 // >0 while Flush or Close wants everything sent now

	// Shard map.
	curMap    atomic.Pointer[shardMap]
	mapMu     sync.Mutex  // guards retiring, pipeline.successors; taken before any pipeline.mu
	retiring  []*pipeline // retired pipelines that have not handed their records over yet
	refreshCh chan struct{}
	blockedAt atomic.Int64          // mono time of the last ResourceNotFound; 0 if none
	mapErr    atomic.Pointer[error] // the last refresh error, nil after a success

	sendq *sendQueue
	cbq   *callbackQueue

	hashes *hashCache // partition key -> hash key

	pipelines  sync.WaitGroup
	refresherW sync.WaitGroup
	senders    sync.WaitGroup
	callbacks  sync.WaitGroup
}

// testHooks are unexported options for tests.
type testHooks struct {
	// initialMap, if set, is used as the shard map from the start, and no
	// ListShards is made until something asks for a refresh.
	initialMap []shardInfo
}

// New returns a Producer for the stream that cfg names, sending through
// client. It validates cfg (returning every problem at once), and starts
// the background goroutines; the shard map is loaded in the background, and
// records put before it arrives wait for it (within RecordTTL). New makes
// no call itself.
func New(client KinesisAPI, cfg Config) (*Producer, error) {
	return newProducer(client, cfg, testHooks{})
}

func newProducer(client KinesisAPI, cfg Config, hooks testHooks) (*Producer, error) {
	if client == nil {
		return nil, fmt.Errorf("producer: nil client")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		cfg:       cfg,
		client:    client,
		log:       cfg.Logger.With(zap.String("stream", streamLabel(cfg))),
		m:         cfg.Metrics,
		start:     time.Now(),
		hashes:    newHashCache(),
		closing:   make(chan struct{}),
		abortCh:   make(chan struct{}),
		stopCh:    make(chan struct{}),
		closeDone: make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		spaceCh:   make(chan struct{}),
		refreshCh: make(chan struct{}, 1),
		sendq:     newSendQueue(),
		cbq:       newCallbackQueue(),
	}
	p.gen.Store(newGeneration(nil))

	// Start with the holding map: one pipeline that keeps records until the
	// first real map arrives and then hands them over in order.
	hold := newPipeline(p, nil)
	p.curMap.Store(&shardMap{fetched: -1, routes: []route{{end: hashkey.Max, pl: hold}}, holding: true})
	p.pipelines.Add(1)
	go func() { defer p.pipelines.Done(); hold.run() }()
	initial := true
	if hooks.initialMap != nil {
		if err := p.applyMap(hooks.initialMap, 0); err != nil {
			cancel()
			return nil, err
		}
		initial = false
	}
	for range cfg.MaxConnections {
		p.senders.Go(p.sender)
	}
	if cfg.OnResult != nil {
		p.callbacks.Go(p.runCallbacks)
	}
	p.refresherW.Go(func() { p.refresher(initial) })
	return p, nil
}

func streamLabel(cfg Config) string {
	if cfg.StreamName != "" {
		return cfg.StreamName
	}
	return cfg.StreamARN
}

// mono returns t as nanoseconds on the producer's monotonic clock.
func (p *Producer) mono(t time.Time) int64 { return int64(t.Sub(p.start)) }

// Put queues a record with the given partition key and data and returns at
// once with its Pending, unless the buffer is full (MaxBufferedRecords or
// MaxBufferedBytes): then Put blocks until there is room or ctx ends. ctx
// bounds only that wait; once queued, the record's fate is governed by
// RecordTTL. The producer keeps data, without copying it, until the
// record's result is delivered: do not modify it before then.
//
// Put returns ErrInvalidRecord or ErrRecordTooLarge (wrapped) for a record
// Kinesis would reject, ErrClosed after Close, and ctx.Err() if ctx ended
// while waiting for room. It never returns a Pending together with an
// error.
func (p *Producer) Put(ctx context.Context, partitionKey string, data []byte) (*Pending, error) {
	return p.put(ctx, UserRecord{PartitionKey: partitionKey, Data: data}, true)
}

// PutRecord is Put for a UserRecord, which may carry an explicit hash key.
func (p *Producer) PutRecord(ctx context.Context, r UserRecord) (*Pending, error) {
	return p.put(ctx, r, true)
}

// TryPut is Put that fails with ErrBufferFull instead of waiting for room.
func (p *Producer) TryPut(partitionKey string, data []byte) (*Pending, error) {
	return p.put(context.Background(), UserRecord{PartitionKey: partitionKey, Data: data}, false)
}

// TryPutRecord is TryPut for a UserRecord.
func (p *Producer) TryPutRecord(r UserRecord) (*Pending, error) {
	return p.put(context.Background(), r, false)
}

// PutSync puts a record and waits for its result. ctx bounds both the wait
// for room and the wait for the result; if ctx ends first, the record may
// still be stored later.
func (p *Producer) PutSync(ctx context.Context, partitionKey string, data []byte) (Result, error) {
	pd, err := p.Put(ctx, partitionKey, data)
	if err != nil {
		return Result{Record: UserRecord{PartitionKey: partitionKey, Data: data}, Err: err}, err
	}
	return pd.Wait(ctx)
}

// BufferedRecords returns the number of records put whose result has not
// been delivered yet.
func (p *Producer) BufferedRecords() int { return int(p.bufRecords.Load()) }

// BufferedBytes returns the data plus partition key bytes of those records.
func (p *Producer) BufferedBytes() int64 { return p.bufBytes.Load() }

// check validates a record and returns its size and hash key.
func (p *Producer) check(r UserRecord) (int, hashkey.Key, error) {
	pk := r.PartitionKey
	if pk == "" {
		return 0, hashkey.Key{}, fmt.Errorf("%w: empty partition key", ErrInvalidRecord)
	}
	if len(pk) > MaxPartitionKeyLen && utf8.RuneCountInString(pk) > MaxPartitionKeyLen {
		return 0, hashkey.Key{}, fmt.Errorf("%w: partition key has %d characters, the limit is %d",
			ErrInvalidRecord, utf8.RuneCountInString(pk), MaxPartitionKeyLen)
	}
	size := len(pk) + len(r.Data)
	if size > p.cfg.MaxRecordBytes {
		return 0, hashkey.Key{}, fmt.Errorf("%w: %d bytes of data and partition key, the limit is %d",
			ErrRecordTooLarge, size, p.cfg.MaxRecordBytes)
	}
	if r.ExplicitHashKey != "" {
		k, err := hashkey.Parse(r.ExplicitHashKey)
		if err != nil {
			return 0, hashkey.Key{}, fmt.Errorf("%w: explicit hash key %q is not a decimal integer in [0, 2^128-1]",
				ErrInvalidRecord, r.ExplicitHashKey)
		}
		return size, k, nil
	}
	return size, p.hashes.key(pk), nil
}

func (p *Producer) put(ctx context.Context, r UserRecord, block bool) (*Pending, error) {
	size, hash, err := p.check(r)
	if err != nil {
		return nil, err
	}
	if p.closed.Load() {
		return nil, ErrClosed
	}
	g, err := p.admit(ctx, size, block)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	pd := &Pending{rec: r, hash: hash, size: int32(size), deadline: now.Add(p.cfg.RecordTTL), gen: g}
	for {
		pl := p.curMap.Load().lookup(hash)
		pl.mu.Lock()
		if pl.retired {
			// The map that retired pl is already published: look again.
			pl.mu.Unlock()
			continue
		}
		if pl.exited {
			pl.mu.Unlock()
			p.unadmit(g, size)
			return nil, ErrClosed
		}
		pl.inbox = append(pl.inbox, pd)
		first := len(pl.inbox) == 1
		pl.mu.Unlock()
		if first {
			pl.signal()
		}
		return pd, nil
	}
}

// admit reserves room for one record of size bytes, waiting for it if block
// is set, and returns the generation the record belongs to.
func (p *Producer) admit(ctx context.Context, size int, block bool) (*generation, error) {
	maxR, maxB := int64(p.cfg.MaxBufferedRecords), p.cfg.MaxBufferedBytes
	fits := func() bool {
		return p.bufRecords.Load() < maxR && p.bufBytes.Load()+int64(size) <= maxB
	}
	for {
		if fits() {
			g := p.gen.Load()
			g.n.Add(1)
			nr := p.bufRecords.Add(1)
			nb := p.bufBytes.Add(int64(size))
			// Checked after counting, so that Close, which sets closed
			// before it drains, either sees this record counted or this
			// Put sees closed.
			if p.closed.Load() {
				p.unadmit(g, size)
				return nil, ErrClosed
			}
			if nr <= maxR && nb <= maxB {
				return g, nil
			}
			// Another Put took the room first. No need to wake anyone: a
			// Put that failed because of our brief reservation checks
			// again after registering as a waiter, or is woken by the next
			// release.
			p.unadmit(g, size)
		}
		if !block {
			return nil, ErrBufferFull
		}
		p.spaceMu.Lock()
		ch := p.spaceCh
		p.waiters.Add(1)
		p.spaceMu.Unlock()
		// Check again now that releasers see us waiting.
		if fits() {
			p.waiters.Add(-1)
			continue
		}
		select {
		case <-ch:
			p.waiters.Add(-1)
		case <-ctx.Done():
			p.waiters.Add(-1)
			return nil, ctx.Err()
		case <-p.closing:
			p.waiters.Add(-1)
			return nil, ErrClosed
		}
	}
}

// unadmit returns room taken by admit for a record that was not queued.
func (p *Producer) unadmit(g *generation, size int) {
	p.bufRecords.Add(-1)
	p.bufBytes.Add(-int64(size))
	g.release(1)
}

func (p *Producer) wakeWaiters() {
	if p.waiters.Load() > 0 {
		p.spaceMu.Lock()
		close(p.spaceCh)
		p.spaceCh = make(chan struct{})
		p.spaceMu.Unlock()
	}
}

// deliver hands resolved records to OnResult, or releases them at once.
func (p *Producer) deliver(rs []*Pending) {
	if len(rs) == 0 {
		return
	}
	if p.cfg.OnResult != nil {
		p.cbq.push(rs)
		return
	}
	p.release(rs)
}

// release frees the buffer room of delivered records and counts them out
// of their generations.
func (p *Producer) release(rs []*Pending) {
	// Free the buffer room before counting the records out of their
	// generations: Flush returns once its generations are empty, and by
	// then BufferedRecords and BufferedBytes must no longer count them.
	var bytes int64
	for _, r := range rs {
		bytes += int64(r.size)
	}
	p.bufRecords.Add(-int64(len(rs)))
	p.bufBytes.Add(-bytes)
	var g *generation
	var n int64
	for _, r := range rs {
		if r.gen != g {
			if g != nil {
				g.release(n)
			}
			g, n = r.gen, 0
		}
		n++
	}
	if g != nil {
		g.release(n)
	}
	p.wakeWaiters()
}

// Flush sends every buffered record without waiting for MaxBufferedTime and
// blocks until every record whose Put returned before Flush was called has
// its result delivered (OnResult included), or ctx ends (then it returns
// ctx.Err(); the records stay queued). Records put during Flush may or may
// not be waited for.
func (p *Producer) Flush(ctx context.Context) error {
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.wakeAll()
	return p.drain(ctx)
}

// Close stops the producer. Put fails with ErrClosed from the moment Close
// is called. Close then sends every buffered record, as Flush does, and
// waits until each has its result. If ctx ends first, Close gives up: it
// cancels the calls in flight, and every record not yet stored gets
// ErrClosed as its result (a record whose call was cancelled may still have
// been stored). Either way, when Close returns every record put has had its
// result delivered and every goroutine of the producer has stopped. Close
// returns nil if everything was drained, or an error wrapping ctx.Err().
// Calling Close again waits for the first call and returns its result.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		defer close(p.closeDone)
		p.closed.Store(true)
		close(p.closing)
		p.flushing.Add(1)
		p.wakeAll()
		err := p.drain(ctx)
		if err != nil {
			n := p.bufRecords.Load()
			p.log.Warn("close: abandoning buffered records", zap.Int64("records", n), zap.Error(err))
			p.closeErr = fmt.Errorf("producer close: %d records not drained: %w", n, err)
			close(p.abortCh)
			p.wakeAll()
		}
		// Nothing is in flight any more unless Close gave up, in which case
		// the calls must end: either way cancel every call, including a
		// ListShards the refresher may be waiting on.
		p.cancel()
		close(p.stopCh)
		p.refresherW.Wait()
		p.wakeAll()
		p.pipelines.Wait()
		p.sendq.close()
		p.senders.Wait()
		p.cbq.close()
		p.callbacks.Wait()
	})
	<-p.closeDone
	return p.closeErr
}

// wakeAll signals every pipeline of the current map and every retiring one.
func (p *Producer) wakeAll() {
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	for _, r := range p.curMap.Load().routes {
		r.pl.signal()
	}
	for _, pl := range p.retiring {
		pl.signal()
	}
}

// aborting reports whether Close gave up draining.
func (p *Producer) aborting() bool {
	select {
	case <-p.abortCh:
		return true
	default:
		return false
	}
}
