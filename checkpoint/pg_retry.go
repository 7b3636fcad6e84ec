package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// retryable reports whether err is transient: the same call, made again on
// another connection a moment later, may well succeed. It is the single place
// where the store classifies database errors.
func retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller's ctx ended (pgconn reports that as these errors, or
		// as a timeout wrapping them); retrying would outlive the caller.
		return false
	case pgconn.SafeToRetry(err):
		// pgx knows the request never reached the server (e.g. a dead
		// pooled connection found on first write).
		return true
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"55P03", // lock_not_available
			"57P01", // admin_shutdown: our backend was terminated
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: the server is starting up
			"53300", // too_many_connections
			"53400": // configuration_limit_exceeded
			return true
		}
		// Class 08: connection exceptions.
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08"
	}

	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		// Could not connect (refused, DNS, TLS handshake cut short...):
		// the server may be restarting. Bad credentials come back as a
		// PgError (28P01) wrapped in the ConnectError and were answered
		// above.
		return true
	}

	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server closed the connection mid-conversation.
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return true
	case errors.Is(err, net.ErrClosed):
		// The connection was closed under the call (pgconn closes a
		// connection after a fatal error).
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		// A network timeout that is not the caller's ctx (checked above).
		return true
	}
	if pgconn.Timeout(err) {
		return true
	}
	return false
}

// retry runs fn until it succeeds, fails with an error that is not
// retryable, ctx ends or MaxRetryTime passes, sleeping with exponential
// back-off between attempts. fn receives the attempt number, from 1. The
// error returned is fn's last error, wrapped with op.
func (s *PGStore) retry(ctx context.Context, op string, fn func(ctx context.Context, attempt int) error) error {
	if err := s.life.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 25 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = s.cfg.MaxRetryTime
	b.Reset()
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil && s.afterAttempt != nil {
			err = s.afterAttempt(op, attempt)
		}
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return fmt.Errorf("%s: %w", op, err)
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err)
		}
		s.log.Debug("retrying", zap.String("op", op), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (after %d attempts; last error: %w)", op, ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}
