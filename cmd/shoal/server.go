package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/engine/natsengine"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
	"github.com/shoalstream/shoal/server/prommetrics"
)

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr        = fs.String("addr", "127.0.0.1:4567", "address to listen on (HTTP/1.1 and h2c; TLS instead with --tls-cert or --tls-self-signed, unless --tls-addr is set)")
		storageKind = fs.String("storage", "file", "storage engine: file (durable, in --data-dir), memory (nothing kept; for tests and CI) or nats (a NATS JetStream cluster shared by any number of shoal servers; see --nats-*)")
		dataDir     = fs.String("data-dir", "./shoal-data", "directory for stream metadata and shard logs (--storage file)")
		fsync       = fs.String("fsync", "always", "when appends are durable: always (before the ack), interval, or never")
		fsyncEvery  = fs.Duration("fsync-interval", 200*time.Millisecond, "sync period with --fsync=interval")
		segment     = fs.Int64("segment-bytes", 64<<20, "shard log segment size")
		maxOpen     = fs.Int("max-open-logs", 1024, "most shard logs the file engine keeps open (idle ones close and reopen on demand)")
		region      = fs.String("region", "us-east-1", "region in ARNs")
		account     = fs.String("account-id", "000000000000", "12-digit account id in ARNs")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		throughput  = fs.Bool("enforce-throughput", false, "enforce per-shard provisioned throughput limits (1 MiB/s or 1000 records/s in, 2 MiB/s and 5 calls/s out)")
		createDelay = fs.Duration("create-delay", 0, "how long a new stream stays CREATING")
		deleteDelay = fs.Duration("delete-delay", 0, "how long a deleted stream stays DELETING")
		updateDelay = fs.Duration("update-delay", 0, "how long a stream stays UPDATING after a change")
		shardLimit  = fs.Int("shard-limit", 10000, "account shard quota")
		consCreate  = fs.Duration("consumer-create-delay", 0, "how long a new enhanced fan-out consumer stays CREATING")
		consDelete  = fs.Duration("consumer-delete-delay", 0, "how long a deregistered consumer stays DELETING")
		subLife     = fs.Duration("subscription-lifetime", 5*time.Minute, "how long a SubscribeToShard event stream lasts")
		drain       = fs.Duration("shutdown-timeout", 30*time.Second, "how long to wait for in-flight requests on SIGINT/SIGTERM")
		pprofAddr   = fs.String("pprof-addr", "", "if set, serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
		adminAddr   = fs.String("admin-addr", defaultAdminAddr, "serve /metrics (Prometheus), /healthz, /readyz and the web console (/console/) on this address, apart from the Kinesis API; off disables it")
		consoleOn   = fs.Bool("console", true, "serve the web console at /console/ on --admin-addr (--console=false disables it)")
		leaseDB     = fs.String("lease-database-url", "", "PostgreSQL URL of the consumer applications' lease table, for the console's applications page (read only); empty: none")
		leaseSchema = fs.String("lease-schema", checkpoint.DefaultSchema, "schema of the lease table (--lease-database-url), as the consumers' checkpoint.PGConfig.Schema")
		leaseTable  = fs.String("lease-table", checkpoint.DefaultTable, "the lease table (--lease-database-url), as the consumers' checkpoint.PGConfig.Table")
		authConfig  = fs.String("auth-config", "", "JSON file of principals, access keys and IAM policies: verify every request's SigV4 signature and authorize it (re-read on SIGHUP; see README). Without it any request is accepted")
		auditLog    = fs.String("audit-log", "", "append a CloudTrail-shaped JSON line per management call to this file (- for standard output)")
		auditData   = fs.Bool("audit-data-events", false, "with --audit-log, also log the data calls (PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard)")
		auditMax    = fs.Int64("audit-max-bytes", 100<<20, "rotate the audit log at this size (keeps 5 files)")
		kmsKeys     = fs.String("kms-keys", "", "JSON file of the key service's master keys for StartStreamEncryption (re-read on SIGHUP; see README). The default key alias/aws/kinesis is generated into --data-dir/kms on first start")
		encryptAll  = fs.Bool("encrypt-all", false, "encrypt every new stream at rest with the default key alias/aws/kinesis")
		// Automatic splitting of ON_DEMAND streams (see package server's doc).
		splitWindow    = fs.Duration("auto-split-window", time.Minute, "split a shard of an ON_DEMAND stream whose writes stay above the threshold this long; negative turns automatic splitting off")
		splitThreshold = fs.Float64("auto-split-threshold", 1, "fraction of a shard's write capacity (1 MiB/s or 1000 records/s) above which it counts as hot")
		splitCooldown  = fs.Duration("auto-split-cooldown", 0, "least time between automatic split rounds of one stream (0: the window)")
		onDemandMax    = fs.Int("on-demand-max-shards", 200, "most open shards automatic splitting gives an ON_DEMAND stream")
		diskHigh       = fs.Float64("disk-high-water", 0.95, "fraction of the --data-dir file system in use at which writes are refused (ProvisionedThroughputExceededException) while reads go on; negative turns the disk guard off")
		diskLow        = fs.Float64("disk-low-water", 0.90, "fraction of the --data-dir file system in use below which refused writes resume (at most --disk-high-water)")
		// Start-up configuration (config.go): a flag, else SHOAL_<FLAG>, else the file.
		_ = fs.String("config", "", "JSON file setting flags by name (\"data-dir\": \"/data\") and streams to create (\"streams\": [...]; see README); the command line and SHOAL_<FLAG> environment variables win over it")
		_ = fs.String("create-streams", "", "streams to create at start-up unless they exist, comma-separated NAME[:SHARDS|:ON_DEMAND] (1 shard by default), ACTIVE before the server listens")
	)
	natsOpts := addNATSFlags(fs)
	tlsOpts := addTLSFlags(fs)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: shoal server [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	startup, err := applyConfig(fs, os.Environ())
	if err != nil {
		return err
	}
	mode, err := server.ParseFsyncMode(*fsync)
	if err != nil {
		return err
	}
	switch *storageKind {
	case "file", "memory", "nats":
	default:
		return fmt.Errorf("--storage: unknown engine %q (want file, memory or nats)", *storageKind)
	}
	level, err := zapcore.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = nil
	logger, err := zc.Build()
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // best effort at exit
	for _, w := range startup.warnings {
		logger.Warn(w)
	}

	var eng engine.Engine // nil: the server opens the file engine in --data-dir
	switch *storageKind {
	case "memory":
		eng = memengine.New(memengine.Config{})
	case "nats":
		ne, err := retryUntilReady(ctx, logger, "connect to NATS", func(ctx context.Context) (*natsengine.Engine, error) {
			return natsengine.Open(ctx, natsOpts.config(logger))
		})
		if err != nil {
			return err
		}
		eng = ne
	}
	if eng != nil {
		defer eng.Close() //nolint:errcheck // the server has synced what it wrote
	}
	registry, promMetrics := newMetrics()
	if *storageKind == "file" {
		prommetrics.RegisterDiskFree(registry, *dataDir)
	}
	// The console's charts come from the server's recent history, kept
	// beside the Prometheus metrics.
	withConsole := *consoleOn && *adminAddr != "off"
	var history *console.History
	var metrics server.Metrics = promMetrics
	if withConsole {
		history = console.NewHistory(nil)
		metrics = server.TeeMetrics(promMetrics, history)
	}
	cfg := server.Config{
		Engine: eng, DataDir: *dataDir, Fsync: mode, FsyncInterval: *fsyncEvery, SegmentBytes: *segment, MaxOpenLogs: *maxOpen,
		Region: *region, AccountID: *account, EnforceThroughput: *throughput,
		CreateDelay: *createDelay, DeleteDelay: *deleteDelay, UpdateDelay: *updateDelay,
		ShardLimit: int32(*shardLimit), Logger: logger,
		ConsumerCreateDelay: *consCreate, ConsumerDeleteDelay: *consDelete, SubscriptionLifetime: *subLife,
		AutoSplitWindow: *splitWindow, AutoSplitThreshold: *splitThreshold, AutoSplitCooldown: *splitCooldown,
		OnDemandMaxShards: int32(*onDemandMax),
		AuthConfigFile:    *authConfig, AuditLog: *auditLog, AuditDataEvents: *auditData, AuditMaxBytes: *auditMax,
		KMSKeysFile: *kmsKeys, EncryptAll: *encryptAll,
		DiskHighWater: *diskHigh, DiskLowWater: *diskLow,
		Metrics: metrics, Faults: startup.faults,
	}
	if err := tlsOpts.configure(&cfg, *addr, *dataDir); err != nil {
		return err
	}
	var srv *server.Server
	if *storageKind == "nats" {
		// Loading the catalog can fail while the cluster elects leaders:
		// keep trying, and listen only once the server can serve.
		srv, err = retryUntilReady(ctx, logger, "load the catalog", func(context.Context) (*server.Server, error) { return server.New(cfg) })
	} else {
		srv, err = server.New(cfg)
	}
	if err != nil {
		return err
	}
	prommetrics.RegisterStreamSizes(registry, srv.StreamSizes)
	if err := ensureStreams(ctx, srv, startup.streams, logger); err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	// With --tls-addr, --addr stays cleartext and a second listener speaks
	// TLS; without it, --addr speaks TLS when there is a certificate.
	var tlsLn net.Listener
	if *tlsOpts.addr != "" {
		if tlsLn, err = net.Listen("tcp", *tlsOpts.addr); err != nil {
			_ = ln.Close()
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("--tls-addr: %w", err)
		}
	}
	addrTLS := tlsOpts.enabled() && tlsLn == nil
	scheme := "http"
	if addrTLS {
		scheme = "https"
	}
	listeners := []net.Listener{ln}
	endpoints := []string{clientEndpoint(scheme, ln.Addr())}
	if tlsLn != nil {
		listeners = append(listeners, tlsLn)
		endpoints = append(endpoints, clientEndpoint("https", tlsLn.Addr()))
	}
	for _, l := range listeners {
		if *authConfig == "" && !loopback(l.Addr()) {
			logger.Warn("request verification is off and the server listens beyond this machine: anyone who reaches the port can read, write and delete every stream (set --auth-config)", zap.String("addr", l.Addr().String()))
		}
	}
	var reloads []reloader
	if *authConfig != "" {
		reloads = append(reloads, reloader{"auth configuration", srv.ReloadAuth})
	}
	if tlsOpts.enabled() {
		reloads = append(reloads, reloader{"TLS certificate", srv.ReloadTLS})
	}
	if *kmsKeys != "" {
		reloads = append(reloads, reloader{"key service", srv.ReloadKeys})
	}
	if len(reloads) > 0 {
		stopReload := reloadOnHUP(logger, reloads...)
		defer stopReload()
	}
	listenFields := []zap.Field{zap.String("addr", ln.Addr().String()), zap.Bool("tls", addrTLS)}
	if tlsLn != nil {
		listenFields = append(listenFields, zap.String("tls_addr", tlsLn.Addr().String()))
	}
	logger.Info("shoal listening", append(listenFields, zap.Strings("endpoints", endpoints), zap.String("storage", *storageKind), zap.String("data_dir", *dataDir), zap.String("nats_url", redactURL(*natsOpts.url)), zap.String("fsync", mode.String()), zap.Bool("auth", *authConfig != ""))...)
	if *tlsOpts.selfSigned {
		printTrust(logger, stderr, *dataDir, endpoints[len(endpoints)-1])
	}
	var con *console.Console // nil unless the console is served
	if *adminAddr != "off" {
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "admin-addr" })
		if withConsole {
			con, err = console.New(console.Config{Server: srv, LeaseDatabaseURL: *leaseDB, LeaseSchema: *leaseSchema, LeaseTable: *leaseTable,
				History: history, Logger: logger.Named("console")})
			if err != nil {
				for _, l := range listeners {
					_ = l.Close()
				}
				_ = srv.Shutdown(context.Background())
				return fmt.Errorf("--console: %w", err)
			}
		}
		stopAdmin, bound, err := serveAdmin(*adminAddr, explicit, registry, srv, con, logger)
		if err != nil {
			if con != nil {
				_ = con.Close()
			}
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("--admin-addr: %w", err)
		}
		defer stopAdmin()
		switch {
		case bound == nil && con != nil:
			_ = con.Close()
			con = nil
		case bound != nil && con != nil:
			logger.Info("admin listening", zap.String("admin_addr", bound.String()), zap.String("console", "http://"+bound.String()+"/console/"))
		case bound != nil:
			logger.Info("admin listening", zap.String("admin_addr", bound.String()))
		}
	}
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stopPprof()
	}
	errc := make(chan error, len(listeners))
	if tlsLn != nil {
		go func() { errc <- srv.ServeCleartext(ln) }()
		go func() { errc <- srv.ServeTLS(tlsLn) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		_ = srv.Shutdown(context.Background())
		for range len(listeners) - 1 {
			if serr := <-errc; serr != nil {
				logger.Error("serve", zap.Error(serr))
			}
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	if con != nil {
		_ = con.Close() // the console's tails first: they read through the server
	}
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	err = srv.Shutdown(sctx)
	for range listeners {
		if serr := <-errc; err == nil {
			err = serr
		}
	}
	return err
}
