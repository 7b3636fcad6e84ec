package fileengine

import (
	"slices"
	"time"

	"go.uber.org/zap"
)

// now returns the time since the engine started, in nanoseconds, on the
// monotonic clock: the scale of logState.lastUse.
func (e *Engine) now() int64 { return int64(time.Since(e.start)) }

// reserve takes a slot for a log about to be opened, first closing least
// recently used idle logs if MaxOpenLogs are open. When every open log is in
// use it takes the slot anyway: the bound is exceeded only while more logs
// than MaxOpenLogs are in use at once, and release brings it back.
func (e *Engine) reserve() error {
	limit := int64(e.cfg.MaxOpenLogs)
	for tries := 0; ; tries++ {
		e.mu.Lock()
		if e.closed.Load() {
			e.mu.Unlock()
			return errClosed("open log")
		}
		n := e.nOpen.Load()
		if n < limit || tries >= 3 {
			if n+1 > e.peakOpen.Load() {
				e.peakOpen.Store(n + 1)
			}
			e.nOpen.Add(1)
			e.mu.Unlock()
			return nil
		}
		victims := e.idleLocked(0)
		e.mu.Unlock()
		if e.closeVictims(victims, int(n-limit+1), 0) == 0 {
			tries = 3 // nothing can be closed now
		}
	}
}

// evict closes least recently used idle logs while more than MaxOpenLogs
// are open.
func (e *Engine) evict(idleFor int64) {
	e.mu.Lock()
	over := int(e.nOpen.Load()) - e.cfg.MaxOpenLogs
	if over <= 0 {
		e.mu.Unlock()
		return
	}
	victims := e.idleLocked(idleFor)
	e.mu.Unlock()
	e.closeVictims(victims, over, idleFor)
}

// idleLocked returns the open logs without users that were last used at
// least idleFor ago, least recently used first. e.mu is held.
func (e *Engine) idleLocked(idleFor int64) []*logState {
	now := e.now()
	var out []*logState
	for ls := range e.openSet {
		if ls.users.Load() == 0 && now-ls.lastUse.Load() >= idleFor {
			out = append(out, ls)
		}
	}
	slices.SortFunc(out, func(a, b *logState) int {
		x, y := a.lastUse.Load(), b.lastUse.Load()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return out
}

// closeVictims closes up to n of victims that are still idle and returns
// how many it closed.
func (e *Engine) closeVictims(victims []*logState, n int, idleFor int64) int {
	closed := 0
	for _, v := range victims {
		if closed >= n {
			break
		}
		if v.closeIfIdle(idleFor) {
			closed++
		}
	}
	return closed
}

// janitorInterval is how often the janitor looks for logs idle longer than
// idle: a quarter of it, within [1ms, 15s].
func janitorInterval(idle time.Duration) time.Duration {
	return min(max(idle/4, time.Millisecond), 15*time.Second)
}

// janitor closes logs idle longer than Config.IdleTimeout until Close.
func (e *Engine) janitor() {
	defer e.wg.Done()
	t := time.NewTicker(janitorInterval(e.cfg.IdleTimeout))
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			idleFor := int64(e.cfg.IdleTimeout)
			e.mu.Lock()
			victims := e.idleLocked(idleFor)
			e.mu.Unlock()
			e.closeVictims(victims, len(victims), idleFor)
		}
	}
}

// syncLoop syncs every open log each Config.FsyncInterval until Close
// (FsyncInterval mode).
func (e *Engine) syncLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.syncAll()
		}
	}
}

// syncAll syncs every open log, opening none.
func (e *Engine) syncAll() {
	e.mu.Lock()
	open := make([]*logState, 0, len(e.openSet))
	for ls := range e.openSet {
		open = append(open, ls)
	}
	e.mu.Unlock()
	for _, ls := range open {
		sl, err := ls.acquireOpen()
		if err != nil || sl == nil {
			continue
		}
		if err := sl.Sync(); err != nil {
			e.lg.Error("periodic sync failed", zap.Stringer("log", ls.id), zap.Error(err))
		}
		ls.release()
	}
}
