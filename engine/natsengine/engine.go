package natsengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// MinServerVersion is the oldest nats-server Open accepts: the fixes that
// followed Jepsen's analysis of 2.12.1 (which lost acknowledged writes in
// faults) are in 2.12.3.
const MinServerVersion = "2.12.3"

// minServerVersion is the version Open checks; tests raise it.
var minServerVersion = MinServerVersion

// Defaults of Config fields left zero.
const (
	DefaultReplicas       = 3
	DefaultPrefix         = "SHOAL"
	DefaultRequestTimeout = 5 * time.Second
	DefaultPollInterval   = 250 * time.Millisecond
)

// RecommendedMaxPayload is the max_payload the NATS servers should have:
// a PutRecords batch of 5 MiB, encoded, with headers, fits in one message.
const RecommendedMaxPayload = 8 << 20

// Config configures an Engine.
type Config struct {
	// URL is one or more nats:// URLs, comma-separated.
	URL string
	// Options are appended after natsengine's own connection options
	// (credentials, TLS, a client name...). Handlers for disconnects,
	// reconnects and close that they set are kept: the engine chains its
	// own in front of them.
	Options []nats.Option
	// Replicas is the replica count of every JetStream stream and of the
	// catalog bucket; 0 means DefaultReplicas.
	Replicas int
	// Prefix names the JetStream streams, the catalog bucket and the
	// subjects; "" means DefaultPrefix. Only [A-Za-z0-9_]. Two shoal
	// clusters sharing a NATS account need prefixes that differ other than
	// in case (subjects use the prefix in lower case).
	Prefix string
	// RequestTimeout bounds one JetStream API call or publish; 0 means
	// DefaultRequestTimeout. Operations retry failed calls for a few
	// timeouts more (see the package documentation).
	RequestTimeout time.Duration
	// PollInterval is how often the engine checks the logs that readers
	// wait on, in case their change notices were lost; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Now is the clock of the arrival times stamped in batches; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives warnings; nil discards them.
	Logger *zap.Logger
}

// Engine is the NATS JetStream engine: an engine.Engine and
// engine.CatalogWatcher whose logs are JetStream streams and whose catalog
// is a KV bucket. Several Engines, in one process or many, may share one
// Prefix on one NATS cluster. Its zero value is not usable; call Open.
type Engine struct {
	cfg     Config
	lg      *zap.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	cat     *catalog
	subjPre string // lower-case Prefix, the first token of our subjects
	idBase  string // random prefix of this Engine's Nats-Msg-Id values
	idSeq   atomic.Uint64

	closed   atomic.Bool     // set under mu by Close; read without it
	ctx      context.Context // canceled by Close; bounds the engine's own requests
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the poller and the catalog watchers
	connGone chan struct{}  // closed by the connection's closed handler

	// mu guards logs and reconnected. It is held briefly, never while
	// taking another lock.
	mu          sync.Mutex
	logs        map[engine.LogID]*logState // every log handed out, not deleted
	reconnected chan struct{}              // closed and replaced at each reconnect

	// fallbacks counts messages read through the leader because the
	// replica that answered a Direct Get lagged (a diagnostic).
	fallbacks atomic.Uint64
	// resends counts publishes sent again after an ambiguous failure (a
	// diagnostic).
	resends atomic.Uint64

	replyPre string        // reply subjects are replyPre + token
	replySeq atomic.Uint64 // token source
	replyMu  sync.Mutex    // guards replies; taken alone
	replies  map[string]chan *nats.Msg
}

var (
	_ engine.Engine         = (*Engine)(nil)
	_ engine.CatalogWatcher = (*Engine)(nil)
)

// Open connects to NATS, checks the server's version and JetStream, and
// creates (or binds) the catalog bucket. It fails, without retrying the
// connection, when NATS is unreachable: the caller retries. JetStream API
// calls are retried while the cluster elects leaders, within ctx.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = DefaultReplicas
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("natsengine: open: replicas %d (want 1 to 5)", cfg.Replicas)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("natsengine: open: prefix %q: only A-Z, a-z, 0-9 and _ are allowed", cfg.Prefix)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("natsengine: open: %w", err)
	}
	e := &Engine{
		cfg:         cfg,
		lg:          cfg.Logger,
		subjPre:     strings.ToLower(cfg.Prefix),
		idBase:      hex.EncodeToString(rnd[:]),
		logs:        map[engine.LogID]*logState{},
		reconnected: make(chan struct{}),
		replies:     map[string]chan *nats.Msg{},
		connGone:    make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	opts := []nats.Option{
		nats.Name("shoal natsengine"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(cfg.RequestTimeout),
		// nats.go's default handlers print to stderr; the engine logs.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			e.lg.Warn("NATS asynchronous error", zap.String("subject", subject), zap.Error(err))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				e.lg.Warn("disconnected from NATS", zap.Error(err))
			}
		}),
	}
	opts = append(opts, cfg.Options...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		e.cancel()
		return nil, fmt.Errorf("natsengine: connect: %w", err)
	}
	e.nc = nc
	if err := e.setup(ctx); err != nil {
		e.cancel()
		nc.Close()
		return nil, fmt.Errorf("natsengine: open: %w", err)
	}
	e.wg.Add(1)
	go e.poll()
	return e, nil
}

// setup checks the server and creates what the engine needs on the
// connection: its handlers, the catalog bucket and its subscriptions.
func (e *Engine) setup(ctx context.Context) error {
	nc := e.nc
	if !nc.IsConnected() { // nats.RetryOnFailedConnect in Options
		return errors.New("not connected to NATS")
	}
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, minServerVersion) {
		return fmt.Errorf("nats-server %s at %s is older than %s, the oldest this engine accepts (it has the fixes that followed Jepsen's report of lost acknowledged writes); upgrade the NATS servers",
			v, nc.ConnectedUrlRedacted(), minServerVersion)
	}
	if !nc.HeadersSupported() {
		return errors.New("the NATS server does not support message headers")
	}
	if mp := nc.MaxPayload(); mp < RecommendedMaxPayload {
		e.lg.Warn("NATS max_payload is below the recommended 8MB: PutRecords batches larger than it fail",
			zap.Int64("max_payload", mp))
	}
	prevClosed, prevRe := nc.Opts.ClosedCB, nc.Opts.ReconnectedCB
	nc.SetClosedHandler(func(c *nats.Conn) {
		close(e.connGone)
		if prevClosed != nil {
			prevClosed(c)
		}
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		e.onReconnect(c)
		if prevRe != nil {
			prevRe(c)
		}
	})
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	e.js = js
	if err := e.retry(ctx, func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	}); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("JetStream is not enabled on the NATS server or for this account: %w", err)
		}
		return fmt.Errorf("JetStream account info: %w", err)
	}
	e.replyPre = nc.NewInbox() + "."
	rsub, err := nc.Subscribe(e.replyPre+"*", e.onReply)
	if err != nil {
		return err
	}
	// The handler only hands messages on; never drop a reply for want of
	// buffer space (a dropped reply is a publish whose outcome is unknown).
	if err := rsub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if _, err := nc.Subscribe(e.subjPre+".n.>", e.onNotice); err != nil {
		return err
	}
	cat, err := openCatalog(ctx, e)
	if err != nil {
		return err
	}
	e.cat = cat
	return nil
}

// onReconnect wakes the catalog watchers (changes may have been missed)
// and checks the new server's version.
func (e *Engine) onReconnect(c *nats.Conn) {
	e.mu.Lock()
	close(e.reconnected)
	e.reconnected = make(chan struct{})
	e.mu.Unlock()
	if v := c.ConnectedServerVersion(); !versionAtLeast(v, minServerVersion) {
		e.lg.Error("reconnected to a nats-server older than the oldest this engine accepts; upgrade it",
			zap.String("version", v), zap.String("minimum", minServerVersion), zap.String("server", c.ConnectedUrlRedacted()))
	}
}

// reconnectedChan returns the channel closed at the next reconnect.
func (e *Engine) reconnectedChan() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reconnected
}

// Conn returns the engine's NATS connection, for diagnostics and tests.
func (e *Engine) Conn() *nats.Conn { return e.nc }

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() engine.Catalog { return e.cat }

func errClosed(op string) error { return fmt.Errorf("natsengine: %s: %w", op, engine.ErrClosed) }

// streamName is the JetStream stream of log id.
func (e *Engine) streamName(id engine.LogID) string {
	return e.cfg.Prefix + "_" + id.Stream + "_" + strconv.FormatUint(uint64(id.Shard), 10)
}

// dataSubject is the subject of log id's batches.
func (e *Engine) dataSubject(id engine.LogID) string {
	return e.subjPre + ".d." + id.Stream + "." + strconv.FormatUint(uint64(id.Shard), 10)
}

// noticeSubject is the subject of log id's change notices.
func (e *Engine) noticeSubject(id engine.LogID) string {
	return e.subjPre + ".n." + id.Stream + "." + strconv.FormatUint(uint64(id.Shard), 10)
}

// parseStreamName returns the log of a JetStream stream name, if it is one
// of this engine's.
func (e *Engine) parseStreamName(name string) (engine.LogID, bool) {
	rest, ok := strings.CutPrefix(name, e.cfg.Prefix+"_")
	if !ok {
		return engine.LogID{}, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return engine.LogID{}, false
	}
	n, err := strconv.ParseUint(rest[i+1:], 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != rest[i+1:] {
		return engine.LogID{}, false
	}
	id := engine.LogID{Stream: rest[:i], Shard: uint32(n)}
	if checkLogID(id) != nil {
		return engine.LogID{}, false
	}
	return id, true
}

// checkLogID rejects ids that cannot name a JetStream stream and a subject
// token: the stream id must be [A-Za-z0-9_-], 1 to 200 bytes.
func checkLogID(id engine.LogID) error {
	if id.Stream == "" || len(id.Stream) > 200 {
		return fmt.Errorf("natsengine: invalid log id %q: the stream id must be 1 to 200 bytes", id.String())
	}
	for i := 0; i < len(id.Stream); i++ {
		c := id.Stream[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("natsengine: invalid log id %q: the stream id may hold only A-Z, a-z, 0-9, _ and -", id.String())
		}
	}
	return nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// newMsgID returns a Nats-Msg-Id no other publish uses.
func (e *Engine) newMsgID() string {
	return e.idBase + "-" + strconv.FormatUint(e.idSeq.Add(1), 36)
}

// logStateFor returns the shared state of id, making it with mk if there is
// none. It fails after Close.
func (e *Engine) logStateFor(id engine.LogID, mk func() *logState) (*logState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, errClosed("open log " + id.String())
	}
	if ls := e.logs[id]; ls != nil {
		return ls, nil
	}
	ls := mk()
	e.logs[id] = ls
	return ls, nil
}

// lookup returns the state of id, or nil.
func (e *Engine) lookup(id engine.LogID) *logState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs[id]
}

// forget removes ls from the map of logs (after its deletion).
func (e *Engine) forget(ls *logState) {
	e.mu.Lock()
	if e.logs[ls.id] == ls {
		delete(e.logs, ls.id)
	}
	e.mu.Unlock()
}

// CreateLog creates the JetStream stream of a new log. It fails with
// ErrExists if the stream exists. Labels in ctx (engine.WithLabels) go into
// the stream's metadata.
func (e *Engine) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if e.closed.Load() {
		return nil, errClosed("create log " + id.String())
	}
	if err := checkLogID(id); err != nil {
		return nil, err
	}
	name := e.streamName(id)
	nonce := e.newMsgID()
	meta := map[string]string{
		metaLog:     id.String(),
		metaPrefix:  e.cfg.Prefix,
		metaCreator: nonce,
	}
	if l, ok := engine.LabelsFrom(ctx); ok {
		if l.StreamName != "" {
			meta[metaKinesisStream] = l.StreamName
		}
		if l.ShardID != "" {
			meta[metaKinesisShard] = l.ShardID
		}
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "shoal shard log " + id.String(),
		Subjects:    []string{e.dataSubject(id)},
		Storage:     jetstream.FileStorage,
		Replicas:    e.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxMsgSize:  -1,
		AllowDirect: true,
		DenyDelete:  true,
		Duplicates:  dupWindow,
		Metadata:    meta,
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		_, err := e.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Ours, from an attempt whose reply was lost, or another's?
			s, ierr := e.js.Stream(ctx, name)
			if ierr != nil {
				return ierr
			}
			if s.CachedInfo().Config.Metadata[metaCreator] == nonce {
				return nil
			}
			return fmt.Errorf("natsengine: create log %v: stream %s: %w", id, name, engine.ErrExists)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, engine.ErrExists) {
			return nil, err
		}
		return nil, fmt.Errorf("natsengine: create log %v: %w", id, err)
	}
	ls, err := e.logStateFor(id, func() *logState {
		ls := e.newLogState(id)
		ls.arrivalKnown = true // empty: nothing arrived yet
		return ls
	})
	if err != nil {
		return nil, err
	}
	return &handle{ls: ls}, nil
}

// Keys of the JetStream stream metadata of a log.
const (
	metaLog           = "shoal.log"
	metaPrefix        = "shoal.prefix"
	metaCreator       = "shoal.create"
	metaKinesisStream = "shoal.kinesis.stream"
	metaKinesisShard  = "shoal.kinesis.shard"
)

// dupWindow is the deduplication window of every stream: a publish retried
// with the same Nats-Msg-Id within it is stored once.
const dupWindow = 2 * time.Minute

// OpenLog returns a handle of log id. It fails with ErrNotFound if the
// JetStream stream does not exist.
func (e *Engine) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if e.closed.Load() {
		return nil, errClosed("open log " + id.String())
	}
	if err := checkLogID(id); err != nil {
		return nil, err
	}
	if ls := e.lookup(id); ls != nil {
		return &handle{ls: ls}, nil
	}
	var si *jetstream.StreamInfo
	err := e.retry(ctx, func(ctx context.Context) error {
		var err error
		si, err = e.streamInfo(ctx, e.streamName(id))
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("natsengine: open log %v: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("natsengine: open log %v: %w", id, err)
	}
	ls, err := e.logStateFor(id, func() *logState { return e.newLogState(id) })
	if err != nil {
		return nil, err
	}
	ls.observeInfo(si)
	return &handle{ls: ls}, nil
}

// DeleteLog deletes the JetStream stream of log id (a missing one is not an
// error), fails the log's handles with ErrClosed and closes their Changed
// channels, and tells other processes.
func (e *Engine) DeleteLog(ctx context.Context, id engine.LogID) error {
	if e.closed.Load() {
		return errClosed("delete log " + id.String())
	}
	if err := checkLogID(id); err != nil {
		return err
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		err := e.js.DeleteStream(ctx, e.streamName(id))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("natsengine: delete log %v: %w", id, err)
	}
	if ls := e.lookup(id); ls != nil {
		ls.kill()
		e.forget(ls)
	}
	_ = e.nc.Publish(e.noticeSubject(id), []byte(noticeDelete))
	return nil
}

// Logs lists the JetStream streams of this engine's prefix.
func (e *Engine) Logs(ctx context.Context) ([]engine.LogID, error) {
	if e.closed.Load() {
		return nil, errClosed("logs")
	}
	var ids []engine.LogID
	err := e.retry(ctx, func(ctx context.Context) error {
		ids = ids[:0]
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		l := e.js.StreamNames(ctx, jetstream.WithStreamListSubject(e.subjPre+".d.>"))
		for name := range l.Name() {
			if id, ok := e.parseStreamName(name); ok {
				ids = append(ids, id)
			}
		}
		return l.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("natsengine: logs: %w", err)
	}
	return ids, nil
}

// Close stops the engine's goroutines, fails every handle with ErrClosed
// (closing their Changed channels), ends the catalog watches and drains the
// connection. Closing again does nothing.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil
	}
	e.closed.Store(true) // under mu: no goroutine starts (wg.Add) after this
	logs := e.logs
	e.logs = nil
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	for _, ls := range logs {
		ls.kill()
	}
	if err := e.nc.Drain(); err != nil {
		e.nc.Close()
	}
	select {
	case <-e.connGone:
	case <-time.After(e.cfg.RequestTimeout + 5*time.Second):
		e.nc.Close()
		<-e.connGone
	}
	return nil
}

// onReply routes a reply to the request waiting for it.
func (e *Engine) onReply(m *nats.Msg) {
	token := m.Subject[len(e.replyPre):]
	e.replyMu.Lock()
	ch := e.replies[token]
	e.replyMu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m:
	default: // more replies than the request expects: not ours to keep
	}
}

// newReply returns a reply subject whose messages go to ch (which holds
// up to n of them), and a function that releases it.
func (e *Engine) newReply(n int) (subject string, ch chan *nats.Msg, release func()) {
	token := strconv.FormatUint(e.replySeq.Add(1), 36)
	ch = make(chan *nats.Msg, n)
	e.replyMu.Lock()
	e.replies[token] = ch
	e.replyMu.Unlock()
	return e.replyPre + token, ch, func() {
		e.replyMu.Lock()
		delete(e.replies, token)
		e.replyMu.Unlock()
	}
}

// Notices are core NATS messages on <prefix>.n.<stream>.<shard> that tell
// other processes' readers about a change: "a <seq>" an append at seq,
// "s <end>" a seal, "d" a deletion. They are hints: a lost notice delays a
// waiter by at most one poll.
const (
	noticeAppend = "a "
	noticeSeal   = "s "
	noticeDelete = "d"
)

// onNotice applies a change notice to the log it names, if this engine
// has it open.
func (e *Engine) onNotice(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, e.subjPre+".n.")
	if !ok {
		return
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return
	}
	shard, err := strconv.ParseUint(rest[i+1:], 10, 32)
	if err != nil {
		return
	}
	ls := e.lookup(engine.LogID{Stream: rest[:i], Shard: uint32(shard)})
	if ls == nil {
		return
	}
	data := string(m.Data)
	switch {
	case strings.HasPrefix(data, noticeAppend):
		if seq, err := strconv.ParseUint(data[len(noticeAppend):], 10, 64); err == nil {
			ls.observeSeq(seq)
		}
	case strings.HasPrefix(data, noticeSeal):
		ls.observeSealed()
	case data == noticeDelete:
		ls.kill()
		e.forget(ls)
	}
}

// poll is the fallback for lost notices: every PollInterval it asks the
// stream leader about each log that has a waiter on Changed.
func (e *Engine) poll() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		all := make([]*logState, 0, len(e.logs))
		for _, ls := range e.logs {
			all = append(all, ls)
		}
		e.mu.Unlock()
		for _, ls := range all {
			if e.ctx.Err() != nil {
				return
			}
			if !ls.hasWaiter() {
				continue
			}
			ctx, cancel := context.WithTimeout(e.ctx, e.cfg.RequestTimeout)
			si, err := e.streamInfo(ctx, ls.name)
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
				if ls.notFound() { // see missingGrace
					ls.kill()
					e.forget(ls)
				}
			case err == nil:
				ls.observeInfo(si)
			}
		}
	}
}

// versionAtLeast reports whether the server version have (such as
// "2.12.3", "v2.15.3" or "2.13.0-beta.1") is want or newer. A pre-release
// is older than its release; an unparsable version is too old.
func versionAtLeast(have, want string) bool {
	h, hpre, ok1 := parseVersion(have)
	w, wpre, ok2 := parseVersion(want)
	if !ok1 || !ok2 {
		return false
	}
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	// Same numbers: a release is newer than any of its pre-releases.
	return !hpre || wpre
}

// parseVersion splits "v1.2.3-pre+build" into its numbers and whether it is
// a pre-release.
func parseVersion(v string) (nums [3]uint64, pre, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v, pre = v[:i], true
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nums, false, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nums, false, false
		}
		nums[i] = n
	}
	return nums, pre, true
}
