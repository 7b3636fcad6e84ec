package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/audit"
	"github.com/shoalstream/shoal/internal/kms"
	"github.com/shoalstream/shoal/internal/randid"
)

// Server is a Kinesis Data Streams endpoint backed by shard logs on disk.
// Create one with New, serve it with Serve, and stop it with Shutdown.
type Server struct {
	cfg Config
	log *zap.Logger
	ops map[string]opFunc

	eng     engine.Engine
	ownsEng bool // the server opened eng and closes it
	cat     engine.Catalog
	secret  []byte        // HMAC key of shard iterators and pagination tokens; set by load
	subs    subscriptions // running SubscribeToShard streams
	// tlsCert is the TLS certificate in force (nil unless TLS is
	// configured): every TLS handshake reads it (tls.Config.GetCertificate)
	// and ReloadTLS replaces it whole. tlsMu serialises ReloadTLS.
	tlsCert atomic.Pointer[tls.Certificate]
	tlsMu   sync.Mutex
	// auth is the request verification in force (nil: off); ReloadAuth
	// replaces it whole.
	auth  atomic.Pointer[authState]
	audit *audit.Writer // nil unless Config.AuditLog is set
	// kms is the key service of server-side encryption, opened by keyring
	// on first use (kmsMu serialises the opening) in kmsDir.
	kms    atomic.Pointer[kms.Keyring]
	kmsMu  sync.Mutex
	kmsDir string
	// streams is the immutable snapshot of the streams by name that every
	// request reads; creating or forgetting a stream replaces it whole.
	streams atomic.Pointer[map[string]*stream]

	// namesMu serialises replacing the streams snapshot and guards
	// reserved; it is never held across I/O. Taken after a stream's ctl
	// and shards' appendMu, before any stream's mu.
	namesMu       sync.Mutex
	reserved      map[string]reservation // names being created, with what they add
	pendingShards map[string]int         // by account: open shards that reshards in flight will add

	// acctMu guards account and accountVersion; held across the account
	// record's catalog write (UpdateAccountSettings only).
	acctMu         sync.Mutex
	account        accountSettings
	accountVersion uint64

	httpMu   sync.Mutex            // guards httpSrvs, lns and newConns
	httpSrvs []*http.Server        // one per Serve, ServeCleartext or ServeTLS call
	lns      []net.Listener        // their listeners, in the same order
	newConns map[net.Conn]struct{} // connections that have not sent a request yet

	done      chan struct{}  // closed by Shutdown
	bgMu      sync.Mutex     // guards bgStopped and the Add of bg
	bgStopped bool           // Shutdown is waiting for bg: no new background goroutines
	bg        sync.WaitGroup // housekeeping, the auto-splitter, status timers
	// coordinator reports that this server holds the coordinator lease of
	// a shared catalog (coordinator.go).
	coordinator atomic.Bool
	disk        diskGuard // refuses writes while the data directory's disk is nearly full
	closeOnce   sync.Once
	closeErr    error

	// faults is the fault injection in force (faults.go); nil: none.
	faults atomic.Pointer[faultSet]
}

// opFunc runs one operation on a decoded request body.
type opFunc func(ctx context.Context, c codec, body []byte) (any, error)

// op adapts a typed handler to an opFunc.
func op[In, Out any](fn func(context.Context, *In) (*Out, error)) opFunc {
	return func(ctx context.Context, c codec, body []byte) (any, error) {
		in := new(In)
		if err := c.decode(body, in); err != nil {
			return nil, ErrSerialization.With("%s", serializationMessage(err))
		}
		if cl := callerFrom(ctx); cl != nil {
			cl.input = in
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}

func serializationMessage(err error) string {
	var se *json.SemanticError
	if errors.As(err, &se) && se.JSONPointer != "" {
		return fmt.Sprintf("Unexpected value for member %s: %v", se.JSONPointer, se.Err)
	}
	return "Unable to parse the request body: " + err.Error()
}

// New opens (or creates) the data directory, recovers every stream's shard
// logs, and returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{
		cfg:           cfg,
		log:           cfg.Logger,
		reserved:      map[string]reservation{},
		pendingShards: map[string]int{},
		done:          make(chan struct{}),
	}
	empty := map[string]*stream{}
	s.streams.Store(&empty)
	s.ops = s.operations()
	if len(cfg.Faults.Rules) > 0 {
		if err := s.SetFaults(cfg.Faults); err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
	}
	if cfg.tlsConfigured() {
		cert, err := s.loadTLS(false)
		if err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
		s.tlsCert.Store(cert)
	}
	if cfg.AuthConfigFile != "" {
		a, err := s.loadAuth()
		if err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
		s.auth.Store(a)
	}
	s.kmsDir = cfg.KMSDir
	if s.kmsDir == "" && cfg.DataDir != "" {
		s.kmsDir = filepath.Join(cfg.DataDir, "kms")
	}
	if cfg.KMSKeysFile != "" || cfg.EncryptAll {
		// Open the key service now: a keys file that does not parse stops
		// the start. Otherwise it opens on first use (and only then writes
		// its default key into the data directory).
		if _, err := s.keyring(); err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
	}
	if cfg.AuditLog != "" {
		w, err := audit.Open(cfg.AuditLog, audit.Options{MaxBytes: cfg.AuditMaxBytes, Logger: s.log.Named("audit"), Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("server config: audit log: %w", err)
		}
		s.audit = w
	}
	s.eng = cfg.Engine
	if s.eng == nil {
		eng, err := cfg.openEngine(s.onSync)
		if err != nil {
			return nil, err
		}
		s.eng, s.ownsEng = eng, true
	}
	s.cat = s.eng.Catalog()
	if err := s.load(context.Background()); err != nil {
		for _, st := range s.snapshot() {
			s.closeLogs(st)
		}
		if s.ownsEng {
			_ = s.eng.Close()
		}
		if s.audit != nil {
			_ = s.audit.Close()
		}
		return nil, err
	}
	s.goBackground(s.housekeeping)
	s.startDiskGuard()
	if w, ok := s.eng.(engine.CatalogWatcher); ok {
		s.goBackground(func() { s.followCatalog(w) })
		if l, ok := s.eng.(engine.Leases); ok {
			s.goBackground(func() { s.coordinate(l) })
		}
	}
	if cfg.AutoSplitWindow > 0 {
		s.goBackground(s.autoSplitter)
	}
	return s, nil
}

// Handler returns the HTTP handler that serves the Kinesis API, for callers
// that run their own http.Server. It must still be stopped with Shutdown.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve accepts connections on ln, speaking HTTP/1.1 and cleartext HTTP/2
// with prior knowledge (h2c) on the same port, or, when the server has a
// TLS certificate (Config.TLSCertFile or TLSSelfSignedDir), TLS with ALPN
// choosing between h2 and http/1.1: it is ServeCleartext without a
// certificate and ServeTLS with one. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, s.tlsCert.Load() != nil)
}

// ServeCleartext accepts connections on ln, speaking HTTP/1.1 and cleartext
// HTTP/2 with prior knowledge (h2c), whether or not the server has a TLS
// certificate: with ServeTLS on another listener, the server answers on
// both at once. It returns nil after Shutdown.
func (s *Server) ServeCleartext(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts connections on ln, speaking TLS (1.2 and up) with ALPN
// choosing between h2 and http/1.1. Each handshake uses the certificate in
// force (see ReloadTLS). It fails at once, leaving ln open, when the server
// has no certificate (neither Config.TLSCertFile nor TLSSelfSignedDir). It
// returns nil after Shutdown.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tlsCert.Load() == nil {
		return errors.New("server: ServeTLS without a TLS certificate (set Config.TLSCertFile or TLSSelfSignedDir)")
	}
	return s.serve(ln, true)
}

// serve runs an http.Server on ln, with TLS or without, until Shutdown.
func (s *Server) serve(ln net.Listener, useTLS bool) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if useTLS {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		Protocols:         &protocols,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 1000,
		},
		ConnState: s.trackConn,
	}
	if useTLS {
		srv.TLSConfig = &tls.Config{GetCertificate: s.getCertificate, MinVersion: tls.VersionTLS12}
	}
	s.httpMu.Lock()
	select {
	case <-s.done:
		s.httpMu.Unlock()
		return http.ErrServerClosed
	default:
	}
	s.httpSrvs = append(s.httpSrvs, srv)
	s.lns = append(s.lns, ln)
	s.httpMu.Unlock()
	var err error
	if useTLS {
		err = srv.ServeTLS(ln, "", "") // the certificate from srv.TLSConfig; ALPN from Protocols
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// trackConn remembers the connections that have not sent a request yet, so
// that Shutdown can close them at once: net/http would wait until they are
// five seconds old, and HTTP clients routinely open such spare connections.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if state == http.StateNew {
		if s.newConns == nil {
			s.newConns = make(map[net.Conn]struct{})
		}
		s.newConns[c] = struct{}{}
		return
	}
	delete(s.newConns, c)
}

// closeNewConns closes the connections that never sent a request.
func (s *Server) closeNewConns() {
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	for c := range s.newConns {
		_ = c.Close()
		delete(s.newConns, c)
	}
}

// Addr returns the address of the first listener given to Serve,
// ServeCleartext or ServeTLS, or nil before any.
func (s *Server) Addr() net.Addr {
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// Shutdown stops accepting connections on every listener, waits for
// in-flight requests until ctx ends, stops background work, and syncs and
// closes every shard log. It is safe to call more than once; later calls
// return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.httpMu.Lock()
		close(s.done)
		srvs := slices.Clone(s.httpSrvs)
		s.httpMu.Unlock()
		// End the event streams first: http.Server.Shutdown waits for
		// their handlers, which would otherwise run out their lifetime.
		s.closeSubscriptions()
		var errs []error
		if len(srvs) > 0 {
			done := make(chan error, len(srvs))
			for _, srv := range srvs {
				go func() { done <- srv.Shutdown(ctx) }()
			}
			tick := time.NewTicker(20 * time.Millisecond)
			failed := false
			for pending := len(srvs); pending > 0; {
				s.closeNewConns() // the listeners are closed now: no more arrive
				select {
				case err := <-done:
					pending--
					if err != nil && !failed {
						failed = true
						errs = append(errs, fmt.Errorf("http shutdown: %w", err))
					}
				case <-tick.C:
				}
			}
			tick.Stop()
			if failed {
				for _, srv := range srvs {
					_ = srv.Close()
				}
			}
		}
		s.stopBackground()
		errs = append(errs, s.closeStreams())
		if s.audit != nil {
			if err := s.audit.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close audit log: %w", err))
			}
			if st := s.audit.Stats(); st.Dropped > 0 || st.Failed > 0 {
				s.log.Warn("audit records lost", zap.Int64("written", st.Written), zap.Int64("dropped", st.Dropped), zap.Int64("failed", st.Failed))
			}
		}
		if s.ownsEng {
			if err := s.eng.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close storage engine: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// maxBodyBytes bounds a request body: the largest legal PutRecords carries
// 10 MiB of data, which base64 makes 13.4 MiB, plus up to 500 partition keys
// and hash keys and the JSON around them.
const maxBodyBytes = 16 << 20

const targetPrefix = "Kinesis_20131202."

func newRequestID() string { return randid.UUID() }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	reqID := newRequestID()
	h.Set("x-amzn-RequestId", reqID)
	// The server's own clock: the SDKs correct their clock skew from it.
	// The same reading starts the call's latency (Metrics.Call).
	now := s.cfg.Now()
	h.Set("Date", now.UTC().Format(http.TimeFormat))

	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var c codec = jsonCodec{}
	switch mt {
	case contentTypeCBOR:
		c = cborCodec{}
	case contentTypeJSON, "application/x-amz-json-1.0", "":
	case "application/json":
		// AWS answers plain JSON with a coral envelope and 404.
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException","message":null},"Version":"1.0"}`)
		return
	default:
		s.writeError(w, c, ErrUnknownOperation.With("Unsupported content type %q", ct))
		return
	}
	if r.Method != http.MethodPost {
		s.writeError(w, c, ErrAccessDenied.With("Unable to determine service/operation name to be authorized"))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if target == "" && r.URL.RawQuery != "" {
		// A presigned request (SigV4 in the query) carries its target there.
		target = r.URL.Query().Get("X-Amz-Target")
	}
	name, ok := strings.CutPrefix(target, targetPrefix)
	fn := s.ops[name]
	stream := ok && name == "SubscribeToShard"
	if !ok || fn == nil && !stream {
		s.writeError(w, c, ErrUnknownOperation.With("Unknown operation %q.", target))
		return
	}

	buf := getBuf()
	defer putBuf(buf)
	if r.ContentLength > maxBodyBytes {
		s.writeTooLarge(w, c)
		return
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeTooLarge(w, c)
			return
		}
		s.log.Debug("read request body", zap.Error(err))
		s.writeError(w, c, ErrSerialization.With("Unable to read the request body"))
		return
	}
	if buf.Len() == 0 {
		s.writeError(w, c, ErrSerialization.With("The request body is empty"))
		return
	}
	cl, err := s.newCaller(r, name, now, buf.Bytes())
	if err == nil {
		err = s.authorizeOp(cl)
	}
	if err != nil {
		s.writeError(w, c, err)
		s.observeCall(cl, err)
		s.auditCall(cl, r, reqID, nil, err)
		return
	}
	ctx := withCaller(r.Context(), cl)
	if fs := s.faults.Load(); fs != nil {
		if err := s.injectCall(ctx, fs, name, c, buf.Bytes()); err != nil {
			s.writeError(w, c, err)
			s.observeCall(cl, err)
			s.auditCall(cl, r, reqID, nil, err)
			return
		}
	}
	if stream {
		err := s.subscribeToShard(w, r.WithContext(ctx), c, buf.Bytes())
		s.auditCall(cl, r, reqID, nil, err)
		return
	}
	out, err := fn(ctx, c, buf.Bytes())
	s.observeCall(cl, err)
	s.auditCall(cl, r, reqID, out, err)
	if err != nil {
		if ae, ok := asAPIError(err); !ok || ae.Fault == FaultServer {
			s.log.Warn("request failed", zap.String("operation", name), zap.Error(err))
		}
		s.writeError(w, c, err)
		return
	}
	s.writeOutput(w, c, out)
}

func (s *Server) writeTooLarge(w http.ResponseWriter, c codec) {
	ae := ErrSerialization.With("Request body exceeds the maximum of %d bytes", maxBodyBytes)
	ae.Status = http.StatusRequestEntityTooLarge
	s.writeError(w, c, ae)
}

func (s *Server) writeOutput(w http.ResponseWriter, c codec, out any) {
	buf := getBuf()
	defer putBuf(buf)
	if err := c.encode(buf, out); err != nil {
		s.log.Error("encode response", zap.Error(err))
		s.writeError(w, c, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", c.contentType())
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeError is the one place errors reach the wire.
func (s *Server) writeError(w http.ResponseWriter, c codec, err error) {
	ae, _ := asAPIError(err)
	buf := getBuf()
	defer putBuf(buf)
	_ = c.encode(buf, errorBody{Type: ae.Code, Message: ae.Message})
	h := w.Header()
	h.Set("Content-Type", c.contentType())
	h.Set("X-Amzn-ErrorType", ae.Code)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(ae.Status)
	_, _ = w.Write(buf.Bytes())
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

// housekeeping runs periodic work: retention trimming. (The engine syncs its
// logs itself in the file engine's interval mode.) It stops when Shutdown
// closes done.
func (s *Server) housekeeping() {
	retention := time.NewTicker(s.cfg.RetentionCheckInterval)
	defer retention.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-retention.C:
			s.enforceRetention()
		}
	}
}
