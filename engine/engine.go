package engine

import (
	"context"
	"errors"
	"strconv"
)

// Errors an engine returns. They are wrapped; test with errors.Is.
var (
	// ErrClosed is returned by a Log or Engine used after Close, and by a
	// Log whose data was deleted.
	ErrClosed = errors.New("engine: closed")
	// ErrSealed is returned by Append on a sealed log.
	ErrSealed = errors.New("engine: log sealed")
	// ErrNotFound reports a catalog record or log that does not exist.
	ErrNotFound = errors.New("engine: not found")
	// ErrExists reports a catalog record or log that already exists.
	ErrExists = errors.New("engine: already exists")
	// ErrConflict reports a compare-and-set whose expected version is not
	// the stored one: somebody else changed the record first.
	ErrConflict = errors.New("engine: version conflict")
	// ErrInvalidBatch reports an Append with no records or more than the
	// engine takes in one batch.
	ErrInvalidBatch = errors.New("engine: invalid batch")
	// ErrCorrupt reports stored data that fails validation while read.
	ErrCorrupt = errors.New("engine: corrupt data")
)

// MaxBatchRecords is the most records one Append may carry: a record's
// index within its batch is 16 bits.
const MaxBatchRecords = 1<<16 - 1

// Engine stores shard logs and the metadata catalog. All methods are safe for
// concurrent use.
type Engine interface {
	// Catalog returns the engine's metadata catalog.
	Catalog() Catalog
	// CreateLog makes a new, empty, unsealed shard log. It fails with
	// ErrExists if the engine holds data under id: an id is never reused.
	CreateLog(ctx context.Context, id LogID) (Log, error)
	// OpenLog returns the log id, which CreateLog made earlier (possibly in
	// an earlier process). A log created but never written to may be
	// reported empty rather than ErrNotFound. Opening the same id twice
	// returns handles that share one log.
	OpenLog(ctx context.Context, id LogID) (Log, error)
	// DeleteLog removes a log and its data. Handles of it fail with
	// ErrClosed afterwards and their Changed channels are closed. Deleting a
	// log that does not exist is not an error.
	DeleteLog(ctx context.Context, id LogID) error
	// Logs lists every log the engine holds data for, in no order. The
	// server deletes those its catalog does not name.
	Logs(ctx context.Context) ([]LogID, error)
	// Close syncs and closes every log and the catalog.
	Close() error
}

// LogID names a shard log: the stream incarnation (StreamMeta.ID, never
// reused) and the shard index within it.
type LogID struct {
	Stream string
	Shard  uint32
}

// String formats id as "stream/shard".
func (id LogID) String() string { return id.Stream + "/" + strconv.FormatUint(uint64(id.Shard), 10) }

// Log is one shard's ordered, append-only sequence of records. Positions are
// the engine's: they order records, and Offset fits in 56 bits (it is carried
// in sequence numbers). All methods are safe for concurrent use.
type Log interface {
	// Append stores recs as one batch, all or nothing, and returns the
	// position of the first record (the others follow at Index+1, +2, ...)
	// and the arrival time shared by all of them. When Append returns nil the
	// batch is as durable as the engine promises (for the file engine in
	// FsyncAlways mode: on disk). Arrival times never decrease within a log.
	// Append on a sealed log fails with ErrSealed.
	Append(ctx context.Context, recs []Record) (first Position, arrivalMillis int64, err error)
	// Read returns records from the first at or after from, at most
	// maxRecords of them and, beyond the first record, at most maxBytes of
	// partition keys and data. next is where the following Read starts. A
	// read at or past the end returns no entries and next = from (or the
	// end). Entries never include data that is not yet durable.
	Read(ctx context.Context, from Position, maxRecords, maxBytes int) (entries []Entry, next Position, err error)
	// SeekTime returns the position of the first retained record whose
	// arrival time is at or after ms, or End if there is none (so never a
	// position before Info's Oldest).
	SeekTime(ctx context.Context, ms int64) (Position, error)
	// Info reports the oldest retained position, the end and the newest
	// arrival time.
	Info(ctx context.Context) (Info, error)
	// TrimBefore may delete records that arrived before ms (an engine trims
	// in whole units, such as segments, so some may stay). It reports how
	// many units it removed.
	TrimBefore(ctx context.Context, ms int64) (int, error)
	// Changed returns a channel closed at the next durable append, seal,
	// unseal or deletion of the log. Take it before reading, so that an
	// append landing after the read always wakes the waiter.
	Changed() <-chan struct{}
	// Seal makes every later Append fail with ErrSealed, waiting for the
	// appends in flight, and returns the end position after the last record.
	// Sealing is idempotent.
	Seal(ctx context.Context) (end Position, err error)
	// Unseal undoes Seal: a reshard whose catalog change failed opens the
	// parent again.
	Unseal(ctx context.Context) error
	// Sync makes every appended record durable (it matters only in the file
	// engine's interval and never modes).
	Sync(ctx context.Context) error
	// Close releases this handle. The log and its data remain.
	Close() error
}

// Info describes a log's extent.
type Info struct {
	// Oldest is the position of the oldest retained record, or End when the
	// log holds none.
	Oldest Position
	// End is the position the next appended record will have or follow.
	End Position
	// LastArrivalMillis is the arrival time of the newest record, 0 when
	// the log is empty.
	LastArrivalMillis int64
}

// Position locates a record in its log: an engine-defined offset of its
// batch (below 2^56) and its index within the batch. Positions order by
// Offset, then Index.
type Position struct {
	Offset uint64
	Index  uint16
}

// Compare returns -1, 0 or +1 as p orders before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Offset < q.Offset:
		return -1
	case p.Offset > q.Offset:
		return 1
	case p.Index < q.Index:
		return -1
	case p.Index > q.Index:
		return 1
	}
	return 0
}

// Less reports whether p orders before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// String formats p as "offset:index".
func (p Position) String() string {
	return strconv.FormatUint(p.Offset, 10) + ":" + strconv.FormatUint(uint64(p.Index), 10)
}

// Record is one record to append.
type Record struct {
	PartitionKey string
	Data         []byte
}

// Entry is one record read back.
type Entry struct {
	Pos           Position
	ArrivalMillis int64
	PartitionKey  string
	Data          []byte
}
