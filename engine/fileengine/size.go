package fileengine

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/shoalstream/shoal/engine"
)

var _ engine.Sizer = (*Engine)(nil)

// LogSize implements engine.Sizer: the bytes of the log's segment files
// and how many there are, from the file system (a log need not be open).
func (e *Engine) LogSize(_ context.Context, id engine.LogID) (int64, int, error) {
	dir, err := e.logDir(id)
	if err != nil {
		return 0, 0, err
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var bytes int64
	n := 0
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".log") {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile (a trim)
		}
		bytes += info.Size()
		n++
	}
	return bytes, n, nil
}

var _ engine.SizeTrimmer = (*Engine)(nil)

// TrimToSize implements engine.SizeTrimmer: it removes the oldest segment
// files of log id while its segments hold more than maxBytes, never the
// active one. A log within its budget (by the sizes of its files) is not
// opened; one beyond it is opened if idle, and the janitor closes it again.
// Only logs with a handle in this process (OpenLog or CreateLog) are
// trimmed: for others it removes nothing.
func (e *Engine) TrimToSize(ctx context.Context, id engine.LogID, maxBytes int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if e.closed.Load() {
		return 0, errClosed("trim " + id.String())
	}
	if maxBytes <= 0 {
		return 0, nil
	}
	bytes, _, err := e.LogSize(ctx, id)
	if err != nil || bytes <= maxBytes {
		return 0, err
	}
	e.mu.Lock()
	ls := e.logs[id]
	e.mu.Unlock()
	if ls == nil {
		return 0, nil
	}
	sl, err := ls.acquire()
	if err != nil {
		return 0, err
	}
	n, err := sl.TrimToSize(maxBytes)
	ls.release()
	if err != nil {
		return n, ls.mapErr("trim to size", err)
	}
	return n, nil
}
