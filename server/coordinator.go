package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// The coordinator: on a shared catalog whose engine offers leases
// (engine.Leases), one server at a time holds the "coordinator" lease and
// runs the housekeeping that needs to run once: retention (trims and the
// dropping of expired closed shards) and the finishing of status periods
// that other servers began (resumeTransition). A server that gains the
// lease looks at every stream for such half-done transitions. The lease is
// renewed every third of its length; a server that dies loses it when it
// runs out. Every job is idempotent, so two coordinators at once (a lease
// judged by clocks that disagree) cost work, never correctness.

const (
	coordinatorLease = "coordinator"
	coordinatorTTL   = 15 * time.Second
)

// housekeeper reports whether this server runs the once-per-cluster
// housekeeping: always on a private engine or a shared one without leases,
// else only while it holds the coordinator lease.
func (s *Server) housekeeper() bool {
	if !s.shared() {
		return true
	}
	if _, ok := s.eng.(engine.Leases); !ok {
		return true
	}
	return s.coordinator.Load()
}

// coordinate campaigns for the coordinator lease until Shutdown, then
// gives it up. It runs on a background goroutine.
func (s *Server) coordinate(l engine.Leases) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	holder := hex.EncodeToString(b[:])
	tick := time.NewTicker(coordinatorTTL / 3)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), coordinatorTTL/3)
		ok, err := l.AcquireLease(ctx, coordinatorLease, holder, coordinatorTTL)
		cancel()
		if err != nil {
			s.log.Warn("renew the coordinator lease", zap.Error(err))
			ok = false
		}
		if was := s.coordinator.Swap(ok); was != ok {
			s.log.Info("coordinator", zap.Bool("holds_lease", ok), zap.String("holder", holder))
			if ok {
				for _, st := range s.snapshot() {
					s.resumeTransition(st, "")
				}
			}
		}
		select {
		case <-s.done:
			if s.coordinator.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if err := l.ReleaseLease(ctx, coordinatorLease, holder); err != nil {
					s.log.Warn("release the coordinator lease", zap.Error(err))
				}
				cancel()
			}
			return
		case <-tick.C:
		}
	}
}
