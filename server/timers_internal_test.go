package server

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestAfterNeverRunsAfterShutdown checks the status-timer mechanism on a
// fake clock: a due timer runs, a stopped one never does, and once Shutdown
// has closed done and waited for the background goroutines, no pending
// timer runs however much time passes, and no new one is accepted.
func TestAfterNeverRunsAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Server{done: make(chan struct{})}
		var ran atomic.Int32
		s.after(time.Second, func() { ran.Add(1) })
		stopped := s.after(time.Minute, func() { ran.Add(10) })
		s.after(time.Hour, func() { ran.Add(100) })
		time.Sleep(2 * time.Second)
		synctest.Wait()
		stopped.stop()
		close(s.done) // as Shutdown does, then waits
		s.stopBackground()
		if d := s.after(time.Millisecond, func() { ran.Add(1000) }); d != nil {
			t.Fatal("a timer was accepted after Shutdown")
		}
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if got := ran.Load(); got != 1 {
			t.Fatalf("timer effects %d, want 1 (only the one due before Shutdown)", got)
		}
	})
}
