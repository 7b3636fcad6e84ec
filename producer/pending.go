package producer

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// UserRecord is one record as the application puts it: a partition key, an
// optional explicit hash key (a decimal integer in [0, 2^128-1] that
// overrides the MD5 of the partition key in choosing the shard), and data.
type UserRecord = aggregation.UserRecord

// Result is the outcome of one Put.
type Result struct {
	// Record is the record that was put. Its Data is the caller's slice.
	Record UserRecord
	// ShardID and SequenceNumber say where Kinesis stored the record, and
	// SubSequenceNumber its index inside its aggregated record (0 if it was
	// sent on its own). Together they form the record's extended sequence
	// number, as the KCL reports and checkpoints it. Empty on error, except
	// that ShardID may name the shard of the last attempt.
	ShardID           string
	SequenceNumber    string
	SubSequenceNumber int64
	// Aggregated reports whether the record was stored inside an aggregated
	// record (even one holding only itself).
	Aggregated bool
	// Attempts is the number of PutRecords calls that carried the record.
	Attempts int
	// Err is nil if Kinesis stored the record. Otherwise it is a *PutError
	// (wrapping ErrRecordExpired, ErrClosed or the error from Kinesis),
	// whose chain errors.Is and errors.As see through.
	Err error
}

// Pending is the handle of one record given to Put: its result becomes
// available once Kinesis stored the record or the producer gave up on it.
// Every Pending gets exactly one result. A Pending is safe for concurrent
// use; its methods may be called any number of times.
type Pending struct {
	// Immutable after Put.
	rec      UserRecord
	hash     hashkey.Key
	deadline time.Time // Put time + RecordTTL
	gen      *generation
	size     int32 // len(PartitionKey) + len(Data)

	// Owned by the pipeline that holds the record.
	attempts int32
	last     *attempt // the last failed attempt, nil if none

	// The result, written once by resolve before done is set.
	aggregated bool
	subseq     int64
	shardID    string
	seq        string
	err        error

	done   atomic.Bool
	closed atomic.Bool                   // ch has been closed
	ch     atomic.Pointer[chan struct{}] // created on demand by Done or Wait
}

// attempt is what the producer remembers of a record's last failed
// attempt, for the error of ErrRecordExpired. The members of a Kinesis
// record share one.
type attempt struct {
	shard string
	err   error
}

// Done returns a channel that is closed when the result is available.
func (p *Pending) Done() <-chan struct{} {
	if c := p.ch.Load(); c != nil {
		return *c
	}
	c := make(chan struct{})
	if !p.ch.CompareAndSwap(nil, &c) {
		return *p.ch.Load()
	}
	// resolve either saw the channel (and closes it) or set done before we
	// stored it (and we close it); closed makes sure only one does.
	if p.done.Load() && p.closed.CompareAndSwap(false, true) {
		close(c)
	}
	return c
}

// Wait blocks until the result is available or ctx is done. Its error is
// the result's Err, or ctx.Err() if ctx ended first; ctx only bounds the
// waiting, the record's fate does not depend on it.
func (p *Pending) Wait(ctx context.Context) (Result, error) {
	if p.done.Load() {
		return p.result(), p.err
	}
	select {
	case <-p.Done():
		return p.result(), p.err
	case <-ctx.Done():
		return Result{Record: p.rec}, ctx.Err()
	}
}

// Result returns the result and true if it is available, or false if the
// record is still in flight.
func (p *Pending) Result() (Result, bool) {
	if !p.done.Load() {
		return Result{}, false
	}
	return p.result(), true
}

// Record returns the record that was put.
func (p *Pending) Record() UserRecord { return p.rec }

func (p *Pending) result() Result {
	return Result{
		Record: p.rec, ShardID: p.shardID, SequenceNumber: p.seq, SubSequenceNumber: p.subseq,
		Aggregated: p.aggregated, Attempts: int(p.attempts), Err: p.err,
	}
}

// resolve sets the result and wakes the waiters. It must be called exactly
// once, by the goroutine that owns the record.
func (p *Pending) resolve(shardID, seq string, subseq int64, aggregated bool, err error) {
	p.shardID, p.seq, p.subseq, p.aggregated, p.err = shardID, seq, subseq, aggregated, err
	p.done.Store(true)
	if c := p.ch.Load(); c != nil && p.closed.CompareAndSwap(false, true) {
		close(*c)
	}
}

// userRecord returns what the aggregator needs.
func (p *Pending) userRecord() UserRecord { return p.rec }
