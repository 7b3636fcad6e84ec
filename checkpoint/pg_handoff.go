package checkpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RequestHandoff asks the owner of l to hand the lease over to requester.
// See HandoffStore.
func (s *PGStore) RequestHandoff(ctx context.Context, l Lease, requester string) (Lease, error) {
	key := leaseKey(l.Application, l.Key())
	op := "request hand-off of " + key
	switch err := validateIDs(l.Application, l.Key()); {
	case err != nil:
		return Lease{}, fmt.Errorf("%s: %w", op, err)
	case requester == "" || len(requester) > maxIDBytes:
		return Lease{}, fmt.Errorf("%s: requester must be 1 to %d bytes: %w", op, maxIDBytes, ErrInvalid)
	case l.Owner == "":
		return Lease{}, fmt.Errorf("%s: lease copy has no owner: %w", op, ErrInvalid)
	case l.Owner == requester:
		return Lease{}, fmt.Errorf("%s: %q owns it already: %w", op, requester, ErrInvalid)
	}
	tok := newToken()
	var out Lease
	err := s.retry(ctx, op, func(ctx context.Context, _ int) error {
		got, _, err := scanLease(s.pool.QueryRow(ctx, s.q.requestHandoff, l.Application, l.Key(), requester, l.Owner, tok, s.failoverSeconds()))
		if err == nil {
			out = got
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur, curTok, err := s.get(ctx, l.Application, l.Key())
		switch {
		case err != nil:
			return err
		case curTok == tok:
			out = cur // an earlier attempt committed; its reply was lost
			return nil
		}
		return handoffRefused(l, cur, requester)
	})
	return out, err
}

// handoffRefused explains why a request for the lease cur (read as l) by
// requester was refused.
func handoffRefused(l, cur Lease, requester string) error {
	switch {
	case cur.Owner != l.Owner:
		return fmt.Errorf("owned by %q, copy says %q: %w", cur.Owner, l.Owner, ErrLeaseLost)
	case cur.Expired:
		return fmt.Errorf("expired: take it instead: %w", ErrLeaseLost)
	case cur.HandoffPending() && cur.HandoffTo != requester:
		return fmt.Errorf("hand-off to %q pending: %w", cur.HandoffTo, ErrLeaseLost)
	}
	// The lease changed between the two statements.
	return fmt.Errorf("changed while asked for: %w", ErrLeaseLost)
}

// HandOffLease gives a lease the caller holds to the worker that asked for
// it. See HandoffStore.
func (s *PGStore) HandOffLease(ctx context.Context, l Lease) (Lease, error) {
	return s.fenced(ctx, "hand off lease", l, s.q.handOff, func(cur Lease) error { return fenceError(l, cur, nil) }, s.failoverSeconds())
}
