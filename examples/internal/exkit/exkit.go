package exkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/server"
)

// FallbackDatabaseURL is the database the examples use when neither a flag
// nor DATABASE_URL names one.
const FallbackDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DatabaseURL returns DATABASE_URL, or FallbackDatabaseURL when it is unset.
func DatabaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return FallbackDatabaseURL
}

// Logger returns a development logger on stderr when verbose, else a no-op
// logger: the examples are quiet by default.
func Logger(verbose bool) *zap.Logger {
	if !verbose {
		return zap.NewNop()
	}
	l, err := zap.NewDevelopment()
	if err != nil {
		return zap.NewNop()
	}
	return l
}

// ProfileUsage is the help text of the examples' -profile flag.
const ProfileUsage = "AWS shared config profile to sign with, for a server started with --auth-config; empty: the AWS SDK's default chain " +
	"(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws files...), or placeholder credentials when it has none, " +
	"which a server without --auth-config accepts"

// Client returns an aws-sdk-go-v2 Kinesis client for a shoal server at
// endpoint (http://host:port) that signs with creds (from
// Server.Credentials); nil means placeholder credentials, which only a
// server without --auth-config accepts.
func Client(endpoint string, creds aws.CredentialsProvider) *kinesis.Client {
	return newClient(endpoint, creds, sdkhttp.NewClient(16))
}

// FanOutClient is Client for enhanced fan-out readers: its HTTP client has
// no overall Timeout, which would otherwise cut every SubscribeToShard
// subscription short (see the fanout package's caveats). Each call is still
// bounded by its ctx.
func FanOutClient(endpoint string, creds aws.CredentialsProvider) *kinesis.Client {
	hc := sdkhttp.NewClient(16)
	hc.Timeout = 0
	return newClient(endpoint, creds, hc)
}

func newClient(endpoint string, creds aws.CredentialsProvider, hc *http.Client) *kinesis.Client {
	if creds == nil {
		creds = awscreds.Placeholder()
	}
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
		// sdkhttp's client works around an aws-sdk-go-v2 connection reuse
		// bug (see its doc); any *http.Client works otherwise.
		HTTPClient: hc,
	})
}

// ForgetLeases deletes the leases (and so the checkpoints) of a consumer
// application. An example run on a new embedded server has a new stream,
// whose records an earlier run's checkpoints do not name: left in place
// they would stall its shards (see the consumer package's caveats).
func ForgetLeases(ctx context.Context, store *checkpoint.PGStore, app string) error {
	leases, err := store.ListLeases(ctx, app)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	for _, l := range leases {
		if err := store.DeleteLease(ctx, app, l.ShardID); err != nil {
			return fmt.Errorf("delete lease %s: %w", l.ShardID, err)
		}
	}
	return nil
}

// OpenLeaseStore connects to PostgreSQL at databaseURL and opens (creating
// it if missing) the lease table schema.table. closeStore closes the store
// and the connection pool.
func OpenLeaseStore(ctx context.Context, databaseURL, schema, table string, logger *zap.Logger) (store *checkpoint.PGStore, closeStore func(), err error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	store, err = checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: table, Logger: logger})
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("open lease table: %w", err)
	}
	return store, func() {
		_ = store.Close() // only stops listeners
		pool.Close()
	}, nil
}

// RunID returns a new random 8-hex-digit id that tags one run's records.
func RunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// LockedWriter serializes the writes of the goroutines that share an
// output.
type LockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// NewLockedWriter returns a LockedWriter that writes to w.
func NewLockedWriter(w io.Writer) *LockedWriter { return &LockedWriter{w: w} }

// Write writes p to the underlying writer, one call at a time.
func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Buffer is a bytes.Buffer that is safe for concurrent use: a test reads
// what a program writes while it runs.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Server is a shoal server: an embedded one listening on a loopback port,
// or (from Connect) one running elsewhere.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:port.
	Endpoint string

	srv     *server.Server // nil if the server is not embedded
	served  chan error
	tempDir string // removed by Stop; "" if the caller gave the data dir

	stopOnce sync.Once
	stopErr  error // what the first Stop returned
}

// Connect returns the server at endpoint, or, if endpoint is "", starts an
// embedded one as StartServer does. Stop stops an embedded server and does
// nothing for another.
func Connect(endpoint, dataDir string, logger *zap.Logger) (*Server, error) {
	if endpoint != "" {
		return &Server{Endpoint: endpoint}, nil
	}
	return StartServer(dataDir, logger)
}

// Credentials returns the credentials the examples sign their calls to s
// with. For a server at an endpoint: those of the shared config profile
// profile, or when it is "" of the AWS SDK's default chain
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the shared
// config files, SSO...), or placeholder credentials when the chain finds
// none; see package awscreds. A server started with --auth-config accepts
// only the keys of a principal its configuration lists; one started without
// it accepts any, the placeholder ones included.
//
// An embedded server checks no signature: for it, unless profile names
// one, Credentials returns the placeholder credentials without reading the
// AWS configuration, so that a broken or expired one (an SSO session to
// renew) cannot stop an example that does not need it.
func (s *Server) Credentials(ctx context.Context, profile string) (aws.CredentialsProvider, error) {
	if s.Embedded() && profile == "" {
		return awscreds.Placeholder(), nil
	}
	creds, err := awscreds.Provider(ctx, profile)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return creds, nil
}

// Embedded reports whether the server runs in this process.
func (s *Server) Embedded() bool { return s.srv != nil }

// Fresh reports whether the server is embedded on a new temporary data
// directory: its streams are new, and checkpoints left by an earlier run
// name records they do not hold (see ForgetLeases).
func (s *Server) Fresh() bool { return s.tempDir != "" }

// StartServer starts an embedded server on 127.0.0.1 with an OS-chosen
// port. dataDir holds its streams; "" means a new temporary directory,
// removed by Stop. logger may be nil.
func StartServer(dataDir string, logger *zap.Logger) (*Server, error) {
	s := &Server{served: make(chan error, 1)}
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "shoal-example-")
		if err != nil {
			return nil, fmt.Errorf("start server: %w", err)
		}
		dataDir, s.tempDir = dir, dir
	}
	srv, err := server.New(server.Config{DataDir: dataDir, Logger: logger})
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Shutdown(context.Background())
		s.removeTemp()
		return nil, fmt.Errorf("start server: %w", err)
	}
	s.srv, s.Endpoint = srv, "http://"+ln.Addr().String()
	go func() { s.served <- srv.Serve(ln) }()
	return s, nil
}

// Stop shuts an embedded server down, waits for it, and removes its
// temporary data directory if StartServer made one. For a server that is not
// embedded it does nothing. A second call returns what the first did.
func (s *Server) Stop() error {
	if s.srv == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, net.ErrClosed) && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.removeTemp()
	if err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	return nil
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}

// EnsureStream creates the stream with the given number of shards unless it
// exists, and waits until it is ACTIVE (or ctx ends). An existing stream is
// used as it is, whatever its shard count.
func EnsureStream(ctx context.Context, client *kinesis.Client, name string, shards int32) error {
	_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	for {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for stream %s: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stream returns a client of the server that signs with the credentials
// of profile (see Credentials) and the stream name, created with shards
// shards unless it exists and ACTIVE (EnsureStream).
func (s *Server) Stream(ctx context.Context, profile, name string, shards int) (*kinesis.Client, aws.CredentialsProvider, error) {
	creds, err := s.Credentials(ctx, profile)
	if err != nil {
		return nil, nil, err
	}
	client := Client(s.Endpoint, creds)
	if err := EnsureStream(ctx, client, name, int32(shards)); err != nil {
		return nil, nil, err
	}
	return client, creds, nil
}

// LeaseStore opens the lease table (OpenLeaseStore) for the consumer
// application app. On a fresh embedded server, whose stream is new, it
// first forgets the application's leases (ForgetLeases): checkpoints of an
// earlier run name records the new stream does not hold.
func (s *Server) LeaseStore(ctx context.Context, databaseURL, schema, table, app string, logger *zap.Logger) (store *checkpoint.PGStore, closeStore func(), err error) {
	store, closeStore, err = OpenLeaseStore(ctx, databaseURL, schema, table, logger)
	if err != nil {
		return nil, nil, err
	}
	if s.Fresh() {
		if err := ForgetLeases(ctx, store, app); err != nil {
			closeStore()
			return nil, nil, err
		}
	}
	return store, closeStore, nil
}
