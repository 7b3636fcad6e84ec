package fileengine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
)

// cleanMarker is the file Close leaves once every log is synced and closed.
// Open removes it; finding none (a crash, a kill, the first start, a data
// directory of an older shoal) makes Open recover every log at once instead
// of on first use.
//
// The marker only chooses when recovery happens, never whether: every
// opening of a log validates and repairs its tail anyway. Eager recovery
// after a crash leaves the disk tidy before the first request (a torn tail
// is cut at start, as an operator would expect), at the price of a slower
// start after a crash only.
const cleanMarker = "clean-shutdown"

// takeCleanMarker reports whether the previous engine in dir closed
// cleanly, and removes the marker durably so that a crash of this one is
// detected.
func takeCleanMarker(dir string) (bool, error) {
	err := os.Remove(filepath.Join(dir, cleanMarker))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	if err := syncDir(dir); err != nil {
		return false, err
	}
	return true, nil
}

// leaveCleanMarker records a clean close.
func leaveCleanMarker(dir string) error {
	_, err := writeFileAtomic(dir, cleanMarker, []byte("shoal file engine closed cleanly\n"))
	return err
}

// recoverAll opens and closes every shard log on disk, which validates each
// and truncates torn or corrupt tails. It runs a few logs at a time.
func (e *Engine) recoverAll() error {
	ids, err := e.Logs(context.Background())
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	e.lg.Info("recovering shard logs after an unclean shutdown", zap.Int("logs", len(ids)))
	work := make(chan engine.LogID)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(len(ids), max(runtime.GOMAXPROCS(0), 2)) {
		wg.Go(func() {
			for id := range work {
				dir, err := e.logDir(id)
				if err == nil {
					var sl *storage.Log
					if sl, err = storage.Open(dir, storage.Options{
						SegmentBytes: e.cfg.SegmentBytes, Fsync: e.cfg.Fsync, Logger: e.lg, Now: e.cfg.Now,
					}); err == nil {
						err = sl.Close()
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("recover %v: %w", id, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
