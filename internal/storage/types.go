package storage

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// Errors returned by Log methods. They are wrapped; test with errors.Is.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("storage: log closed")
	// ErrCorrupt reports a batch that fails validation while being read.
	// Open repairs torn tails instead of returning it.
	ErrCorrupt = errors.New("storage: corrupt batch")
	// ErrInvalidBatch reports an Append with no records, more than
	// MaxBatchRecords records, or an encoding larger than MaxBatchBytes.
	ErrInvalidBatch = errors.New("storage: invalid batch")
	// ErrFull reports an Append that would move the log's end offset to
	// MaxOffset or beyond.
	ErrFull = errors.New("storage: log offset space exhausted")
)

const (
	// MaxOffset bounds logical offsets: every byte of the log lies below it.
	MaxOffset = 1 << 56
	// MaxBatchRecords is the most records one Append may carry.
	MaxBatchRecords = 1<<16 - 1
	// MaxBatchBytes is the largest encoded batch (header included).
	MaxBatchBytes = 1 << 30
	// DefaultSegmentBytes is the segment size used when Options.SegmentBytes
	// is zero.
	DefaultSegmentBytes = 64 << 20
)

// Position locates a record: the logical offset of its batch's first byte
// and its index within the batch. Positions order by Offset, then Index. It
// is the engine's type (engine.Position), so positions pass between the
// storage seam and this package without conversion.
type Position = engine.Position

// FsyncMode says when appended data is made durable.
type FsyncMode int

const (
	// FsyncAlways makes Append return only once its batch is durable
	// (fdatasync, shared between concurrent appenders). Readers see only
	// durable data. It is the zero value.
	FsyncAlways FsyncMode = iota
	// FsyncInterval makes Append return after write(2); the owner calls Sync
	// periodically. Readers see written data.
	FsyncInterval
	// FsyncNever never syncs on its own: not on Append, segment roll, or
	// Close. Sync still syncs the active segment when called.
	FsyncNever
)

// String returns "always", "interval" or "never".
func (m FsyncMode) String() string {
	switch m {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return "FsyncMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("storage: unknown fsync mode %q (want always, interval or never)", s)
}

// Options configures a Log.
type Options struct {
	// SegmentBytes is the size at which the active segment is rolled.
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// Fsync selects the durability mode; the zero value is FsyncAlways.
	Fsync FsyncMode
	// Logger receives recovery warnings and I/O errors; nil discards them.
	Logger *zap.Logger
	// Now is the clock for arrival timestamps; nil means time.Now.
	Now func() time.Time
	// OnSync, when set, observes each group-commit sync of appended data:
	// how long fdatasync took, how many appended batches it made durable,
	// and its error. It is called without the log's lock held and must be
	// fast.
	OnSync func(d time.Duration, batches int, err error)
}

// Record is one record to append (engine.Record).
type Record = engine.Record

// Entry is one record read back from the log (engine.Entry).
type Entry = engine.Entry
