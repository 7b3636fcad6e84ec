package natsengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// This file holds Config, the Engine type, Open and Close.

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

// Conn returns the engine's NATS connection, for diagnostics and tests.
func (e *Engine) Conn() *nats.Conn { return e.nc }

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() engine.Catalog { return e.cat }

func errClosed(op string) error { return fmt.Errorf("natsengine: %s: %w", op, engine.ErrClosed) }

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
