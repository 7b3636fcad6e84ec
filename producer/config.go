package producer

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/aggregation"
)

// Kinesis limits the producer checks its configuration and records against.
const (
	// MaxPutRecordsEntries is the most records one PutRecords call carries.
	MaxPutRecordsEntries = 500
	// MaxPutRecordsBytes is the most data plus partition key bytes one
	// PutRecords call carries.
	MaxPutRecordsBytes = 10 << 20
	// MaxRecordBytesLimit is the largest maximum record size a stream can
	// have (UpdateMaxRecordSize), data plus partition key.
	MaxRecordBytesLimit = 10 << 20
	// MaxPartitionKeyLen is the longest partition key, in Unicode characters.
	MaxPartitionKeyLen = 256
	// ShardBytesPerSecond and ShardRecordsPerSecond are the write limits of
	// one provisioned shard, what Config.RateLimit is a percentage of.
	ShardBytesPerSecond   = 1 << 20
	ShardRecordsPerSecond = 1000
)

// Config configures a Producer. The zero value is valid except that
// StreamName or StreamARN must be set: every zero field takes the default
// its comment gives. Each comment also names the KPL property (Java
// KinesisProducerConfiguration) it corresponds to, where there is one.
type Config struct {
	// StreamName is the stream records are put to. Either it or StreamARN is
	// required. KPL: the stream argument of addUserRecord.
	StreamName string
	// StreamARN identifies the stream by ARN instead; when both are set the
	// requests carry both, and Kinesis checks that they agree. No KPL
	// equivalent.
	StreamARN string

	// MaxBufferedTime is how long a record may wait to be batched with others
	// before it is sent, unless rate limiting, retries or back-off of its
	// shard hold it longer. Zero means 100ms. KPL: RecordMaxBufferedTime.
	MaxBufferedTime time.Duration
	// RecordTTL is how long a record may stay in the producer, from Put
	// until Kinesis stores it, across every retry. A record that is not
	// stored by then fails with ErrRecordExpired (wrapping the last error it
	// met). Zero means 30s. KPL: RecordTtl.
	RecordTTL time.Duration

	// DisableAggregation sends every user record as its own Kinesis record
	// instead of packing the user records bound for one shard into KPL
	// aggregated records. Default false (aggregation on). KPL:
	// AggregationEnabled (inverted).
	DisableAggregation bool
	// AggregationMaxBytes bounds one aggregated Kinesis record: its outer
	// partition key plus data, as Kinesis counts it. A user record too large
	// for an aggregate is sent on its own. Zero means MaxRecordBytes (1 MiB
	// by default), the largest record the stream accepts: since a shard
	// sends about one aggregate per call when its records share keys (see
	// RelaxedOrdering), large aggregates keep its throughput up. Aggregates
	// are sealed after MaxBufferedTime anyway, so a large bound adds no
	// latency. At most MaxRecordBytes. KPL: AggregationMaxSize (whose
	// default is 51200 and counts data only).
	AggregationMaxBytes int
	// AggregationMaxCount bounds how many user records one aggregate holds.
	// Zero means no bound but AggregationMaxBytes. KPL: AggregationMaxCount.
	AggregationMaxCount int

	// CollectionMaxCount bounds how many Kinesis records one PutRecords call
	// carries. Zero means 500, which is also the maximum. KPL:
	// CollectionMaxCount.
	CollectionMaxCount int
	// CollectionMaxBytes bounds the data plus partition key bytes of one
	// PutRecords call. Zero means 5 MiB, or MaxRecordBytes if that is
	// larger; at least MaxRecordBytes and at most 10 MiB
	// (MaxPutRecordsBytes), the current Kinesis limit. KPL:
	// CollectionMaxSize.
	CollectionMaxBytes int
	// MaxRecordBytes is the largest user record (data plus partition key)
	// Put accepts, and the largest Kinesis record the producer builds: the
	// stream's maximum record size. Zero means 1 MiB, the Kinesis default; at
	// most 10 MiB. KPL: MaxUserRecordSize.
	MaxRecordBytes int

	// RateLimit caps what the producer sends to each shard, as a percentage
	// of the shard write limits (1 MiB/s and 1,000 Kinesis records/s; an
	// aggregated record counts once). Each predicted shard has a token
	// bucket for bytes and one for records, each holding at most one
	// second's worth. Zero means 100. KPL: RateLimit (whose default is 150).
	RateLimit int
	// DisableRateLimit turns the per-shard token buckets off: the producer
	// sends as fast as Kinesis answers and relies on retries when it is
	// throttled. Default false. No KPL equivalent (a very large RateLimit
	// comes close).
	DisableRateLimit bool

	// MaxBufferedRecords bounds the user records that have been Put but have
	// no result yet (including those whose OnResult callback has not
	// returned). Put blocks, and TryPut fails with ErrBufferFull, while the
	// bound is reached. Zero means 100,000. No KPL equivalent (the KPL has no
	// back-pressure).
	MaxBufferedRecords int
	// MaxBufferedBytes bounds the data plus partition key bytes of those
	// records likewise. Zero means 64 MiB; it must be at least
	// MaxRecordBytes. No KPL equivalent.
	MaxBufferedBytes int64

	// MaxConnections bounds the PutRecords calls in flight at once. Zero
	// means 24. KPL: MaxConnections.
	MaxConnections int
	// RequestTimeout bounds one PutRecords or ListShards call. A call that
	// times out may still have succeeded, so its records may be stored
	// twice. Zero means 6s. KPL: RequestTimeout.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential back-off (with
	// jitter) a shard waits before it retries failed records; it doubles on
	// each consecutive failure and resets on success. Zero means 100ms and
	// 5s. No KPL equivalent (the KPL retries without back-off).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// FailIfThrottled fails a record at once when Kinesis throttles it
	// (ProvisionedThroughputExceededException) instead of retrying it.
	// Default false. KPL: FailIfThrottled.
	FailIfThrottled bool

	// ShardMapRefreshInterval is how often the shard map is refreshed with
	// ListShards even when nothing suggests it changed. The map is also
	// refreshed whenever a record lands on a shard other than the predicted
	// one and when the stream is not found. Zero means one minute; negative
	// disables the periodic refresh. No KPL equivalent (the KPL refreshes
	// only on demand).
	ShardMapRefreshInterval time.Duration

	// RelaxedOrdering lets one PutRecords call carry several Kinesis records
	// of one shard that share a partition key. By default a shard's part of
	// a call never does: then a partial failure (Kinesis throttles or fails
	// one entry and stores a later one of the same shard) cannot store a
	// later record of a key before an earlier one, and per-key order holds
	// through retries (see the package documentation, "Ordering"). With few
	// distinct keys per shard that default sends about one aggregate per
	// shard per call; RelaxedOrdering sends more per call, at the price of
	// that guarantee, as the KPL does. Default false. No KPL equivalent.
	RelaxedOrdering bool

	// ResendWholeAggregate changes what happens when an aggregate lands on a
	// shard that owns only some of its user records (a stale shard map).
	// By default the owned ones are reported stored, with the receiving
	// shard's sequence number and their index as sub-sequence number, and
	// only the others are sent again: exactly once for readers that drop
	// only the out-of-range user records of an aggregate, as this
	// repository's consumer package does. The Java KCL drops such an
	// aggregate whole, so when KCL applications read the stream, set
	// ResendWholeAggregate: every user record of such an aggregate is then
	// sent again (exactly once for the KCL; per-record readers see the owned
	// ones twice). Default false. No KPL equivalent (the KPL keeps the
	// owned ones, and so loses them for KCL readers).
	ResendWholeAggregate bool

	// OnResult, if set, is called once with the result of every record, on
	// one goroutine, in completion order. It must not block: while it runs,
	// no other result is delivered, and the record still counts against
	// MaxBufferedRecords and MaxBufferedBytes until it returns. It is called
	// in addition to completing the record's Pending. Nil means no callback.
	// KPL: the callback added to the future addUserRecord returns.
	OnResult func(Result)
	// Logger receives structured logs: shard map changes at info level,
	// failed map refreshes at warn, retries at debug. Nil means zap.NewNop().
	// KPL: LogLevel.
	Logger *zap.Logger
	// Metrics receives counters and timings. Nil means none are recorded.
	// The prommetrics package adapts it to Prometheus. KPL: MetricsLevel and
	// the CloudWatch upload, which the producer leaves to the adapter.
	Metrics Metrics
}

// Defaults, each with its source.
const (
	defaultMaxBufferedTime    = 100 * time.Millisecond // KPL RecordMaxBufferedTime
	defaultRecordTTL          = 30 * time.Second       // KPL RecordTtl
	defaultCollectionMaxCount = MaxPutRecordsEntries   // KPL CollectionMaxCount
	defaultCollectionMaxBytes = 5 << 20                // KPL CollectionMaxSize
	defaultMaxRecordBytes     = 1 << 20                // Kinesis default max record size; KPL MaxUserRecordSize
	defaultRateLimit          = 100                    // the shard limits themselves (the KPL uses 150)
	defaultMaxBufferedRecords = 100_000                // ~0.2 s at 500k records/s
	defaultMaxBufferedBytes   = 64 << 20               // 64 shards' worth of one second
	defaultMaxConnections     = 24                     // KPL MaxConnections
	defaultRequestTimeout     = 6 * time.Second        // KPL RequestTimeout
	defaultMinBackoff         = 100 * time.Millisecond // about one round trip to Kinesis
	defaultMaxBackoff         = 5 * time.Second        // well inside the default RecordTTL
	defaultRefreshInterval    = time.Minute
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxBufferedTime == 0 {
		c.MaxBufferedTime = defaultMaxBufferedTime
	}
	if c.RecordTTL == 0 {
		c.RecordTTL = defaultRecordTTL
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = defaultMaxRecordBytes
	}
	if c.AggregationMaxBytes == 0 {
		c.AggregationMaxBytes = c.MaxRecordBytes
	}
	if c.CollectionMaxCount == 0 {
		c.CollectionMaxCount = defaultCollectionMaxCount
	}
	if c.CollectionMaxBytes == 0 {
		c.CollectionMaxBytes = max(defaultCollectionMaxBytes, c.MaxRecordBytes)
	}
	if c.RateLimit == 0 {
		c.RateLimit = defaultRateLimit
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = defaultMaxBufferedRecords
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = max(defaultMaxBufferedBytes, int64(c.MaxRecordBytes))
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(defaultMaxBackoff, c.MinBackoff)
	}
	if c.ShardMapRefreshInterval == 0 {
		c.ShardMapRefreshInterval = defaultRefreshInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	return c
}

// validate returns every problem of a config with defaults applied.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.StreamName == "" && c.StreamARN == "" {
		add("StreamName or StreamARN is required")
	}
	if len(c.StreamName) > 128 {
		add("StreamName is %d characters long, the limit is 128", len(c.StreamName))
	}
	durations := []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{
		{"MaxBufferedTime", c.MaxBufferedTime, time.Millisecond},
		{"RecordTTL", c.RecordTTL, 100 * time.Millisecond}, // KPL minimum
		{"RequestTimeout", c.RequestTimeout, time.Millisecond},
		{"MinBackoff", c.MinBackoff, time.Millisecond},
		{"MaxBackoff", c.MaxBackoff, time.Millisecond},
	}
	for _, d := range durations {
		if d.d < d.min {
			add("%s %v is below %v", d.name, d.d, d.min)
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		add("MaxBackoff %v is below MinBackoff %v", c.MaxBackoff, c.MinBackoff)
	}
	ranges := []struct {
		name     string
		v        int64
		min, max int64
	}{
		{"MaxRecordBytes", int64(c.MaxRecordBytes), 1, MaxRecordBytesLimit},
		{"AggregationMaxBytes", int64(c.AggregationMaxBytes), 64, int64(c.MaxRecordBytes)}, // KPL minimum 64
		{"AggregationMaxCount", int64(c.AggregationMaxCount), 0, 1 << 31},
		{"CollectionMaxCount", int64(c.CollectionMaxCount), 1, MaxPutRecordsEntries},
		{"CollectionMaxBytes", int64(c.CollectionMaxBytes), int64(c.MaxRecordBytes), MaxPutRecordsBytes},
		{"RateLimit", int64(c.RateLimit), 1, 1 << 20},
		{"MaxBufferedRecords", int64(c.MaxBufferedRecords), 1, 1 << 40},
		{"MaxBufferedBytes", c.MaxBufferedBytes, int64(c.MaxRecordBytes), 1 << 50},
		{"MaxConnections", int64(c.MaxConnections), 1, 1024},
	}
	for _, r := range ranges {
		if r.v < r.min || r.v > r.max {
			add("%s %d is not in [%d, %d]", r.name, r.v, r.min, r.max)
		}
	}
	if c.AggregationMaxBytes > 0 && c.AggregationMaxBytes > aggregation.LimitMaxBytes {
		add("AggregationMaxBytes %d is above %d", c.AggregationMaxBytes, aggregation.LimitMaxBytes)
	}
	if len(errs) > 0 {
		return fmt.Errorf("producer config: %w", errors.Join(errs...))
	}
	return nil
}
