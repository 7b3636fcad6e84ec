package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/leaseview"
	"github.com/shoalstream/shoal/server"
)

// DefaultSessionIdleTimeout is Config.SessionIdleTimeout's default.
const DefaultSessionIdleTimeout = 12 * time.Hour

// Config configures a Console. Server is required; every other zero field
// takes the default its comment gives.
type Config struct {
	// Server is the Kinesis server the console serves. The console calls
	// its API through aws-sdk-go-v2 over an in-memory connection (which it
	// serves with Server.ServeCleartext), so every action is authorized as
	// an SDK call would be. Required.
	Server *server.Server
	// Region and Account are what the console reports and signs for. Zero
	// means the server's (Server.Region, Server.AccountID).
	Region  string
	Account string
	// LeaseDatabaseURL is the PostgreSQL database of the consumer
	// applications' lease table (package checkpoint), for the applications
	// pages; empty means none (they answer ConsoleNotConfigured). The
	// console only reads it. LeaseSchema and LeaseTable name the table as
	// the consumers' checkpoint.PGConfig does; zero means "public" and
	// "shoal_leases".
	LeaseDatabaseURL string
	LeaseSchema      string
	LeaseTable       string
	// History is the server's recent metrics, for the metrics pages: the
	// same History must be in the server's Config.Metrics (with
	// server.TeeMetrics beside another). Nil means no metrics pages (they
	// answer ConsoleNotConfigured).
	History *History
	// SessionIdleTimeout is how long a session lives without a request.
	// Zero means DefaultSessionIdleTimeout (12 hours).
	SessionIdleTimeout time.Duration
	// Logger receives the console's logs; it never receives a secret. Nil
	// means zap.NewNop().
	Logger *zap.Logger
	// Now is the clock of session expiry and of the times the console
	// reports. Nil means time.Now. For tests.
	Now func() time.Time
}

// Console is the web console: its page, its assets and its JSON API (see
// API.md beside this file), as one http.Handler to mount at /console/.
// Create one with New and stop it with Close.
type Console struct {
	cfg    Config
	srv    *server.Server
	log    *zap.Logger
	now    func() time.Time
	auth   bool // the server verifies requests: sessions sign in
	ln     *pipeListener
	served chan struct{} // closed when the server stops serving ln
	// anon is the client of every request while the server does not
	// verify requests (nil otherwise).
	anon      *sdkClient
	sessions  *sessionStore
	pace      *pacer
	cursorKey []byte // HMAC key of the record cursors
	leases    *leaseview.Reader
	pool      *pgxpool.Pool
	handler   http.Handler

	life context.Context // cancelled by Close: ends the tails and the janitor
	stop context.CancelFunc

	mu     sync.Mutex     // guards closed and the Add of wg
	closed bool           // Close has begun: no new goroutines
	wg     sync.WaitGroup // the janitor and every tail's goroutines
}

// New returns a Console serving cfg.Server. It starts serving the server on
// the console's in-memory listener and a janitor that expires sessions;
// Close stops both.
func New(cfg Config) (*Console, error) {
	if cfg.Server == nil {
		return nil, errors.New("console: Config.Server is required")
	}
	if cfg.Region == "" {
		cfg.Region = cfg.Server.Region()
	}
	if cfg.Account == "" {
		cfg.Account = cfg.Server.AccountID()
	}
	if cfg.LeaseSchema == "" {
		cfg.LeaseSchema = checkpoint.DefaultSchema
	}
	if cfg.LeaseTable == "" {
		cfg.LeaseTable = checkpoint.DefaultTable
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{
		cfg:       cfg,
		srv:       cfg.Server,
		log:       cfg.Logger,
		now:       cfg.Now,
		auth:      cfg.Server.AuthEnabled(),
		ln:        newPipeListener(),
		served:    make(chan struct{}),
		pace:      newPacer(),
		cursorKey: make([]byte, 32),
	}
	_, _ = rand.Read(c.cursorKey) // crypto/rand.Read never fails
	c.sessions = newSessionStore(cfg.SessionIdleTimeout)
	if cfg.LeaseDatabaseURL != "" {
		pool, err := leaseview.Connect(context.Background(), cfg.LeaseDatabaseURL, 4)
		if err != nil {
			return nil, fmt.Errorf("console: lease database: %w", err)
		}
		c.pool = pool
		c.leases = leaseview.NewReader(pool, cfg.LeaseSchema, cfg.LeaseTable)
	}
	if !c.auth {
		c.anon = c.newClient(anonymousCredentials(), loopbackAddr)
	}
	c.life, c.stop = context.WithCancel(context.Background())
	c.handler = c.routes()
	go func() {
		defer close(c.served)
		if err := c.srv.ServeCleartext(c.ln); err != nil && !errors.Is(err, net.ErrClosed) {
			c.log.Warn("console: serving the in-memory listener", zap.Error(err))
		}
		// A server shut down (or never serving) accepts nothing more: dials
		// must fail rather than wait.
		_ = c.ln.Close()
	}()
	c.goOwned(c.janitor)
	return c, nil
}

// Handler returns the console's handler. Mount it at /console/ (it
// serves paths under /console/ only, and redirects /console there).
func (c *Console) Handler() http.Handler { return c.handler }

// Close ends the live tails, stops the session janitor, forgets every
// session (and its credentials), closes the in-memory listener and the
// lease database's pool, and waits for the console's goroutines. Later
// calls do nothing and return nil.
func (c *Console) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	c.sessions.clear()
	if c.anon != nil {
		c.anon.close()
	}
	_ = c.ln.Close()
	<-c.served
	var err error
	if c.leases != nil {
		err = c.leases.Close()
		c.pool.Close()
	}
	return err
}

// goOwned runs fn on a goroutine that Close waits for, unless Close has
// begun (then it reports false and runs nothing).
func (c *Console) goOwned(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(fn)
	return true
}

// janitor drops idle sessions every minute until Close.
func (c *Console) janitor() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
			if n := c.sessions.expire(c.now()); n > 0 {
				c.log.Debug("console: sessions expired", zap.Int("sessions", n))
			}
		}
	}
}
