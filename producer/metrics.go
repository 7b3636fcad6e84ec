package producer

import "time"

// Metrics receives the producer's counters and timings. The producer calls
// it from its own goroutines, concurrently: implementations must be safe for
// concurrent use and fast (they run on the send path). Embed NopMetrics to
// implement only some methods. The prommetrics package has a Prometheus
// implementation.
//
// The names in parentheses are the KPL metrics each method corresponds to.
type Metrics interface {
	// UserRecordsPut counts user records that Kinesis stored (UserRecordsPut).
	UserRecordsPut(n int)
	// KinesisRecordsPut counts Kinesis records that Kinesis stored,
	// aggregated or not (KinesisRecordsPut), and the user records they held.
	KinesisRecordsPut(records, userRecords int)
	// PutRecordsCall observes one PutRecords call: how long it took, how
	// many records it carried, how many of them failed, and the error of the
	// call as a whole (nil if Kinesis answered; failed entries are not call
	// errors) (RequestTime, KinesisRecordsPerPutRecordsRequest).
	PutRecordsCall(d time.Duration, records, failed int, err error)
	// Retried counts Kinesis records that are sent again, by the error code
	// that failed them: an AWS error code such as
	// "ProvisionedThroughputExceededException" (a throttle) or
	// "InternalFailure", "WrongShard" for an aggregate that landed on a shard
	// that does not own all its user records, "Transport" for a call that
	// got no answer (RetriesPerRecord, ErrorsByCode).
	Retried(code string, n int)
	// UserRecordsFailed counts user records whose result is an error, by
	// code as for Retried, plus "Expired" (RecordTTL ran out) and "Closed"
	// (abandoned by Close) (UserRecordExpired, AllErrors).
	UserRecordsFailed(code string, n int)
	// BufferedTime observes, for each Kinesis record when it is first sent,
	// how long its oldest user record waited in the producer
	// (BufferingTime).
	BufferedTime(d time.Duration)
	// ShardMapRefreshed observes a ListShards refresh of the shard map: the
	// number of open shards, whether the map changed, and the error if the
	// refresh failed.
	ShardMapRefreshed(openShards int, changed bool, err error)
}

// NopMetrics is a Metrics that records nothing, to embed in partial
// implementations.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) UserRecordsPut(int)                            {}
func (NopMetrics) KinesisRecordsPut(int, int)                    {}
func (NopMetrics) PutRecordsCall(time.Duration, int, int, error) {}
func (NopMetrics) Retried(string, int)                           {}
func (NopMetrics) UserRecordsFailed(string, int)                 {}
func (NopMetrics) BufferedTime(time.Duration)                    {}
func (NopMetrics) ShardMapRefreshed(int, bool, error)            {}
