package server

import (
	"sync"
	"time"
)

// delayed is a pending status transition: CREATING, DELETING or UPDATING
// running out (streams) and CREATING or DELETING (consumers). It runs on a
// goroutine in the server's wait group, so Shutdown waits for a callback
// that has started and no callback starts after Shutdown began.
type delayed struct {
	stopOnce sync.Once
	stopCh   chan struct{}
}

// stop cancels the transition if it has not started. It never blocks.
func (d *delayed) stop() {
	if d == nil {
		return
	}
	d.stopOnce.Do(func() { close(d.stopCh) })
}

// after runs fn after d unless the returned handle is stopped or the server
// shuts down first. It returns nil (and never runs fn) once Shutdown began.
func (s *Server) after(d time.Duration, fn func()) *delayed {
	t := &delayed{stopCh: make(chan struct{})}
	if !s.goBackground(func() {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-t.stopCh:
			return
		case <-s.done:
			return
		}
		select {
		case <-t.stopCh:
			return
		case <-s.done:
			return
		default:
		}
		fn()
	}) {
		return nil
	}
	return t
}

// goBackground runs fn on a goroutine that Shutdown waits for, unless
// Shutdown already began (then it reports false and does not run fn).
func (s *Server) goBackground(fn func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgStopped {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
	return true
}

// stopBackground refuses new background goroutines and waits for the
// running ones, which see s.done closed.
func (s *Server) stopBackground() {
	s.bgMu.Lock()
	s.bgStopped = true
	s.bgMu.Unlock()
	s.bg.Wait()
}
