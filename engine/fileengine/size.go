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
