package server

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/fileengine"
)

// FsyncMode says when the file engine makes an append durable.
type FsyncMode = fileengine.FsyncMode

// The fsync modes of the file engine (see package engine/fileengine).
const (
	// FsyncAlways acknowledges a record only once fdatasync returned. The
	// default.
	FsyncAlways = fileengine.FsyncAlways
	// FsyncInterval syncs every Config.FsyncInterval: a crash loses at most
	// the records acknowledged since the last sync.
	FsyncInterval = fileengine.FsyncInterval
	// FsyncNever leaves syncing to the operating system.
	FsyncNever = fileengine.FsyncNever
)

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) { return fileengine.ParseFsyncMode(s) }

// Config configures a Server. The zero value is valid except that either
// Engine or DataDir must be set: every other zero field takes the default
// its comment gives.
type Config struct {
	// Engine stores the shard logs and the metadata catalog (see package
	// engine). The caller keeps ownership: Shutdown does not close it. Nil
	// means a file engine (engine/fileengine) in DataDir with the Fsync,
	// FsyncInterval and SegmentBytes below, which Shutdown closes.
	Engine engine.Engine
	// DataDir holds the stream metadata and the shard logs of the default
	// file engine. Required when Engine is nil, ignored otherwise.
	DataDir string
	// Fsync says when an append to the default file engine is durable:
	// FsyncAlways (the zero value: a record is acknowledged only once
	// fdatasync returned), FsyncInterval (synced every FsyncInterval) or
	// FsyncNever (the OS decides). Ignored when Engine is set.
	Fsync FsyncMode
	// FsyncInterval is the sync period in FsyncInterval mode. Zero means 200ms.
	FsyncInterval time.Duration
	// SegmentBytes is the size at which a shard log of the default file
	// engine starts a new segment. Zero means 64 MiB.
	SegmentBytes int64
	// MaxOpenLogs bounds the shard logs the default file engine keeps open
	// (each holds a file descriptor per segment); idle ones are closed and
	// reopened on demand. Zero means fileengine.DefaultMaxOpenLogs (1024).
	// Shards written round-robin beyond the bound pay a reopen (a scan of
	// the log's segments) on each use.
	MaxOpenLogs int
	// Region and AccountID form the ARNs the server hands out and accepts.
	// Zero means "us-east-1" and "000000000000".
	Region    string
	AccountID string
	// CreateDelay and DeleteDelay are how long a stream stays CREATING or
	// DELETING. Zero means the transition happens before the call returns
	// (the stream is ACTIVE, or gone, at once). The AWS SDK waiters poll
	// every 10 s at least, so any visible delay costs their users 10 s.
	CreateDelay time.Duration
	DeleteDelay time.Duration
	// UpdateDelay is how long a stream stays UPDATING after a change of mode,
	// retention or shard count. Zero means at once.
	UpdateDelay time.Duration
	// ConsumerCreateDelay and ConsumerDeleteDelay are how long an enhanced
	// fan-out consumer stays CREATING after RegisterStreamConsumer and
	// DELETING after DeregisterStreamConsumer. Zero means the transition
	// happens before the call returns (RegisterStreamConsumer then answers
	// ACTIVE). Kinesis takes some seconds for each.
	ConsumerCreateDelay time.Duration
	ConsumerDeleteDelay time.Duration
	// SubscriptionLifetime is how long a SubscribeToShard event stream lasts
	// before the server ends it cleanly and the client subscribes again from
	// the last ContinuationSequenceNumber. Zero means 5 minutes, as in Kinesis.
	SubscriptionLifetime time.Duration
	// SubscriptionKeepAlive is how long a subscription that has caught up
	// stays silent before the server sends an event without records (which
	// carries a fresh ContinuationSequenceNumber and MillisBehindLatest).
	// Zero means 5 seconds.
	SubscriptionKeepAlive time.Duration
	// TLSCertFile and TLSKeyFile, when both set, are the server's TLS
	// certificate and key: PEM files, as crypto/tls.LoadX509KeyPair reads
	// them. With a certificate, Serve speaks TLS (with ALPN offering h2 and
	// http/1.1) instead of cleartext HTTP/1.1 and h2c, and ServeTLS can
	// serve TLS beside a ServeCleartext listener. Server.ReloadTLS reads
	// the files again.
	TLSCertFile string
	TLSKeyFile  string
	// TLSSelfSignedDir, instead of TLSCertFile, gives the server a
	// certificate of its own making (see package internal/selfsigned): New
	// keeps a private CA (ca.pem, what clients trust) and a server
	// certificate it signs (server.pem) in this directory, makes them when
	// missing, and makes the server certificate again when it nears its
	// expiry or does not name every host of TLSSelfSignedHosts. The CA is
	// never replaced. Server.ReloadTLS checks them again.
	TLSSelfSignedDir string
	// TLSSelfSignedHosts are the hosts the self-signed certificate names:
	// the hosts of the addresses the server listens on with TLS, and any
	// other names its clients use. An IP address is named as such; "",
	// "0.0.0.0" and "::" (every interface) stand for 127.0.0.1, ::1,
	// "localhost" and the machine's hostname. Empty means "localhost"
	// (with 127.0.0.1 and ::1). Only with TLSSelfSignedDir.
	TLSSelfSignedHosts []string
	// EnforceThroughput turns on the per-shard limits of provisioned Kinesis:
	// writes 1 MiB/s or 1,000 records/s, reads 2 MiB/s and 5 calls/s, and for
	// enhanced fan-out 2 MiB/s per subscription and one SubscribeToShard call
	// per second per consumer and shard (LimitExceededException).
	// Off by default.
	EnforceThroughput bool
	// ShardLimit is the account's shard quota. Zero means 10,000.
	ShardLimit int32
	// OnDemandStreamLimit is the account's on-demand stream quota. Zero means 50.
	OnDemandStreamLimit int32
	// AutoSplitWindow is how long a shard of an ON_DEMAND stream must take
	// in more than AutoSplitThreshold of its write capacity (1 MiB/s or
	// 1,000 records/s) before the server splits it. Zero means one minute; a
	// negative value turns automatic splitting off. See the package doc.
	AutoSplitWindow time.Duration
	// AutoSplitThreshold is the fraction of a shard's write capacity above
	// which its load counts as hot. Zero means 1.0 (the capacity itself).
	AutoSplitThreshold float64
	// AutoSplitCooldown is the least time between two rounds of automatic
	// splits of one stream. Zero means AutoSplitWindow.
	AutoSplitCooldown time.Duration
	// OnDemandMaxShards caps the open shards automatic splitting gives an
	// ON_DEMAND stream. Zero means 200 (200 MiB/s of writes, the default
	// write capacity of an on-demand stream in AWS).
	OnDemandMaxShards int32
	// StreamShardLimit is the most shards UpdateShardCount scales a stream
	// to. Zero means 10,000, the documented default.
	StreamShardLimit int32
	// RetentionCheckInterval is how often expired segments are deleted.
	// Zero means one minute.
	RetentionCheckInterval time.Duration
	// DiskHighWater and DiskLowWater are the marks of the disk guard, as
	// fractions of the data directory's file system in use: once usage
	// reaches DiskHighWater, PutRecord and PutRecords are refused with
	// ProvisionedThroughputExceededException (reads go on) until it falls
	// below DiskLowWater. Zero means 0.95 and 0.90 (DiskLowWater: or
	// DiskHighWater minus 0.05 when that is lower); a negative value of
	// either turns the guard off. See diskguard.go.
	DiskHighWater float64
	DiskLowWater  float64
	// DiskCheckInterval is how often the disk guard measures the file
	// system. Zero means one second.
	DiskCheckInterval time.Duration
	// DiskUsage measures the guarded file system: bytes used and its size.
	// Nil means statfs of DataDir on Linux when the server stores its data
	// there (the default file engine, or an Engine that is a
	// *fileengine.Engine with DataDir set), and no guard otherwise. For
	// tests.
	DiskUsage func() (used, total uint64, err error)
	// AuthConfigFile turns request verification on: a JSON file of
	// principals, their access keys and identity policies (see the README,
	// "Authentication"). Every request must then carry a valid AWS
	// Signature Version 4 of a known key, and is authorized against the
	// policies; streams belong to the principal's account. Empty means
	// every request is accepted, signed or not, in AccountID. Server.ReloadAuth
	// reads the file again.
	AuthConfigFile string
	// AuditLog is the file the server appends a CloudTrail-shaped JSON
	// record of every management call to ("-" is standard output); empty
	// means no audit log. AuditDataEvents adds the data calls (PutRecord,
	// PutRecords, GetRecords, GetShardIterator, SubscribeToShard). The log
	// rotates at AuditMaxBytes (zero: 100 MiB). Writing it never blocks nor
	// fails a call: records it cannot keep up with are counted as dropped.
	AuditLog        string
	AuditDataEvents bool
	AuditMaxBytes   int64
	// KMSKeysFile names the key service's master keys (internal/kms; see
	// the README, "Encryption at rest"); empty means only the default key
	// alias/aws/kinesis, which the server generates on its first start into
	// KMSDir. KMSDir defaults to DataDir/kms; with neither set there is no
	// key service and StartStreamEncryption answers KMSNotFoundException.
	KMSKeysFile string
	KMSDir      string
	// EncryptAll encrypts every new stream with the default key, as if
	// StartStreamEncryption had been called on it.
	EncryptAll bool
	// Faults are fault injection rules in force from the start (see
	// faults.go and the README, "Fault injection"); Server.SetFaults
	// replaces them. The zero value injects none. Kind slow-fsync acts
	// only on the default file engine (Engine nil).
	Faults FaultConfig
	// Metrics receives the server's measurements (server/prommetrics
	// exports them to Prometheus). Nil means none are recorded.
	Metrics Metrics
	// Logger receives structured logs. Nil means zap.NewNop().
	Logger *zap.Logger
	// Now is the clock. Nil means time.Now. For tests.
	Now func() time.Time
}

var (
	regionRE  = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

func (c Config) withDefaults() Config {
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = 200 * time.Millisecond
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 64 << 20
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "000000000000"
	}
	if c.ShardLimit == 0 {
		c.ShardLimit = 10000
	}
	if c.OnDemandStreamLimit == 0 {
		c.OnDemandStreamLimit = 50
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = time.Minute
	}
	if c.DiskHighWater == 0 {
		c.DiskHighWater = defaultDiskHighWater
	}
	if c.DiskLowWater == 0 {
		c.DiskLowWater = max(0, min(defaultDiskLowWater, c.DiskHighWater-0.05))
		if c.DiskHighWater < 0 {
			c.DiskLowWater = -1
		}
	}
	if c.DiskCheckInterval == 0 {
		c.DiskCheckInterval = defaultDiskCheckInterval
	}
	if c.SubscriptionLifetime == 0 {
		c.SubscriptionLifetime = 5 * time.Minute
	}
	if c.SubscriptionKeepAlive == 0 {
		c.SubscriptionKeepAlive = 5 * time.Second
	}
	if c.AutoSplitWindow == 0 {
		c.AutoSplitWindow = time.Minute
	}
	if c.AutoSplitThreshold == 0 {
		c.AutoSplitThreshold = 1
	}
	if c.AutoSplitCooldown == 0 {
		c.AutoSplitCooldown = max(c.AutoSplitWindow, 0)
	}
	if c.OnDemandMaxShards == 0 {
		c.OnDemandMaxShards = 200
	}
	if c.StreamShardLimit == 0 {
		c.StreamShardLimit = 10000
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now //nolint:forbidigo // the default of the injected clock
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.DataDir == "" && c.Engine == nil {
		errs = append(errs, errors.New("DataDir or Engine is required"))
	}
	if !regionRE.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("Region %q is not a region name", c.Region))
	}
	if !accountRE.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("AccountID %q is not 12 digits", c.AccountID))
	}
	if c.FsyncInterval < 0 || c.CreateDelay < 0 || c.DeleteDelay < 0 || c.UpdateDelay < 0 || c.RetentionCheckInterval < 0 ||
		c.ConsumerCreateDelay < 0 || c.ConsumerDeleteDelay < 0 || c.SubscriptionLifetime < 0 || c.SubscriptionKeepAlive < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.SegmentBytes < 4096 {
		errs = append(errs, fmt.Errorf("SegmentBytes %d is below 4096", c.SegmentBytes))
	}
	if (c.KMSKeysFile != "" || c.EncryptAll) && c.KMSDir == "" && c.DataDir == "" {
		errs = append(errs, errors.New("KMSKeysFile and EncryptAll need KMSDir (or DataDir) for the key service's own key"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLSCertFile and TLSKeyFile must be set together"))
	}
	if c.TLSSelfSignedDir != "" && c.TLSCertFile != "" {
		errs = append(errs, errors.New("TLSSelfSignedDir and TLSCertFile exclude each other"))
	}
	if len(c.TLSSelfSignedHosts) > 0 && c.TLSSelfSignedDir == "" {
		errs = append(errs, errors.New("TLSSelfSignedHosts needs TLSSelfSignedDir"))
	}
	if c.AutoSplitWindow > 0 && c.AutoSplitWindow < autoSplitBuckets*time.Millisecond {
		errs = append(errs, fmt.Errorf("AutoSplitWindow %v is below %v", c.AutoSplitWindow, autoSplitBuckets*time.Millisecond))
	}
	if c.AutoSplitThreshold < 0 || c.AutoSplitCooldown < 0 {
		errs = append(errs, errors.New("AutoSplitThreshold and AutoSplitCooldown must not be negative"))
	}
	if c.DiskHighWater > 1 || c.DiskLowWater > 1 {
		errs = append(errs, fmt.Errorf("DiskHighWater %v and DiskLowWater %v must not exceed 1 (the whole file system)", c.DiskHighWater, c.DiskLowWater))
	} else if c.diskGuardOn() && c.DiskLowWater > c.DiskHighWater {
		errs = append(errs, fmt.Errorf("DiskLowWater %v is above DiskHighWater %v", c.DiskLowWater, c.DiskHighWater))
	}
	if c.DiskCheckInterval < 0 {
		errs = append(errs, errors.New("DiskCheckInterval must not be negative"))
	}
	if c.ShardLimit < 1 || c.OnDemandStreamLimit < 1 || c.OnDemandMaxShards < 1 || c.StreamShardLimit < 1 {
		errs = append(errs, errors.New("limits must be positive"))
	}
	return errors.Join(errs...)
}

// openEngine opens the default file engine in DataDir; onSync observes
// (and may delay) its syncs.
func (c Config) openEngine(onSync func(time.Duration, int, error)) (engine.Engine, error) {
	eng, err := fileengine.Open(fileengine.Config{
		Dir:           c.DataDir,
		Fsync:         c.Fsync,
		FsyncInterval: c.FsyncInterval,
		SegmentBytes:  c.SegmentBytes,
		MaxOpenLogs:   c.MaxOpenLogs,
		Logger:        c.Logger.Named("storage"),
		Now:           c.Now,
		OnSync:        onSync,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	return eng, nil
}
