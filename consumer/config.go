package consumer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// Kinesis limits the worker checks its configuration against.
const (
	// MaxGetRecordsLimit is the most records one GetRecords call returns
	// (its Limit parameter's maximum).
	MaxGetRecordsLimit = 10000
	// maxIDBytes is the store's bound on application names and owners.
	maxIDBytes = 1024
	// minFailoverTime keeps the renewer from spinning.
	minFailoverTime = 100 * time.Millisecond
)

// InitialPosition is where the worker starts reading a shard that has no
// checkpoint yet: a shard the application has never processed.
type InitialPosition int

const (
	// Latest starts after the newest record: only records put after the
	// lease was created are processed. It is the zero value, as LATEST is
	// the KCL's default. Records put to a shard whose lease is still at
	// LATEST are skipped if the lease changes owner before the first
	// checkpoint.
	Latest InitialPosition = iota
	// TrimHorizon starts at the oldest record the stream still holds.
	TrimHorizon
	// AtTimestamp starts at the first record that arrived at or after
	// Config.InitialTimestamp.
	AtTimestamp
)

// String returns the KCL's name of the position.
func (p InitialPosition) String() string {
	switch p {
	case Latest:
		return "LATEST"
	case TrimHorizon:
		return "TRIM_HORIZON"
	case AtTimestamp:
		return "AT_TIMESTAMP"
	}
	return fmt.Sprintf("InitialPosition(%d)", int(p))
}

// Retrieval is how a Worker reads its shards.
type Retrieval int

const (
	// Polling reads each shard with GetShardIterator and GetRecords. It
	// is the zero value. KCL: PollingConfig.
	Polling Retrieval = iota
	// FanOut reads each shard through enhanced fan-out: a registered
	// stream consumer's SubscribeToShard event streams, which Kinesis
	// pushes with each consumer's own 2 MiB/s per shard and no polling
	// delay. KCL: FanOutConfig (the KCL's default).
	FanOut
)

// String returns the mode's name.
func (r Retrieval) String() string {
	switch r {
	case Polling:
		return "polling"
	case FanOut:
		return "fan-out"
	}
	return fmt.Sprintf("Retrieval(%d)", int(r))
}

// Config configures a Worker. The zero value is valid except that
// ApplicationName and StreamName (or StreamARN) are required: every other
// zero field takes the default its comment gives. Each comment names the
// KCL property (KCL 2.x/3.x ConfigsBuilder, LeaseManagementConfig,
// CoordinatorConfig, PollingConfig) it corresponds to, where there is one.
type Config struct {
	// ApplicationName names the consumer application: the workers that
	// share one application divide the stream's shards between them, and
	// its leases and checkpoints are kept under this name in the Store.
	// Required; at most 1024 bytes. KCL: applicationName (which also names
	// the KCL's lease table).
	ApplicationName string
	// StreamName is the stream to consume. Either it or StreamARN is
	// required. KCL: streamName.
	StreamName string
	// StreamARN identifies the stream by ARN instead; when both are set
	// the requests carry both.
	StreamARN string
	// WorkerID identifies this worker as the owner of its leases. It must
	// be unique among the application's running workers. Zero means the
	// host name, the process ID and a random suffix. At most 1024 bytes.
	// KCL: workerIdentifier.
	WorkerID string

	// InitialPosition is where a shard without a checkpoint is read from.
	// Zero means Latest. It applies to the leases the worker creates for
	// shards it discovers; the children of a shard that ended always start
	// at its first record (TRIM_HORIZON), as in the KCL. KCL:
	// initialPositionInStream (default LATEST).
	InitialPosition InitialPosition
	// InitialTimestamp is the time AtTimestamp starts at. Required with
	// AtTimestamp, and ignored otherwise. KCL: the timestamp of
	// InitialPositionInStreamExtended.
	InitialTimestamp time.Time

	// FailoverTime is how long a lease stays owned without a renewal:
	// after a worker dies, its leases are taken over after at most about
	// this long. The Store decides expiry (checkpoint.PGConfig.FailoverTime
	// for the PostgreSQL store) and this value must match it: the worker
	// renews every FailoverTime/3 and takes expired leases every
	// TakeInterval. Zero means the Store's value if it reports one (a
	// FailoverTime() time.Duration method), else 10s. At least 100ms. KCL:
	// failoverTimeMillis (10000).
	FailoverTime time.Duration
	// TakeInterval is how often the worker looks for leases to take or
	// steal when nothing told it to: it also looks at once when the Store
	// reports a lease released, expired, created, ended or deleted (Store
	// Listen events), so this is only the fallback. A worker below its
	// share that stole a lease looks again after FailoverTime/3 rather than
	// TakeInterval, so that a worker joining reaches its share in seconds.
	// Zero means 2×FailoverTime. KCL: derived from failoverTimeMillis,
	// (failover+25ms)×2.
	TakeInterval time.Duration
	// MaxLeasesForWorker caps the leases one worker holds. Shards beyond
	// what all the workers may hold are not processed. Zero means no cap.
	// KCL: maxLeasesForWorker (default unlimited).
	MaxLeasesForWorker int
	// MaxLeasesToStealAtOneTime bounds how many leases the worker steals
	// from an over-loaded worker in one round. Zero means 1; negative
	// disables stealing. KCL: maxLeasesToStealAtOneTime (1).
	MaxLeasesToStealAtOneTime int
	// NoGracefulHandoff makes rebalancing steal leases at once, as the
	// KCL 2.x does. By default, when the Store can hand leases over (a
	// checkpoint.HandoffStore, as checkpoint.PGStore and memstore are), a
	// worker below its share asks the owner of a lease for it instead of
	// stealing it: the owner finishes the batch in hand, calls its
	// Processor's ShutdownRequested (which checkpoints), and hands the
	// lease over; the worker that asked starts right after that
	// checkpoint, so no record is processed twice. If the owner does not
	// hand the lease over within the Store's failover time (an owner stuck
	// in ProcessRecords, or one that runs an older version of this
	// package), the worker that asked steals it as before. Crash failover
	// (leases that expire) is the same either way. KCL 3.x:
	// GracefulLeaseHandoffConfig's isGracefulLeaseHandoffEnabled
	// (inverted).
	NoGracefulHandoff bool
	// ShardSyncInterval is how often the worker lists the stream's shards
	// (ListShards) to create leases for new shards and delete the leases of
	// shards that were consumed and are gone. It also syncs at start, and
	// when a shard ends without naming its children. Zero means 60s. KCL:
	// shardSyncIntervalMillis (60000).
	ShardSyncInterval time.Duration

	// Retrieval chooses GetRecords polling (the zero value) or enhanced
	// fan-out. With FanOut the client given to New must implement
	// FanOutAPI, and MaxRecords and IdleTimeBetweenReads do not apply.
	// KCL: RetrievalConfig.retrievalSpecificConfig.
	Retrieval Retrieval
	// ConsumerName is the stream consumer FanOut reads as: Run registers
	// it, or reuses it if it exists, and waits until it is ACTIVE before
	// taking leases. Zero means ApplicationName, as in the KCL. Every
	// worker of an application must use the same consumer. KCL:
	// FanOutConfig.consumerName.
	ConsumerName string
	// ConsumerARN names an existing ACTIVE consumer instead; Run then
	// registers nothing. KCL: FanOutConfig.consumerArn.
	ConsumerARN string

	// MaxRecords is the Limit of each GetRecords call. Zero means 10000,
	// also the maximum. KCL: maxRecords (PollingConfig, 10000).
	MaxRecords int
	// IdleTimeBetweenReads is how long a shard's reader waits before its
	// next GetRecords call once it has caught up with the shard (the call
	// returned no record, or MillisBehindLatest was 0). A reader that is
	// behind calls again at once. Zero means 1s. Kinesis allows 5
	// GetRecords calls per second per shard, shared by every application
	// reading it; a smaller value lowers latency and costs calls. KCL:
	// idleTimeBetweenReadsInMillis (PollingConfig, 1500 in KCL 3).
	IdleTimeBetweenReads time.Duration
	// CallProcessRecordsEvenForEmptyRecordList calls ProcessRecords for
	// GetRecords results that hold no user record (useful to observe
	// MillisBehindLatest). Default false. KCL: the same name.
	CallProcessRecordsEvenForEmptyRecordList bool

	// TaskBackoff is the first wait before a failed call is made again:
	// GetRecords or GetShardIterator that failed or was throttled, or a
	// processor's Initialize, ProcessRecords or ShardEnded that returned an
	// error. The wait doubles, with jitter, on each consecutive failure, up
	// to MaxBackoff. Zero means 500ms. KCL: taskBackoffTimeMillis (500).
	TaskBackoff time.Duration
	// MaxBackoff bounds that wait. Zero means 10s. No KCL equivalent.
	MaxBackoff time.Duration
	// FailurePolicy says what happens to a batch whose ProcessRecords
	// keeps failing: the zero value retries it forever (the shard stalls,
	// nothing is skipped); a policy can instead stop the worker, skip the
	// batch, or hand it to a dead-letter handler after a number of
	// attempts. No KCL equivalent (the KCL skips the batch).
	FailurePolicy FailurePolicy
	// StallTimeout turns on the shard watchdog: a shard whose processing
	// makes no progress for this long while records wait for it (a
	// ProcessRecords call that does not return, a read that brings nothing
	// while the shard is behind) is logged, counted (Metrics.ShardStalled)
	// and its reader restarted: the ctx of the call in progress is
	// cancelled and, once the call returns, the shard is read again from
	// its first record not processed, through a new shard iterator (or
	// subscription). An idle shard (caught up, nothing to read) is never
	// stalled, nor is one waiting out the failure policy's back-off. Keep
	// it well above the longest ProcessRecords call and MaxBackoff. Zero
	// (the default) turns the watchdog off. No KCL equivalent.
	StallTimeout time.Duration
	// CatchUp processes child shards without waiting for their parents:
	// after a split or merge, a child's lease is taken as soon as it
	// exists (from a shard sync, every ShardSyncInterval, or from a
	// parent's end), while its parents may still have records to process.
	// Records of one partition key may then be processed out of order
	// across the reshard (the child's before the parent's): for
	// applications that do not need per-key order, and want a backlog on
	// the parents not to hold the children back. Default false, the KCL's
	// behaviour (BlockOnParentShardTask). No KCL equivalent.
	CatchUp bool
	// ShutdownTimeout bounds a graceful shutdown, after Run's ctx ends:
	// each shard's last ProcessRecords call, ShutdownRequested (where the
	// processor checkpoints) and the release of its lease. Shards still
	// busy at the deadline are abandoned: their leases expire after
	// FailoverTime instead. Zero means 30s. KCL: the timeout of
	// Scheduler.startGracefulShutdown's future (chosen by the caller).
	ShutdownTimeout time.Duration

	// Logger receives structured logs: lease changes and shard ends at
	// info level, retries and back-offs at debug, failures at warn and
	// error. Nil means zap.NewNop().
	Logger *zap.Logger
	// Metrics receives counters and timings. Nil means none are recorded.
	Metrics Metrics
}

// Defaults, each with its source.
const (
	defaultFailoverTime         = 10 * time.Second       // KCL failoverTimeMillis
	defaultShardSyncInterval    = 60 * time.Second       // KCL shardSyncIntervalMillis
	defaultMaxRecords           = MaxGetRecordsLimit     // KCL maxRecords
	defaultIdleTimeBetweenReads = time.Second            // KCL 2 idleTimeBetweenReadsInMillis (KCL 3: 1500)
	defaultTaskBackoff          = 500 * time.Millisecond // KCL taskBackoffTimeMillis
	defaultMaxBackoff           = 10 * time.Second       // one failover period
	defaultShutdownTimeout      = 30 * time.Second       // KCL 3 graceful lease handoff timeout
	defaultMaxSteal             = 1                      // KCL maxLeasesToStealAtOneTime
)

// failoverReporter is implemented by Stores that know their failover time.
type failoverReporter interface{ FailoverTime() time.Duration }

// withDefaults returns c with every zero field set to its default. store
// may report the failover time.
func (c Config) withDefaults(store any) Config {
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	if c.Retrieval == FanOut && c.ConsumerName == "" && c.ConsumerARN == "" {
		c.ConsumerName = c.ApplicationName
	}
	if c.FailoverTime == 0 {
		c.FailoverTime = defaultFailoverTime
		if r, ok := store.(failoverReporter); ok && r.FailoverTime() > 0 {
			c.FailoverTime = r.FailoverTime()
		}
	}
	if c.TakeInterval == 0 {
		c.TakeInterval = 2 * c.FailoverTime
	}
	if c.MaxLeasesToStealAtOneTime == 0 {
		c.MaxLeasesToStealAtOneTime = defaultMaxSteal
	}
	if c.ShardSyncInterval == 0 {
		c.ShardSyncInterval = defaultShardSyncInterval
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = defaultMaxRecords
	}
	if c.IdleTimeBetweenReads == 0 {
		c.IdleTimeBetweenReads = defaultIdleTimeBetweenReads
	}
	if c.TaskBackoff == 0 {
		c.TaskBackoff = defaultTaskBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(defaultMaxBackoff, c.TaskBackoff)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.FailurePolicy.MaxAttempts == 0 && c.FailurePolicy.Action != RetryForever {
		c.FailurePolicy.MaxAttempts = defaultMaxAttempts
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	return c
}

// validate returns every problem of a config that went through
// withDefaults, joined.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch {
	case c.ApplicationName == "":
		bad("ApplicationName is required")
	case len(c.ApplicationName) > maxIDBytes:
		bad("ApplicationName longer than %d bytes", maxIDBytes)
	}
	if c.StreamName == "" && c.StreamARN == "" {
		bad("StreamName or StreamARN is required")
	}
	if len(c.WorkerID) > maxIDBytes {
		bad("WorkerID longer than %d bytes", maxIDBytes)
	}
	switch c.InitialPosition {
	case Latest, TrimHorizon:
	case AtTimestamp:
		if c.InitialTimestamp.IsZero() {
			bad("InitialPosition AT_TIMESTAMP needs InitialTimestamp")
		}
	default:
		bad("unknown %v", c.InitialPosition)
	}
	switch c.Retrieval {
	case Polling, FanOut:
	default:
		bad("unknown %v", c.Retrieval)
	}
	if c.FailoverTime < minFailoverTime {
		bad("FailoverTime %v below %v", c.FailoverTime, minFailoverTime)
	}
	if c.MaxLeasesForWorker < 0 {
		bad("negative MaxLeasesForWorker %d", c.MaxLeasesForWorker)
	}
	if c.MaxRecords < 1 || c.MaxRecords > MaxGetRecordsLimit {
		bad("MaxRecords %d not in [1, %d]", c.MaxRecords, MaxGetRecordsLimit)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TakeInterval", c.TakeInterval},
		{"ShardSyncInterval", c.ShardSyncInterval},
		{"IdleTimeBetweenReads", c.IdleTimeBetweenReads},
		{"TaskBackoff", c.TaskBackoff},
		{"MaxBackoff", c.MaxBackoff},
		{"ShutdownTimeout", c.ShutdownTimeout},
		{"StallTimeout", c.StallTimeout},
	} {
		if d.v < 0 {
			bad("negative %s %v", d.name, d.v)
		}
	}
	if c.MaxBackoff < c.TaskBackoff {
		bad("MaxBackoff %v below TaskBackoff %v", c.MaxBackoff, c.TaskBackoff)
	}
	fp := c.FailurePolicy
	switch fp.Action {
	case RetryForever, StopWorker, SkipBatch:
	case DeadLetter:
		if fp.DeadLetter == nil {
			bad("FailurePolicy %v needs a DeadLetter handler", fp.Action)
		}
	default:
		bad("unknown FailurePolicy %v", fp.Action)
	}
	if fp.MaxAttempts < 0 {
		bad("negative FailurePolicy.MaxAttempts %d", fp.MaxAttempts)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("consumer config: %w", errors.Join(errs...))
}

// defaultWorkerID is host:pid:random, unique enough for workers on one
// host and across restarts.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
