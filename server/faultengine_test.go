package server_test

// A fault-injecting storage engine for the reshard, crash and isolation
// tests: faultEngine wraps a real file engine and calls a test hook around
// the calls a control-plane change makes (CreateLog, Log.Seal,
// Catalog.PutStream), so that a test can fail, block or snapshot the data
// directory at a chosen step. rig runs a real server on it over loopback
// and restarts it on the same directory.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/fileengine"
	"github.com/shoalstream/shoal/server"
)

// errInjected is the error a hook returns to fail a call.
var errInjected = errors.New("injected fault")

// faultOp is the point of a call at which the hook runs.
type faultOp int

const (
	opCreateLog     faultOp = iota // before CreateLog; an error fails it
	opCreatedLog                   // after a successful CreateLog
	opSeal                         // before Log.Seal; an error fails it
	opSealed                       // after a successful Log.Seal
	opPutStream                    // before Catalog.PutStream; an error fails it
	opPutStreamDone                // after a successful Catalog.PutStream
)

func (o faultOp) String() string {
	return [...]string{"CreateLog", "CreatedLog", "Seal", "Sealed", "PutStream", "PutStreamDone"}[o]
}

// faultCall describes one call to the hook.
type faultCall struct {
	Op   faultOp
	Log  engine.LogID       // CreateLog, Seal
	Meta engine.StreamMeta  // PutStream: the record being stored
	Prev *engine.StreamMeta // PutStream: the stored record, nil if none
}

// grows reports whether a PutStream call adds shards to its stream.
func (c faultCall) grows() bool {
	return c.Prev != nil && len(c.Meta.Shards) > len(c.Prev.Shards)
}

// faultEngine wraps an engine; see the file comment.
type faultEngine struct {
	inner engine.Engine
	cat   *faultCatalog

	mu   sync.Mutex
	hook func(faultCall) error
	// onAppend, when set, is told how long each Append took.
	onAppend func(id engine.LogID, took time.Duration)

	// frozen makes every later mutating call a violation, recorded in late:
	// set once the server that used the engine has shut down.
	frozen atomic.Bool
	lateMu sync.Mutex
	late   []string
}

var _ engine.Engine = (*faultEngine)(nil)

func newFaultEngine(inner engine.Engine) *faultEngine {
	fe := &faultEngine{inner: inner}
	fe.cat = &faultCatalog{Catalog: inner.Catalog(), fe: fe}
	return fe
}

// setHook installs h (nil removes the hook).
func (fe *faultEngine) setHook(h func(faultCall) error) {
	fe.mu.Lock()
	fe.hook = h
	fe.mu.Unlock()
}

func (fe *faultEngine) call(c faultCall) error {
	fe.mu.Lock()
	h := fe.hook
	fe.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(c)
}

// mutation records a call that changes stored data after freeze.
func (fe *faultEngine) mutation(what string) {
	if fe.frozen.Load() {
		fe.lateMu.Lock()
		fe.late = append(fe.late, what)
		fe.lateMu.Unlock()
	}
}

// lateCalls returns the mutating calls made after frozen was set.
func (fe *faultEngine) lateCalls() []string {
	fe.lateMu.Lock()
	defer fe.lateMu.Unlock()
	return append([]string(nil), fe.late...)
}

func (fe *faultEngine) Catalog() engine.Catalog { return fe.cat }

func (fe *faultEngine) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	fe.mutation("CreateLog " + id.String())
	if err := fe.call(faultCall{Op: opCreateLog, Log: id}); err != nil {
		return nil, fmt.Errorf("create log %v: %w", id, err)
	}
	l, err := fe.inner.CreateLog(ctx, id)
	if err != nil {
		return nil, err
	}
	_ = fe.call(faultCall{Op: opCreatedLog, Log: id})
	return &faultLog{Log: l, fe: fe, id: id}, nil
}

func (fe *faultEngine) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	l, err := fe.inner.OpenLog(ctx, id)
	if err != nil {
		return nil, err
	}
	return &faultLog{Log: l, fe: fe, id: id}, nil
}

func (fe *faultEngine) DeleteLog(ctx context.Context, id engine.LogID) error {
	fe.mutation("DeleteLog " + id.String())
	return fe.inner.DeleteLog(ctx, id)
}

func (fe *faultEngine) Logs(ctx context.Context) ([]engine.LogID, error) { return fe.inner.Logs(ctx) }

func (fe *faultEngine) Close() error { return fe.inner.Close() }

// faultLog wraps a Log: Seal goes through the hook; appends and seals after
// freeze are recorded.
type faultLog struct {
	engine.Log
	fe *faultEngine
	id engine.LogID
}

func (l *faultLog) Append(ctx context.Context, recs []engine.Record) (engine.Position, int64, error) {
	l.fe.mutation("Append " + l.id.String())
	l.fe.mu.Lock()
	on := l.fe.onAppend
	l.fe.mu.Unlock()
	if on == nil {
		return l.Log.Append(ctx, recs)
	}
	t0 := time.Now()
	p, ms, err := l.Log.Append(ctx, recs)
	on(l.id, time.Since(t0))
	return p, ms, err
}

func (l *faultLog) Seal(ctx context.Context) (engine.Position, error) {
	l.fe.mutation("Seal " + l.id.String())
	if err := l.fe.call(faultCall{Op: opSeal, Log: l.id}); err != nil {
		return engine.Position{}, fmt.Errorf("seal %v: %w", l.id, err)
	}
	end, err := l.Log.Seal(ctx)
	if err != nil {
		return end, err
	}
	_ = l.fe.call(faultCall{Op: opSealed, Log: l.id})
	return end, nil
}

func (l *faultLog) Unseal(ctx context.Context) error {
	l.fe.mutation("Unseal " + l.id.String())
	return l.Log.Unseal(ctx)
}

func (l *faultLog) TrimBefore(ctx context.Context, ms int64) (int, error) {
	l.fe.mutation("TrimBefore " + l.id.String())
	return l.Log.TrimBefore(ctx, ms)
}

// faultCatalog wraps a Catalog: PutStream goes through the hook.
type faultCatalog struct {
	engine.Catalog
	fe *faultEngine
}

func (c *faultCatalog) PutStream(ctx context.Context, m engine.StreamMeta, expect uint64) (uint64, error) {
	c.fe.mutation("PutStream " + m.Name)
	call := faultCall{Op: opPutStream, Meta: m.Clone()}
	if prev, _, err := c.Catalog.Stream(ctx, m.Name); err == nil {
		call.Prev = &prev
	}
	if err := c.fe.call(call); err != nil {
		return 0, fmt.Errorf("put stream %s: %w", m.Name, err)
	}
	v, err := c.Catalog.PutStream(ctx, m, expect)
	if err != nil {
		return v, err
	}
	call.Op = opPutStreamDone
	_ = c.fe.call(call)
	return v, nil
}

func (c *faultCatalog) DeleteStream(ctx context.Context, name string, expect uint64) error {
	c.fe.mutation("DeleteStream " + name)
	return c.Catalog.DeleteStream(ctx, name, expect)
}

func (c *faultCatalog) PutAccount(ctx context.Context, a engine.AccountMeta, expect uint64) (uint64, error) {
	c.fe.mutation("PutAccount")
	return c.Catalog.PutAccount(ctx, a, expect)
}

// nthMatching returns a hook that runs act at the nth call (1-based) for
// which match holds, and returns act's error there; every other call passes.
func nthMatching(n int, match func(faultCall) bool, act func(faultCall) error) func(faultCall) error {
	var mu sync.Mutex
	seen := 0
	return func(c faultCall) error {
		if !match(c) {
			return nil
		}
		mu.Lock()
		seen++
		hit := seen == n
		mu.Unlock()
		if !hit {
			return nil
		}
		return act(c)
	}
}

// inject is a hook action that fails the call with errInjected.
func inject(faultCall) error { return errInjected }

// namedLogs returns the logs the catalog names.
func namedLogs(ctx context.Context, t testing.TB, cat engine.Catalog) map[engine.LogID]bool {
	t.Helper()
	recs, err := cat.Streams(ctx)
	if err != nil {
		t.Fatalf("catalog Streams: %v", err)
	}
	out := map[engine.LogID]bool{}
	for _, r := range recs {
		for _, sh := range r.Meta.Shards {
			out[engine.LogID{Stream: r.Meta.ID, Shard: sh.Index}] = true
		}
	}
	return out
}

// checkNoOrphanLogs asserts that the engine holds no log its catalog does
// not name.
func checkNoOrphanLogs(t testing.TB, eng engine.Engine) {
	t.Helper()
	ctx := context.Background()
	named := namedLogs(ctx, t, eng.Catalog())
	ids, err := eng.Logs(ctx)
	if err != nil {
		t.Fatalf("engine Logs: %v", err)
	}
	var orphans []string
	for _, id := range ids {
		if !named[id] {
			orphans = append(orphans, id.String())
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		t.Fatalf("the engine holds logs no catalog record names: %v (named: %v)", orphans, named)
	}
}

// rig is a real server over loopback on a faultEngine around a file
// engine (FsyncAlways) in dir. stop shuts the server down and closes the
// engine; start opens both again on the same directory.
type rig struct {
	t   testing.TB
	dir string
	cfg server.Config

	fe       *faultEngine
	srv      *server.Server
	endpoint string
	hc       *http.Client
	c        *kinesis.Client // one attempt per call
	served   chan error
}

// startRig starts a rig on dir (a new temporary directory if empty). The
// rig is stopped when the test ends.
func startRig(t testing.TB, dir string, cfg server.Config) *rig {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if cfg.AutoSplitWindow == 0 {
		cfg.AutoSplitWindow = -1 // tests split by hand (AutoSplitNow)
	}
	r := &rig{t: t, dir: dir, cfg: cfg}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) start() {
	r.t.Helper()
	lg := r.cfg.Logger
	if lg == nil {
		if _, bench := r.t.(*testing.B); bench {
			lg = zap.NewNop()
		} else {
			lg = zaptest.NewLogger(r.t, zaptest.Level(zap.InfoLevel))
		}
	}
	inner, err := fileengine.Open(fileengine.Config{Dir: r.dir, Fsync: fileengine.FsyncAlways, Logger: lg.Named("storage")})
	if err != nil {
		r.t.Fatalf("fileengine.Open: %v", err)
	}
	r.fe = newFaultEngine(inner)
	cfg := r.cfg
	cfg.Engine, cfg.Logger = r.fe, lg
	srv, err := server.New(cfg)
	if err != nil {
		_ = inner.Close()
		r.t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatalf("listen: %v", err)
	}
	r.served = make(chan error, 1)
	go func(ch chan error) { ch <- srv.Serve(ln) }(r.served)
	r.srv, r.endpoint = srv, "http://"+ln.Addr().String()
	r.hc = newTestHTTPClient()
	r.c = newTestClient(r.endpoint, r.hc)
}

// shutdown shuts the server down (bounded by 30 s) but leaves the engine
// open, frozen: a later change through it is recorded (lateCalls). It
// returns how long Shutdown took, and is a no-op when shut down.
func (r *rig) shutdown() time.Duration {
	if r.srv == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	done := make(chan error, 1)
	go func(srv *server.Server) { done <- srv.Shutdown(ctx) }(r.srv)
	select {
	case err := <-done:
		if err != nil {
			r.t.Errorf("shutdown: %v", err)
		}
	case <-time.After(40 * time.Second):
		// Shutdown's context (30 s) bounds it; it must not run on.
		r.t.Errorf("Shutdown did not return within 40 s although its context ended after 30 s")
	}
	took := time.Since(t0)
	r.fe.frozen.Store(true)
	if err := <-r.served; err != nil {
		r.t.Errorf("serve: %v", err)
	}
	r.hc.CloseIdleConnections()
	r.srv = nil
	return took
}

// stop shuts the server down and closes the engine. It is a no-op when
// stopped.
func (r *rig) stop() {
	r.shutdown()
	if r.fe == nil {
		return
	}
	if err := r.fe.Close(); err != nil {
		r.t.Errorf("close engine: %v", err)
	}
	r.fe = nil
}

func (r *rig) restart() {
	r.t.Helper()
	r.stop()
	r.start()
}

// newTestClient returns a Kinesis client for endpoint over hc that makes
// one attempt per call: an injected InternalFailure must not be retried.
func newTestClient(endpoint string, hc *http.Client) *kinesis.Client {
	return kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		HTTPClient:  hc,
	}, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

// newTestHTTPClient is an HTTP/1.1 client whose idle connections can be
// closed (CloseIdleConnections), so that tests leave no goroutine behind.
// Like internal/sdkhttp it hides the request body's WriteTo (see there).
func newTestHTTPClient() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	return &http.Client{Transport: closeableTransport{tr}, Timeout: time.Minute}
}

type closeableTransport struct{ base *http.Transport }

func (t closeableTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	r2 := new(http.Request)
	*r2 = *req
	r2.Body = readCloser{req.Body}
	return t.base.RoundTrip(r2)
}

func (t closeableTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

type readCloser struct{ rc io.ReadCloser }

func (b readCloser) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readCloser) Close() error               { return b.rc.Close() }
