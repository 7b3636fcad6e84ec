package server

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/fileengine"
)

// The disk guard refuses writes while the file system of the data
// directory is nearly full, so that the file engine never meets ENOSPC in
// the middle of an append: above the high-water mark (Config.DiskHighWater,
// 95 % used by default) PutRecord and PutRecords answer
// ProvisionedThroughputExceededException, which clients retry with
// back-off, and reads go on; writes resume once usage falls below the
// low-water mark (Config.DiskLowWater, 90 %). The gap between the marks
// keeps the guard from flapping around one value.
//
// The request path never measures the disk: a background goroutine samples
// the file system every Config.DiskCheckInterval and publishes the verdict
// as an atomic pointer, which a write loads once.

// Defaults of the disk guard.
const (
	defaultDiskHighWater     = 0.95
	defaultDiskLowWater      = 0.90
	defaultDiskCheckInterval = time.Second
)

// diskGuard is the state of the disk guard (see above).
type diskGuard struct {
	// refused is the error writes get while the guard is engaged, nil
	// otherwise. The sampler replaces it; writes only load it.
	refused atomic.Pointer[APIError]

	// mu serialises samples (the sampler goroutine, New's first sample and
	// the tests' SampleDiskNow) and guards the fields below. Leaf lock.
	mu      sync.Mutex
	usage   func() (used, total uint64, err error) // nil: no guard
	engaged bool
	failing bool // the last sample failed (logged once per run of failures)
}

// diskUsage returns the function that measures the data directory's file
// system: Config.DiskUsage, or by default statfs of DataDir when the server
// stores its data there (the file engine) on Linux; nil when there is
// nothing to guard.
func (c Config) diskUsage() func() (used, total uint64, err error) {
	if c.DiskUsage != nil {
		return c.DiskUsage
	}
	if c.DataDir == "" {
		return nil
	}
	if c.Engine != nil {
		if _, ok := c.Engine.(*fileengine.Engine); !ok {
			return nil
		}
	}
	return statfsUsage(c.DataDir)
}

// diskGuardOn reports whether the configuration turns the disk guard on
// (both marks not negative).
func (c Config) diskGuardOn() bool { return c.DiskHighWater >= 0 && c.DiskLowWater >= 0 }

// startDiskGuard takes the first sample of the data directory's file
// system, so that a server started on a full disk refuses writes at once,
// and starts the sampler goroutine (stopped by Shutdown). It does nothing
// when the guard is off or there is no file system to watch.
func (s *Server) startDiskGuard() {
	if !s.cfg.diskGuardOn() {
		return
	}
	s.disk.mu.Lock()
	s.disk.usage = s.cfg.diskUsage()
	s.disk.mu.Unlock()
	if s.disk.usage == nil {
		return
	}
	s.sampleDisk()
	s.goBackground(func() {
		t := time.NewTicker(s.cfg.DiskCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sampleDisk()
			}
		}
	})
}

// sampleDisk measures the file system once, engages or releases the guard
// and reports to Config.Metrics. A failed measurement changes nothing (it
// is logged, once per run of failures).
func (s *Server) sampleDisk() {
	g := &s.disk
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.usage == nil {
		return
	}
	used, total, err := g.usage()
	if err == nil && total == 0 {
		err = errors.New("the file system reports a size of 0")
	}
	if err != nil {
		if !g.failing {
			s.log.Warn("disk guard: cannot measure the data directory's file system; the guard keeps its state", zap.String("dir", s.cfg.DataDir), zap.Error(err))
		}
		g.failing = true
		return
	}
	g.failing = false
	frac := float64(used) / float64(total)
	high, low := s.cfg.DiskHighWater, s.cfg.DiskLowWater
	fields := []zap.Field{zap.String("dir", s.cfg.DataDir), zap.Float64("used_ratio", frac), zap.Uint64("used_bytes", used), zap.Uint64("total_bytes", total),
		zap.Float64("high_water", high), zap.Float64("low_water", low)}
	switch {
	case !g.engaged && frac >= high:
		g.engaged = true
		s.log.Warn("disk guard engaged: the data directory's file system is above the high-water mark; refusing writes (ProvisionedThroughputExceededException) until it is below the low-water mark", fields...)
	case g.engaged && frac < low:
		g.engaged = false
		s.log.Info("disk guard released: the data directory's file system is below the low-water mark; accepting writes again", fields...)
	}
	if g.engaged {
		g.refused.Store(ErrProvisionedThroughputExceeded.With("Rate exceeded: the server's disk is %s full (high-water mark %s); writes resume below %s.",
			percent(frac, 0), percent(high, 1), percent(low, 1)))
	} else {
		g.refused.Store(nil)
	}
	s.cfg.Metrics.DiskGuard(g.engaged, frac)
}

// diskRefused returns the error a write gets while the disk guard is
// engaged (a copy: the caller's error is its own), or nil.
func (s *Server) diskRefused() *APIError {
	e := s.disk.refused.Load()
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

// percent formats a fraction as a percentage rounded to at most prec
// decimals ("96%", "92.5%").
func percent(f float64, prec int) string {
	scale := math.Pow10(prec)
	return strconv.FormatFloat(math.Round(f*100*scale)/scale, 'f', -1, 64) + "%"
}
