package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/wire"
)

// Metrics receives the server's measurements, in the vocabulary of Kinesis's
// CloudWatch metrics. The server calls it from its request goroutines
// concurrently: implementations must be safe for concurrent use and fast.
// Embed NopMetrics to implement only some methods. Package server imports
// no metrics library; server/prommetrics adapts this interface to
// Prometheus.
//
// Stream and consumer names label per-stream values. Shard IDs appear only
// in Shard, which the server calls only for the shard-level metrics a
// stream enabled with EnableEnhancedMonitoring.
type Metrics interface {
	// Call observes one API call: its operation, its latency (for
	// SubscribeToShard, until the event stream started or the call
	// failed) and its error code ("" on success) (CloudWatch: the
	// operations' .Latency and .Success).
	Call(op string, d time.Duration, code string)
	// Incoming counts records and bytes (data and partition keys) stored
	// in a stream by PutRecord or PutRecords (IncomingRecords,
	// IncomingBytes, PutRecord.Bytes, PutRecords.Bytes).
	Incoming(stream, op string, records, bytes int)
	// PutRecords observes one PutRecords call's records by outcome
	// (PutRecords.TotalRecords, SuccessfulRecords, FailedRecords,
	// ThrottledRecords; failed includes throttled).
	PutRecords(stream string, total, successful, failed, throttled int)
	// Outgoing counts records and bytes read from a stream, by GetRecords
	// (consumer "") or by a consumer's SubscribeToShard events, and the
	// reader's distance from the stream's newest record: the iterator age
	// of GetRecords, MillisBehindLatest of an event (GetRecords.Records,
	// .Bytes, .IteratorAgeMilliseconds; SubscribeToShardEvent.Records,
	// .Bytes, .MillisBehindLatest).
	Outgoing(stream, consumer string, records, bytes int, behind time.Duration)
	// Throttled counts what a shard's throughput limit refused: records of
	// PutRecord(s) (write) or GetRecords calls (WriteProvisionedThroughputExceeded,
	// ReadProvisionedThroughputExceeded). Records the disk guard refused
	// count as write-throttled too (they got the same error).
	Throttled(stream string, write bool, n int)
	// Subscription counts SubscribeToShard calls of a consumer by result:
	// "ok", "rate_exceeded" (LimitExceededException), "in_use", or another
	// error code (SubscribeToShard.Success, .RateExceeded).
	Subscription(stream, consumer, result string)
	// OpenSubscriptions reports the subscriptions running after each
	// change.
	OpenSubscriptions(n int)
	// Shard adds v to a shard-level metric (one of EnableEnhancedMonitoring's
	// names; for IteratorAgeMilliseconds v is the latest age in ms) of a
	// shard whose stream enabled it.
	Shard(stream, shard, metric string, v int64)
	// Reshard counts a finished reshard of a stream: "split", "merge", or
	// "scale" (UpdateShardCount), by hand or automatic.
	Reshard(stream, kind string)
	// ShardMonitoring reports the shard-level metrics a stream has enabled,
	// when that changes (and for every stream at start): an implementation
	// drops the per-shard values of the others.
	ShardMonitoring(stream string, metrics []string)
	// StreamDeleted reports that a stream is gone: an implementation drops
	// its values.
	StreamDeleted(stream string)
	// Append observes each append of a batch of records to a shard's log,
	// from the call to its return (durable, with the file engine's fsync
	// always): its latency, its records, and its error.
	Append(d time.Duration, records int, err error)
	// Fsync observes each group-commit sync of the default file engine:
	// how long fdatasync took, how many appended batches it made durable,
	// and its error (a failed sync fails those appends).
	Fsync(d time.Duration, batches int, err error)
	// DiskGuard reports each sample of the disk guard (diskguard.go):
	// whether it refuses writes, and the fraction of the data directory's
	// file system in use. Not called when the guard is off or a
	// measurement failed.
	DiskGuard(engaged bool, usedFraction float64)
	// Fault counts a fault injected by a fault injection rule (faults.go):
	// the operation it hit ("fsync" for kind slow-fsync) and the rule's
	// kind. A throttle rule of PutRecords counts once per call, however
	// many records it failed.
	Fault(op, kind string)
	// SizeTrimmed counts the storage units (the file engine's segments) of
	// a stream's shard logs that size-based retention (RetentionBytes)
	// removed in one housekeeping round.
	SizeTrimmed(stream string, units int)
}

// NopMetrics is a Metrics that records nothing, to embed in partial
// implementations.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) Call(string, time.Duration, string)               {}
func (NopMetrics) Incoming(string, string, int, int)                {}
func (NopMetrics) PutRecords(string, int, int, int, int)            {}
func (NopMetrics) Outgoing(string, string, int, int, time.Duration) {}
func (NopMetrics) Throttled(string, bool, int)                      {}
func (NopMetrics) Subscription(string, string, string)              {}
func (NopMetrics) OpenSubscriptions(int)                            {}
func (NopMetrics) Shard(string, string, string, int64)              {}
func (NopMetrics) Reshard(string, string)                           {}
func (NopMetrics) ShardMonitoring(string, []string)                 {}
func (NopMetrics) StreamDeleted(string)                             {}
func (NopMetrics) Fsync(time.Duration, int, error)                  {}
func (NopMetrics) Append(time.Duration, int, error)                 {}
func (NopMetrics) DiskGuard(bool, float64)                          {}
func (NopMetrics) Fault(string, string)                             {}
func (NopMetrics) SizeTrimmed(string, int)                          {}

// observeCall reports the call c to Config.Metrics, ending now with err.
func (s *Server) observeCall(c *caller, err error) {
	if c == nil {
		return
	}
	code := ""
	if err != nil {
		ae, _ := asAPIError(err)
		code = ae.Code
	}
	s.cfg.Metrics.Call(c.op, s.cfg.Now().Sub(c.start), code)
}

// observeRead reports records read from shard sh of st by GetRecords
// (consumer "") or a consumer's subscription: their count, their size as
// the API returned them, and how far behind the newest record the reader
// is (the age of the last record read).
func (s *Server) observeRead(st *stream, sh *shard, consumer string, recs []wire.Record, entries []engine.Entry) {
	n := 0
	for _, r := range recs {
		n += len(r.Data) + len(r.PartitionKey)
	}
	var age time.Duration
	if len(entries) > 0 {
		age = max(0, s.cfg.Now().Sub(time.UnixMilli(entries[len(entries)-1].ArrivalMillis)))
	}
	s.cfg.Metrics.Outgoing(st.name, consumer, len(recs), n, age)
	s.shardMetric(st, sh, smOutgoingBytes, int64(n))
	s.shardMetric(st, sh, smOutgoingRecords, int64(len(recs)))
	s.shardMetric(st, sh, smIteratorAge, age.Milliseconds())
}

// Ready reports whether the server can serve: it has not been shut down,
// and its storage answers (a read of the catalog's account record). The
// admin listener's /readyz asks it.
func (s *Server) Ready(ctx context.Context) error {
	select {
	case <-s.done:
		return errors.New("the server is shutting down")
	default:
	}
	if _, _, err := s.cat.Account(ctx); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}
