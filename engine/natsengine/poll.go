package natsengine

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the poll, which stands in for lost change notices: it asks
// the stream leader about every log somebody waits on.

// hasWaiter reports whether somebody holds a Changed channel of the log.
func (ls *logState) hasWaiter() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.changed != nil && !ls.dead
}

// poll is the fallback for lost notices: every PollInterval it asks the
// stream leader about each log that has a waiter on Changed.
func (e *Engine) poll() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		all := make([]*logState, 0, len(e.logs))
		for _, ls := range e.logs {
			all = append(all, ls)
		}
		e.mu.Unlock()
		for _, ls := range all {
			if e.ctx.Err() != nil {
				return
			}
			if !ls.hasWaiter() {
				continue
			}
			ctx, cancel := context.WithTimeout(e.ctx, e.cfg.RequestTimeout)
			si, err := e.streamInfo(ctx, ls.name)
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
				if ls.notFound() { // see missingGrace
					ls.kill()
					e.forget(ls)
				}
			case err == nil:
				ls.observeInfo(si)
			}
		}
	}
}
