package engine

import (
	"context"
	"errors"
	"time"
)

// ErrIrreversible is returned by Unseal on an engine whose seal cannot be
// undone (a NATS JetStream stream, once sealed, stays sealed). A server
// that sealed a log for a reshard must then finish the reshard rather than
// roll it back.
var ErrIrreversible = errors.New("engine: seal cannot be undone")

// CatalogWatcher is implemented by engines whose catalog other processes
// share and change (the NATS engine: any number of shoal servers on one
// cluster). A server on such an engine follows the changes of the others,
// and it never deletes logs that its own view of the catalog does not name
// (another server may be creating them).
type CatalogWatcher interface {
	// WatchCatalog returns a channel that receives the name of every stream
	// whose record changes (stored or deleted, by any process, this one
	// included) after the call. It receives "" when changes may have been
	// missed (after a reconnect, or when the receiver fell behind): the
	// receiver must then compare every stream with the catalog. The channel
	// is closed when ctx ends or the engine closes.
	WatchCatalog(ctx context.Context) (<-chan string, error)
}

// Labels describe a log for operators: the Kinesis stream name and shard
// id. The server passes them to CreateLog in the context; an engine may
// record them where its own tools show them (the NATS engine puts them in
// the JetStream stream's metadata). They never change what a log does.
type Labels struct {
	StreamName string
	ShardID    string
}

type labelsKey struct{}

// WithLabels returns ctx carrying l for CreateLog.
func WithLabels(ctx context.Context, l Labels) context.Context {
	return context.WithValue(ctx, labelsKey{}, l)
}

// LabelsFrom returns the labels WithLabels put in ctx, if any.
func LabelsFrom(ctx context.Context) (Labels, bool) {
	l, ok := ctx.Value(labelsKey{}).(Labels)
	return l, ok
}

// Leases is implemented by shared engines that can elect one process for a
// job: the server holds the housekeeping lease ("coordinator") to run
// retention and to finish the status transitions that servers which died
// left behind. A lease is a hint, not a fence: two holders at once (clocks
// that disagree by more than the lease's length) must be harmless, and
// every job the server runs under it is idempotent.
type Leases interface {
	// AcquireLease takes lease name for holder, or renews it, until ttl
	// from now. It reports whether holder holds the lease now: false when
	// another holder's lease has not expired (or took it in between).
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives up the lease if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Sizer is implemented by engines that can tell how much storage a log
// holds: its bytes and its units (the file engine's segment files). The
// server's metrics report it per stream.
type Sizer interface {
	// LogSize returns the bytes and units of log id, zeros for a log
	// without data.
	LogSize(ctx context.Context, id LogID) (bytes int64, units int, err error)
}

// SizeTrimmer is implemented by engines that can bound a log by size: the
// server's size-based retention (a stream's RetentionBytes) needs it, and a
// server on an engine without it refuses streams that ask for one.
type SizeTrimmer interface {
	// TrimToSize deletes the oldest whole units (the file engine's
	// segments) of log id while the log holds more than maxBytes, never
	// the unit appended to: afterwards the log holds at most maxBytes, or
	// a single unit. Size wins over time: units go however young their
	// records. Reads in flight finish; later reads, SeekTime and Info see
	// the new oldest record. It reports how many units it removed; a
	// maxBytes <= 0, or a log that does not exist, removes none.
	TrimToSize(ctx context.Context, id LogID, maxBytes int64) (units int, err error)
}
