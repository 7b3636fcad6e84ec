package natsengine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// This file holds the deletion of logs: DeleteLog, and the grace period
// after which a stream JetStream keeps reporting missing counts as deleted.

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

// missingGrace is how long JetStream must keep answering "stream not
// found" for a log this process knew before the log counts as deleted
// without a deletion notice. A cluster restarting answers so for streams it
// has not recovered yet; a real deletion by another process is normally
// learned at once from its notice (or the process's own DeleteLog).
const missingGrace = 30 * time.Second

// notFound records a "stream not found" answer and reports whether the log
// now counts as deleted: the answer has held for missingGrace.
func (ls *logState) notFound() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	now := time.Now()
	if ls.missingSince.IsZero() {
		ls.missingSince = now
	}
	return now.Sub(ls.missingSince) >= missingGrace
}

// foundLocked clears notFound's record after a successful operation. The
// caller holds ls.mu.
func (ls *logState) foundLocked() { ls.missingSince = time.Time{} }

// lost turns the failure of an operation on the log into the error to
// return: a stream that JetStream has reported missing for missingGrace was
// deleted, so the log is dead and the error wraps ErrClosed; before that
// the error is an ordinary (retryable) one.
func (ls *logState) lost(op string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || apiCode(err) == codeStreamNotFound {
		if !ls.notFound() {
			return fmt.Errorf("natsengine: %s %v: stream not found (a recovering cluster, or deleted): %w", op, ls.id, err)
		}
		ls.kill()
		ls.e.forget(ls)
		return errClosed(op + " " + ls.id.String() + ": stream deleted")
	}
	if errors.Is(err, engine.ErrClosed) || errors.Is(err, engine.ErrInvalidBatch) {
		return err
	}
	return fmt.Errorf("natsengine: %s %v: %w", op, ls.id, err)
}
