package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// DefaultFailoverTime is the failover time of a Store made with zero.
const DefaultFailoverTime = 10 * time.Second

// Table is an in-memory lease table, shared by the Stores made on it as a
// PostgreSQL table is shared by the PGStores of several workers.
//
// Locks: Table.mu guards leases and listeners (and each listener's resync
// flag); Store.mu guards a Store's closed flag. A Store takes its own mu
// and releases it before it takes its Table's.
type Table struct {
	mu        sync.Mutex // guards the following
	leases    map[[2]string]*checkpoint.Lease
	listeners map[*listener]bool
}

// NewTable returns an empty lease table.
func NewTable() *Table {
	return &Table{leases: map[[2]string]*checkpoint.Lease{}, listeners: map[*listener]bool{}}
}

// New returns a Store on a table of its own, for one process's workers.
func New(failoverTime time.Duration) *Store { return NewTable().Store(failoverTime) }

// listener is one Listen call's channel.
type listener struct {
	app    string
	ch     chan checkpoint.Event
	resync bool // an event was dropped: an EventResync is owed
}

// Store is a [checkpoint.Store] on a Table: one worker's view, with its own
// failover time (stored on each lease it writes, as PGStore does) and its
// own listeners. Its methods are safe for concurrent use.
type Store struct {
	tab      *Table
	failover time.Duration

	mu      sync.Mutex // guards closed, and orders wg.Add before Close's wg.Wait
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

var _ checkpoint.HandoffStore = (*Store)(nil)

// Store returns a new Store on the table whose takes, renewals and
// checkpoints keep a lease for failoverTime (zero: DefaultFailoverTime).
func (tab *Table) Store(failoverTime time.Duration) *Store {
	if failoverTime <= 0 {
		failoverTime = DefaultFailoverTime
	}
	return &Store{tab: tab, failover: failoverTime, closing: make(chan struct{})}
}

// FailoverTime is the store's failover time: a consumer worker without one
// of its own adopts it.
func (s *Store) FailoverTime() time.Duration { return s.failover }

func (s *Store) check(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: %w", op, checkpoint.ErrClosed)
	}
	return nil
}

// validIDs checks an application name and a lease key
// (checkpoint.LeaseKey).
func validIDs(app, key string) error {
	stream, shard := checkpoint.SplitLeaseKey(key)
	if app == "" || shard == "" {
		return fmt.Errorf("empty application or shard ID: %w", checkpoint.ErrInvalid)
	}
	return checkpoint.ValidateStreamAndShard(stream, shard)
}

// read returns a copy of l as a reader sees it now. tab.mu is held.
func read(l *checkpoint.Lease) checkpoint.Lease {
	c := *l
	c.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	c.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	if l.PendingCheckpoint != nil {
		p := *l.PendingCheckpoint
		c.PendingCheckpoint = &p
	}
	now := time.Now()
	c.Expired = l.Owner != "" && !now.Before(l.ExpiresAt)
	c.HandoffExpired = l.HandoffTo != "" && !now.Before(l.HandoffExpiresAt)
	return c
}

// notify sends ev to the application's listeners without blocking; a full
// channel owes its listener an EventResync. tab.mu is held.
func (tab *Table) notify(ev checkpoint.Event) {
	for l := range tab.listeners {
		if l.app != ev.Application {
			continue
		}
		if l.resync {
			select {
			case l.ch <- checkpoint.Event{Type: checkpoint.EventResync, Application: l.app}:
				l.resync = false
			default:
				continue
			}
		}
		select {
		case l.ch <- ev:
		default:
			l.resync = true
		}
	}
}

// expireLater announces the lease's expiry, once, when its expiry passes
// unless it changed in between. tab.mu is held.
func (tab *Table) expireLater(l *checkpoint.Lease) {
	key, counter := [2]string{l.Application, l.Key()}, l.Counter
	time.AfterFunc(time.Until(l.ExpiresAt), func() {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		cur := tab.leases[key]
		if cur == nil || cur.Counter != counter || cur.Owner == "" || time.Now().Before(cur.ExpiresAt) {
			return
		}
		tab.notify(checkpoint.Event{Type: checkpoint.EventExpired, Application: cur.Application, Stream: cur.Stream, ShardID: cur.ShardID, Owner: cur.Owner, Counter: cur.Counter})
	})
}

func initialCP(cp checkpoint.Checkpoint) (checkpoint.Checkpoint, error) {
	if cp == (checkpoint.Checkpoint{}) {
		return checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}, nil
	}
	if !cp.Timestamp.IsZero() {
		// As a database keeps it.
		cp.Timestamp = cp.Timestamp.UTC().Truncate(time.Microsecond)
	}
	return cp, cp.Validate()
}

// create inserts l unless it exists. tab.mu is held.
func (tab *Table) create(l checkpoint.Lease, cp checkpoint.Checkpoint) bool {
	key := [2]string{l.Application, l.Key()}
	if tab.leases[key] != nil {
		return false
	}
	now := time.Now()
	tab.leases[key] = &checkpoint.Lease{
		Application: l.Application, Stream: l.Stream, ShardID: l.ShardID, Checkpoint: cp,
		ParentShardIDs: slices.Clone(l.ParentShardIDs), StartingHashKey: l.StartingHashKey, EndingHashKey: l.EndingHashKey,
		CreatedAt: now, UpdatedAt: now,
	}
	tab.notify(checkpoint.Event{Type: checkpoint.EventCreated, Application: l.Application, Stream: l.Stream, ShardID: l.ShardID})
	return true
}

// CreateLease implements [checkpoint.Store].
func (s *Store) CreateLease(_ context.Context, l checkpoint.Lease) (bool, error) {
	if err := s.check("create lease"); err != nil {
		return false, err
	}
	cp, err := initialCP(l.Checkpoint)
	if err == nil {
		err = validIDs(l.Application, l.ShardID)
	}
	if err == nil {
		err = checkpoint.ValidateStreamAndShard(l.Stream, l.ShardID)
	}
	if err != nil {
		return false, fmt.Errorf("create lease: %w", err)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	return s.tab.create(l, cp), nil
}

// CreateChildLeases implements [checkpoint.Store].
func (s *Store) CreateChildLeases(_ context.Context, app, parent string, children []checkpoint.Lease) error {
	if err := s.check("create child leases"); err != nil {
		return err
	}
	if err := validIDs(app, parent); err != nil {
		return fmt.Errorf("create child leases: %w", err)
	}
	type kid struct {
		l  checkpoint.Lease
		cp checkpoint.Checkpoint
	}
	stream, parentID := checkpoint.SplitLeaseKey(parent)
	var kids []kid
	for _, c := range children {
		if c.Application == "" {
			c.Application = app
		}
		if c.Stream == "" {
			c.Stream = stream
		}
		cp, err := initialCP(c.Checkpoint)
		if err == nil {
			err = validIDs(c.Application, c.ShardID)
		}
		if err == nil {
			err = checkpoint.ValidateStreamAndShard(c.Stream, c.ShardID)
		}
		if err == nil && c.Application != app {
			err = fmt.Errorf("child of another application: %w", checkpoint.ErrInvalid)
		}
		if err == nil && c.Stream != stream {
			err = fmt.Errorf("child %s of stream %q, its parent of %q: %w", c.ShardID, c.Stream, stream, checkpoint.ErrInvalid)
		}
		if err != nil {
			return fmt.Errorf("create child leases: %w", err)
		}
		if len(c.ParentShardIDs) == 0 {
			c.ParentShardIDs = []string{parentID}
		}
		kids = append(kids, kid{c, cp})
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	p := s.tab.leases[[2]string{app, parent}]
	if p == nil {
		return fmt.Errorf("create child leases of %s: %w", parent, checkpoint.ErrNotFound)
	}
	for _, k := range kids {
		s.tab.create(k.l, k.cp)
		if !slices.Contains(p.ChildShardIDs, k.l.ShardID) {
			p.ChildShardIDs = append(p.ChildShardIDs, k.l.ShardID)
			p.UpdatedAt = time.Now()
		}
	}
	return nil
}

// GetLease implements [checkpoint.Store].
func (s *Store) GetLease(_ context.Context, app, shard string) (checkpoint.Lease, error) {
	if err := s.check("get lease"); err != nil {
		return checkpoint.Lease{}, err
	}
	if err := validIDs(app, shard); err != nil {
		return checkpoint.Lease{}, fmt.Errorf("get lease: %w", err)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	l := s.tab.leases[[2]string{app, shard}]
	if l == nil {
		return checkpoint.Lease{}, fmt.Errorf("get lease %s: %w", shard, checkpoint.ErrNotFound)
	}
	return read(l), nil
}

// ListLeases implements [checkpoint.Store].
func (s *Store) ListLeases(_ context.Context, app string) ([]checkpoint.Lease, error) {
	if err := s.check("list leases"); err != nil {
		return nil, err
	}
	if app == "" {
		return nil, fmt.Errorf("list leases: %w", checkpoint.ErrInvalid)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	var out []checkpoint.Lease
	for key, l := range s.tab.leases {
		if key[0] == app {
			out = append(out, read(l))
		}
	}
	slices.SortFunc(out, byKey)
	return out, nil
}

// byKey orders leases by stream, then shard ID, as ListLeases returns
// them.
func byKey(a, b checkpoint.Lease) int {
	if c := strings.Compare(a.Stream, b.Stream); c != 0 {
		return c
	}
	return strings.Compare(a.ShardID, b.ShardID)
}

// fenced applies change to the lease l is a copy of, if the fence holds:
// the counter (and, unless anyOwner, the owner) still those of l. change
// returns the event the change causes ("" for none) or an error that
// leaves the lease as it was; the counter moves on, and with extend the
// expiry too (if the lease still has an owner).
func (s *Store) fenced(op string, l checkpoint.Lease, anyOwner, extend bool, change func(cur *checkpoint.Lease) (checkpoint.EventType, error)) (checkpoint.Lease, error) {
	if err := s.check(op); err != nil {
		return checkpoint.Lease{}, err
	}
	if err := validIDs(l.Application, l.Key()); err != nil {
		return checkpoint.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if l.Owner == "" {
		return checkpoint.Lease{}, fmt.Errorf("%s: lease copy has no owner: %w", op, checkpoint.ErrInvalid)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	cur := s.tab.leases[[2]string{l.Application, l.Key()}]
	switch {
	case cur == nil:
		return checkpoint.Lease{}, fmt.Errorf("%s %s: %w", op, l.ShardID, checkpoint.ErrNotFound)
	case cur.Counter != l.Counter || (!anyOwner && cur.Owner != l.Owner):
		return checkpoint.Lease{}, fmt.Errorf("%s %s: held by %q at %d, copy says %q at %d: %w",
			op, l.ShardID, cur.Owner, cur.Counter, l.Owner, l.Counter, checkpoint.ErrLeaseLost)
	}
	next := read(cur)
	ev, err := change(&next)
	if err != nil {
		return checkpoint.Lease{}, fmt.Errorf("%s %s: %w", op, l.ShardID, err)
	}
	now := time.Now()
	next.Counter++
	next.UpdatedAt = now
	extend = extend && next.Owner != "" // (a hand-off without a request releases)
	if extend {
		next.ExpiresAt = now.Add(s.failover)
	}
	next.Expired = false
	*cur = next
	if extend {
		s.tab.expireLater(cur)
	}
	if ev != "" {
		s.tab.notify(eventOf(ev, cur))
	}
	return read(cur), nil
}

// eventOf is the event ev of the lease l, as it is now.
func eventOf(ev checkpoint.EventType, l *checkpoint.Lease) checkpoint.Event {
	return checkpoint.Event{Type: ev, Application: l.Application, Stream: l.Stream, ShardID: l.ShardID, Owner: l.Owner, Counter: l.Counter, HandoffTo: l.HandoffTo}
}

// clearHandoff ends a hand-off request (every change of owner does).
func clearHandoff(l *checkpoint.Lease) { l.HandoffTo, l.HandoffExpiresAt = "", time.Time{} }

// TakeLease implements [checkpoint.Store].
func (s *Store) TakeLease(_ context.Context, l checkpoint.Lease, owner string) (checkpoint.Lease, error) {
	if owner == "" {
		return checkpoint.Lease{}, fmt.Errorf("take lease: empty owner: %w", checkpoint.ErrInvalid)
	}
	want := l
	want.Owner = owner
	return s.fenced("take lease", want, true, true, func(cur *checkpoint.Lease) (checkpoint.EventType, error) {
		ev := checkpoint.EventType("")
		if cur.Owner != owner {
			cur.OwnerSwitchesSinceCheckpoint++
			ev = checkpoint.EventTaken
		}
		cur.Owner = owner
		clearHandoff(cur)
		return ev, nil
	})
}

// RenewLease implements [checkpoint.Store].
func (s *Store) RenewLease(_ context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return s.fenced("renew lease", l, false, true, func(*checkpoint.Lease) (checkpoint.EventType, error) { return "", nil })
}

// ReleaseLease implements [checkpoint.Store].
func (s *Store) ReleaseLease(_ context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return s.fenced("release lease", l, false, false, func(cur *checkpoint.Lease) (checkpoint.EventType, error) {
		cur.Owner, cur.ExpiresAt = "", time.Time{}
		clearHandoff(cur)
		return checkpoint.EventReleased, nil
	})
}

// Checkpoint implements [checkpoint.Store].
func (s *Store) Checkpoint(_ context.Context, l checkpoint.Lease, cp checkpoint.Checkpoint) (checkpoint.Lease, error) {
	return s.checkpoint("checkpoint", l, cp, false)
}

// PrepareCheckpoint implements [checkpoint.Store].
func (s *Store) PrepareCheckpoint(_ context.Context, l checkpoint.Lease, cp checkpoint.Checkpoint) (checkpoint.Lease, error) {
	return s.checkpoint("prepare checkpoint", l, cp, true)
}

func (s *Store) checkpoint(op string, l checkpoint.Lease, cp checkpoint.Checkpoint, prepare bool) (checkpoint.Lease, error) {
	if err := cp.Validate(); err != nil {
		return checkpoint.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	if cp.IsInitial() {
		return checkpoint.Lease{}, fmt.Errorf("%s: %s is an initial position: %w", op, cp, checkpoint.ErrInvalid)
	}
	return s.fenced(op, l, false, true, func(cur *checkpoint.Lease) (checkpoint.EventType, error) {
		if cp.Compare(cur.Checkpoint) < 0 {
			return "", fmt.Errorf("%s is behind %s: %w", cp, cur.Checkpoint, checkpoint.ErrCheckpointBackwards)
		}
		if prepare {
			p := cp
			cur.PendingCheckpoint = &p
			return "", nil
		}
		ended := cp.IsShardEnd() && !cur.Checkpoint.IsShardEnd()
		cur.Checkpoint, cur.PendingCheckpoint, cur.OwnerSwitchesSinceCheckpoint = cp, nil, 0
		if ended {
			return checkpoint.EventShardEnded, nil
		}
		return "", nil
	})
}

// DeleteLease implements [checkpoint.Store].
func (s *Store) DeleteLease(_ context.Context, app, shard string) error {
	if err := s.check("delete lease"); err != nil {
		return err
	}
	if err := validIDs(app, shard); err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	key := [2]string{app, shard}
	l := s.tab.leases[key]
	if l == nil {
		return fmt.Errorf("delete lease %s: %w", shard, checkpoint.ErrNotFound)
	}
	delete(s.tab.leases, key)
	s.tab.notify(eventOf(checkpoint.EventDeleted, l))
	return nil
}

// Listen delivers the application's events until ctx ends or the store is
// closed. Expiries are announced when they pass (expireLater).
func (s *Store) Listen(ctx context.Context, app string) (<-chan checkpoint.Event, error) {
	if app == "" {
		return nil, fmt.Errorf("listen: %w", checkpoint.ErrInvalid)
	}
	l := &listener{app: app, ch: make(chan checkpoint.Event, 256)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("listen: %w", checkpoint.ErrClosed)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.tab.mu.Lock()
	s.tab.listeners[l] = true
	s.tab.mu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		s.tab.mu.Lock()
		delete(s.tab.listeners, l)
		close(l.ch)
		s.tab.mu.Unlock()
	}()
	return l.ch, nil
}

// Close stops the store's listeners and waits for them; later calls
// fail with checkpoint.ErrClosed. The table is left as it is.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
