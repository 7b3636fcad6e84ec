package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// Graceful hand-off and lease administration.

// RequestHandoff implements [checkpoint.HandoffStore].
func (s *Store) RequestHandoff(_ context.Context, l checkpoint.Lease, requester string) (checkpoint.Lease, error) {
	const op = "request hand-off"
	if err := s.check(op); err != nil {
		return checkpoint.Lease{}, err
	}
	switch err := validIDs(l.Application, l.Key()); {
	case err != nil:
		return checkpoint.Lease{}, fmt.Errorf("%s: %w", op, err)
	case requester == "" || l.Owner == "" || l.Owner == requester:
		return checkpoint.Lease{}, fmt.Errorf("%s: requester %q, owner %q: %w", op, requester, l.Owner, checkpoint.ErrInvalid)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	cur := s.tab.leases[[2]string{l.Application, l.Key()}]
	if cur == nil {
		return checkpoint.Lease{}, fmt.Errorf("%s %s: %w", op, l.ShardID, checkpoint.ErrNotFound)
	}
	seen := read(cur)
	switch {
	case seen.Owner != l.Owner:
		return checkpoint.Lease{}, fmt.Errorf("%s %s: owned by %q, copy says %q: %w", op, l.ShardID, seen.Owner, l.Owner, checkpoint.ErrLeaseLost)
	case seen.Expired:
		return checkpoint.Lease{}, fmt.Errorf("%s %s: expired: take it instead: %w", op, l.ShardID, checkpoint.ErrLeaseLost)
	case seen.HandoffPending() && seen.HandoffTo != requester:
		return checkpoint.Lease{}, fmt.Errorf("%s %s: hand-off to %q pending: %w", op, l.ShardID, seen.HandoffTo, checkpoint.ErrLeaseLost)
	}
	now := time.Now()
	cur.HandoffTo, cur.HandoffExpiresAt, cur.UpdatedAt = requester, now.Add(s.failover), now
	s.tab.notify(eventOf(checkpoint.EventHandoffRequested, cur))
	return read(cur), nil
}

// HandOffLease implements [checkpoint.HandoffStore].
func (s *Store) HandOffLease(_ context.Context, l checkpoint.Lease) (checkpoint.Lease, error) {
	return s.fenced("hand off lease", l, false, true, func(cur *checkpoint.Lease) (checkpoint.EventType, error) {
		to := cur.HandoffTo
		clearHandoff(cur)
		if to == "" {
			cur.Owner, cur.ExpiresAt = "", time.Time{}
			return checkpoint.EventReleased, nil
		}
		cur.Owner = to
		cur.OwnerSwitchesSinceCheckpoint++
		return checkpoint.EventTaken, nil
	})
}

var _ checkpoint.Admin = (*Store)(nil)

// ResetLeases implements [checkpoint.Admin].
func (s *Store) ResetLeases(_ context.Context, app string, keys []string, cp checkpoint.Checkpoint) ([]checkpoint.Lease, error) {
	const op = "reset leases"
	if err := s.check(op); err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range keys {
		if err := validIDs(app, id); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch err := cp.Validate(); {
	case app == "":
		return nil, fmt.Errorf("%s: empty application name: %w", op, checkpoint.ErrInvalid)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", op, err)
	case cp.IsShardEnd():
		return nil, fmt.Errorf("%s: %s is no position to resume from: %w", op, cp, checkpoint.ErrInvalid)
	case !cp.IsSentinel() && len(ids) != 1:
		return nil, fmt.Errorf("%s: sequence number %s for %d shards: %w", op, cp, len(ids), checkpoint.ErrInvalid)
	}
	if !cp.Timestamp.IsZero() {
		cp.Timestamp = cp.Timestamp.UTC().Truncate(time.Microsecond)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	var targets []*checkpoint.Lease
	for key, l := range s.tab.leases {
		if key[0] == app && (len(ids) == 0 || slices.Contains(ids, key[1])) {
			targets = append(targets, l)
		}
	}
	if len(targets) == 0 || len(targets) < len(ids) {
		return nil, fmt.Errorf("%s of %s: %d of the leases found: %w", op, app, len(targets), checkpoint.ErrNotFound)
	}
	now := time.Now()
	out := make([]checkpoint.Lease, 0, len(targets))
	for _, l := range targets {
		l.Checkpoint, l.PendingCheckpoint, l.OwnerSwitchesSinceCheckpoint = cp, nil, 0
		l.Owner, l.ExpiresAt = "", time.Time{}
		clearHandoff(l)
		l.Counter++
		l.UpdatedAt = now
		s.tab.notify(eventOf(checkpoint.EventReset, l))
		out = append(out, read(l))
	}
	slices.SortFunc(out, byKey)
	return out, nil
}

// ForceRelease implements [checkpoint.Admin].
func (s *Store) ForceRelease(_ context.Context, app, shard string) (checkpoint.Lease, error) {
	const op = "force release"
	if err := s.check(op); err != nil {
		return checkpoint.Lease{}, err
	}
	if err := validIDs(app, shard); err != nil {
		return checkpoint.Lease{}, fmt.Errorf("%s: %w", op, err)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	l := s.tab.leases[[2]string{app, shard}]
	switch {
	case l == nil:
		return checkpoint.Lease{}, fmt.Errorf("%s %s: %w", op, shard, checkpoint.ErrNotFound)
	case l.Owner == "":
		return read(l), nil
	}
	l.Owner, l.ExpiresAt = "", time.Time{}
	clearHandoff(l)
	l.Counter++
	l.UpdatedAt = time.Now()
	s.tab.notify(eventOf(checkpoint.EventReleased, l))
	return read(l), nil
}

// DeleteApplication implements [checkpoint.Admin].
func (s *Store) DeleteApplication(_ context.Context, app string) (int, error) {
	const op = "delete application"
	if err := s.check(op); err != nil {
		return 0, err
	}
	if app == "" {
		return 0, fmt.Errorf("%s: empty application name: %w", op, checkpoint.ErrInvalid)
	}
	s.tab.mu.Lock()
	defer s.tab.mu.Unlock()
	n := 0
	for key, l := range s.tab.leases {
		if key[0] != app {
			continue
		}
		delete(s.tab.leases, key)
		s.tab.notify(eventOf(checkpoint.EventDeleted, l))
		n++
	}
	return n, nil
}
