package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Listen delivers the application's lease events until ctx ends or the
// Store is closed, then closes the channel. See Store.
//
// Created, taken, released, shard-ended and deleted leases come from
// PostgreSQL's NOTIFY, sent by a trigger on the lease table when the change
// commits, so they arrive within a round trip of the change whoever made it.
// Expired leases come from a watcher on the same dedicated connection that
// asks the database when the next lease expires, by the database's clock,
// and looks again at that moment; each expiry is reported once per lease
// counter. If the connection is lost, the listener reconnects with back-off
// and then sends EventResync, since notifications sent in between are lost.
//
// The returned error is non-nil only if the first connection could not be
// made (within the retry rules of PGConfig.MaxRetryTime and ctx).
func (s *PGStore) Listen(ctx context.Context, application string) (<-chan Event, error) {
	op := "listen " + application
	if application == "" {
		return nil, fmt.Errorf("%s: empty application name: %w", op, ErrInvalid)
	}
	var conn *pgx.Conn
	err := s.retry(ctx, op, func(ctx context.Context, _ int) error {
		var err error
		conn, err = s.listenConn(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	l := &listener{
		s:    s,
		app:  application,
		conn: conn,
		ch:   make(chan Event, s.cfg.EventBuffer),
		seen: map[string]int64{},
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeConn(conn)
		return nil, fmt.Errorf("%s: %w", op, ErrClosed)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	// The listener stops when ctx ends or when Close cancels s.life.
	runCtx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(s.life, cancel)
	go func() {
		defer s.wg.Done()
		defer stopAfter()
		defer cancel()
		l.run(runCtx)
	}()
	return l.ch, nil
}

// listenConn takes a connection out of the pool for good (a connection in
// LISTEN state must not go back to other users) and starts listening.
func (s *PGStore) listenConn(ctx context.Context) (*pgx.Conn, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.n.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx) // best effort: the connection may be dead already
}

// listener is one Listen call's state, owned by its goroutine.
type listener struct {
	s    *PGStore
	app  string
	conn *pgx.Conn // nil while reconnecting
	ch   chan Event
	// seen holds, for each lease reported expired, the counter it had: a
	// lease is reported again only once its counter moved.
	seen map[string]int64
	// resync is set when an event was dropped (full channel) or may have
	// been missed (reconnect); an EventResync is owed.
	resync bool
	// nextScan is when to look for expired leases next, on the local
	// monotonic clock; the length of the wait came from the database.
	nextScan time.Time
}

// payload is what the lease table's trigger sends.
type payload struct {
	Type        EventType `json:"type"`
	Application string    `json:"application"`
	Stream      string    `json:"stream"`
	ShardID     string    `json:"shard_id"`
	Owner       string    `json:"owner"`
	Counter     int64     `json:"counter"`
	HandoffTo   string    `json:"handoff_to"`
}

func (l *listener) run(ctx context.Context) {
	defer close(l.ch)
	defer func() {
		if l.conn != nil {
			closeConn(l.conn)
		}
	}()
	log := l.s.log.With(zap.String("application", l.app))
	for {
		if l.conn == nil {
			if !l.reconnect(ctx, log) {
				return
			}
		}
		if !time.Now().Before(l.nextScan) {
			if err := l.scanExpired(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("lease listener lost its connection", zap.Error(err))
				l.drop()
				continue
			}
		}
		l.flushResync()
		wctx, cancel := context.WithDeadline(ctx, l.nextScan)
		n, err := l.conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && wctx.Err() != nil && !l.conn.IsClosed():
			// Time to look for expired leases.
			continue
		case err != nil:
			log.Warn("lease listener lost its connection", zap.Error(err))
			l.drop()
			continue
		}
		var p payload
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			log.Warn("lease listener: malformed notification", zap.String("payload", n.Payload), zap.Error(err))
			continue
		}
		if p.Application != l.app {
			continue
		}
		if p.Type == EventTaken {
			// A new owner may have set an expiry earlier than the one
			// being waited for (its FailoverTime may be shorter).
			l.nextScan = time.Time{}
		}
		l.deliver(Event(p))
	}
}

// drop forgets a broken connection; the next loop reconnects.
func (l *listener) drop() {
	closeConn(l.conn)
	l.conn = nil
}

// reconnect gets a new listening connection, retrying with back-off until
// ctx ends (it reports false then). Notifications sent while no connection
// listened are lost, so it owes the receiver an EventResync.
func (l *listener) reconnect(ctx context.Context, log *zap.Logger) bool {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0 // until ctx ends
	b.Reset()
	for attempt := 1; ; attempt++ {
		conn, err := l.s.listenConn(ctx)
		if err == nil {
			log.Info("lease listener reconnected", zap.Int("attempts", attempt))
			l.conn = conn
			l.resync = true
			l.nextScan = time.Time{}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := b.NextBackOff()
		log.Debug("lease listener reconnect failed", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// scanExpired reports the leases that expired since the last scan and sets
// nextScan to just after the next expiry (or FailoverTime from now, so that
// an owed EventResync is retried and a broken connection noticed).
func (l *listener) scanExpired(ctx context.Context) error {
	rows, err := l.conn.Query(ctx, `SELECT stream, shard_id, lease_owner, lease_counter FROM `+l.s.n.table+`
WHERE application = $1 AND lease_owner IS NOT NULL AND expires_at <= now()`, l.app)
	if err != nil {
		return err
	}
	seen := make(map[string]int64, len(l.seen))
	var expired []Event
	for rows.Next() {
		e := Event{Type: EventExpired, Application: l.app}
		if err := rows.Scan(&e.Stream, &e.ShardID, &e.Owner, &e.Counter); err != nil {
			rows.Close()
			return err
		}
		seen[e.Key()] = e.Counter
		if c, ok := l.seen[e.Key()]; !ok || c != e.Counter {
			expired = append(expired, e)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var next *float64 // seconds until the next expiry, by the database's clock
	if err := l.conn.QueryRow(ctx, `SELECT extract(epoch FROM min(expires_at) - now())::float8 FROM `+l.s.n.table+`
WHERE application = $1 AND lease_owner IS NOT NULL AND expires_at > now()`, l.app).Scan(&next); err != nil {
		return err
	}
	l.seen = seen
	for _, e := range expired {
		l.deliver(e)
	}

	failover := l.s.cfg.FailoverTime
	// The slack lets one wake-up collect the leases that expire close
	// together (a worker renews its leases in one sweep).
	slack := max(failover/50, 5*time.Millisecond)
	wait := failover
	if next != nil {
		wait = min(time.Duration(*next*float64(time.Second))+slack, failover)
	}
	l.nextScan = time.Now().Add(wait)
	return nil
}

// deliver sends e without blocking: a receiver that does not keep up loses
// events, and is owed an EventResync instead (the database's notification
// queue must never wait on a slow receiver).
func (l *listener) deliver(e Event) {
	l.flushResync()
	if l.resync {
		return
	}
	select {
	case l.ch <- e:
	default:
		l.resync = true
	}
}

// flushResync sends an owed EventResync if there is room.
func (l *listener) flushResync() {
	if !l.resync {
		return
	}
	select {
	case l.ch <- Event{Type: EventResync, Application: l.app}:
		l.resync = false
	default:
	}
}
