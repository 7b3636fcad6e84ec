package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

// The project's own clients against a server that verifies signatures and
// authorizes calls: the producer, consumer and fanout libraries given a
// *kinesis.Client with a principal's static credentials, and the shoal
// binary's "bench" and "leases" commands with credentials in the environment
// (the SDK's default chain) or a shared credentials profile (--profile).

// seenSet collects the payloads a reader delivered.
type seenSet struct {
	mu   sync.Mutex
	data map[string]int
}

func newSeenSet() *seenSet { return &seenSet{data: map[string]int{}} }

func (s *seenSet) add(data []byte) {
	s.mu.Lock()
	s.data[string(data)]++
	s.mu.Unlock()
}

// missing returns an error naming how many of want were not seen.
func (s *seenSet) missing(want []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range want {
		if s.data[w] == 0 {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d of %d records not delivered yet", n, len(want))
	}
	return nil
}

// authProcessor is a consumer.Processor that records what it is given and
// checkpoints every batch.
type authProcessor struct {
	consumer.BaseProcessor
	seen *seenSet
	errs chan<- error
}

func (p *authProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for _, r := range in.Records {
		p.seen.add(r.Data)
	}
	if len(in.Records) > 0 {
		if err := in.Checkpointer.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			select {
			case p.errs <- fmt.Errorf("checkpoint %s: %w", in.ShardID, err):
			default:
			}
		}
	}
	return nil
}

// TestAuthLibraries runs the producer, the consumer and the fanout
// libraries, each with its own principal whose policy allows exactly the
// calls it makes, against a server with an auth config: N records produced
// are all consumed through leases in PostgreSQL and all read through
// SubscribeToShard; a fanout principal lacking kinesis:SubscribeToShard gets
// AccessDeniedException with IAM's message from Run. Then the shoal binary's
// "leases" command reads the lease table and each shard's lag with the
// consumer's keys from the environment; with a principal not allowed
// GetShardIterator, and with a wrong secret, it says why it cannot tell the
// lag.
func TestAuthLibraries(t *testing.T) {
	const (
		stream   = "lib-orders"
		app      = "lib-orders-app"
		efoName  = "lib-audit"
		nRecords = 300
	)
	arn := streamARNOf(stream)
	consumerARNs := arn + "/consumer/*"
	admin := authPrincipal{Name: "admin", Keys: []authKey{newAuthKey(t, "ADMIN")}, Statements: []map[string]any{allowAll}}
	prod := authPrincipal{Name: "lib-producer", Keys: []authKey{newAuthKey(t, "PROD")}, Statements: []map[string]any{
		allow([]string{"ListShards", "PutRecords"}, arn),
	}}
	cons := authPrincipal{Name: "lib-consumer", Keys: []authKey{newAuthKey(t, "CONS")}, Statements: []map[string]any{
		allow([]string{"ListShards", "GetShardIterator", "GetRecords"}, arn),
	}}
	efo := authPrincipal{Name: "lib-fanout", Keys: []authKey{newAuthKey(t, "EFO")}, Statements: []map[string]any{
		allow([]string{"DescribeStreamSummary", "RegisterStreamConsumer", "ListShards"}, arn),
		allow([]string{"DescribeStreamConsumer", "SubscribeToShard"}, consumerARNs),
	}}
	noSub := authPrincipal{Name: "lib-fanout-nosub", Keys: []authKey{newAuthKey(t, "NOSUB")}, Statements: []map[string]any{
		allow([]string{"DescribeStreamSummary", "RegisterStreamConsumer", "ListShards"}, arn),
		allow([]string{"DescribeStreamConsumer"}, consumerARNs),
	}}
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	srv := servertest.Start(t, server.Config{
		AuthConfigFile: writeAuthConfig(t, admin, prod, cons, efo, noSub),
		// The audit log tells which calls each principal made.
		AuditLog: auditFile, AuditDataEvents: true,
		// The consumer is CREATING a while: fanout polls DescribeStreamConsumer.
		ConsumerCreateDelay: 200 * time.Millisecond,
		Logger:              zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ac := keyedClient(srv.Endpoint, admin.Keys[0])
	if _, err := ac.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}

	// Produce.
	want := make([]string, nRecords)
	p, err := producer.New(keyedClient(srv.Endpoint, prod.Keys[0]), producer.Config{StreamName: stream, MaxBufferedTime: 10 * time.Millisecond,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	pending := make([]*producer.Pending, nRecords)
	for i := range nRecords {
		want[i] = fmt.Sprintf("order-%03d-%s", i, randomHex(t, 4))
		if pending[i], err = p.Put(ctx, fmt.Sprintf("customer-%d", i%37), []byte(want[i])); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	for i, pd := range pending {
		res, err := pd.Wait(ctx)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("producer Close: %v", err)
	}

	// Consume, with leases in PostgreSQL.
	_, schema := pgtest.New(t)
	t.Run("consumer", func(t *testing.T) {
		pool := pgtest.Pool(t, pgtest.Config(t, schema))
		store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, FailoverTime: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = store.Close() }()
		seen := newSeenSet()
		errs := make(chan error, 1)
		w, err := consumer.New(keyedClient(srv.Endpoint, cons.Keys[0]), store,
			func(string) consumer.Processor { return &authProcessor{seen: seen, errs: errs} },
			consumer.Config{
				ApplicationName: app, StreamName: stream, WorkerID: "auth-worker", InitialPosition: consumer.TrimHorizon,
				FailoverTime: 2 * time.Second, TakeInterval: 500 * time.Millisecond, ShardSyncInterval: 500 * time.Millisecond,
				IdleTimeBetweenReads: 20 * time.Millisecond, TaskBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
				ShutdownTimeout: 10 * time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			})
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx) }()
		wait.Eventually(t, time.Minute, func() error {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			return seen.missing(want)
		})
		wcancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	})

	t.Run("fanout", func(t *testing.T) {
		seen := newSeenSet()
		sub, err := fanout.New(keyedStreamingClient(srv.Endpoint, efo.Keys[0]), fanout.Config{
			StreamName: stream, ConsumerName: efoName, StartingPosition: fanout.TrimHorizon(), Deaggregate: true,
			Handler: func(_ context.Context, b fanout.Batch) error {
				for _, r := range b.Records {
					seen.add(r.Data)
				}
				return nil
			},
			Options: fanout.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))},
		})
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- sub.Run(sctx) }()
		wait.Eventually(t, time.Minute, func() error {
			select {
			case err := <-done:
				t.Fatalf("fanout Run ended: %v", err)
			default:
			}
			return seen.missing(want)
		})
		scancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("fanout Run: %v", err)
		}
	})

	t.Run("fanout without SubscribeToShard", func(t *testing.T) {
		sub, err := fanout.New(keyedStreamingClient(srv.Endpoint, noSub.Keys[0]), fanout.Config{
			StreamName: stream, ConsumerName: efoName, StartingPosition: fanout.TrimHorizon(),
			Handler: func(context.Context, fanout.Batch) error { return errors.New("no batch expected") },
			Options: fanout.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))},
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		defer rcancel()
		err = sub.Run(rctx)
		consumers, lerr := ac.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn)})
		if lerr != nil || len(consumers.Consumers) != 1 {
			t.Fatalf("ListStreamConsumers: %v %v; want the one consumer", consumers, lerr)
		}
		cARN := aws.ToString(consumers.Consumers[0].ConsumerARN)
		wantAPIError(t, "fanout Run without kinesis:SubscribeToShard", err, "AccessDeniedException", deniedMessage(noSub.arn(), "SubscribeToShard", cARN))
	})

	// Each library made every call its policy allows, and no call was
	// denied: the policies are exactly what the libraries need.
	t.Run("policies are exact", func(t *testing.T) {
		used := map[string]map[string]bool{}
		var deniedCalls []string
		wait.Eventually(t, 30*time.Second, func() error {
			raw, err := os.ReadFile(auditFile)
			if err != nil {
				return err
			}
			recs, err := parseAudit(raw)
			if err != nil {
				t.Fatal(err)
			}
			used, deniedCalls = map[string]map[string]bool{}, nil
			for _, r := range recs {
				u := r.UserIdentity.UserName
				if r.ErrorCode == "AccessDeniedException" && u != noSub.Name {
					deniedCalls = append(deniedCalls, u+": "+r.ErrorMessage)
				}
				if r.ErrorCode == "" {
					if used[u] == nil {
						used[u] = map[string]bool{}
					}
					used[u][r.EventName] = true
				}
			}
			for _, p := range []authPrincipal{prod, cons, efo} {
				var allowed []string
				for _, st := range p.Statements {
					for _, a := range st["Action"].([]string) {
						allowed = append(allowed, strings.TrimPrefix(a, "kinesis:"))
					}
				}
				for _, a := range allowed {
					if !used[p.Name][a] {
						return fmt.Errorf("%s has not called %s (yet); it called %v", p.Name, a, used[p.Name])
					}
				}
			}
			return nil
		})
		if len(deniedCalls) > 0 {
			t.Errorf("calls denied to the libraries:\n%s", strings.Join(deniedCalls, "\n"))
		}
	})

	t.Run("leases", func(t *testing.T) {
		bin := shoalBinary(t)
		run := func(env []string, extra ...string) (string, string, error) {
			return runTool(ctx, env, bin, append([]string{"leases", "--application", app,
				"--database-url", pgtest.URL(), "--schema", schema, "--stream", stream, "--endpoint", srv.Endpoint, "--region", authRegion}, extra...)...)
		}
		leases := func(t *testing.T, k authKey) (string, string, error) {
			t.Helper()
			return run(isolatedAWSEnv(t, k.env()...))
		}
		allowed := func(t *testing.T, what, out, errOut string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("shoal leases %s: %v\n%s%s", what, err, out, errOut)
			}
			for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
				if !hasLeaseRow(out, shard, "0s") {
					t.Errorf("shoal leases %s: no row of %s with lag 0s:\n%s", what, shard, out)
				}
			}
			if strings.Contains(out, "note:") || !strings.Contains(out, "application "+app+": 2 leases") {
				t.Errorf("shoal leases %s:\n%s", what, out)
			}
		}
		out, errOut, err := leases(t, cons.Keys[0])
		allowed(t, "with the consumer's keys in the environment", out, errOut, err)

		// --profile: the consumer's keys in a shared credentials file.
		credsFile := filepath.Join(t.TempDir(), "credentials")
		k := cons.Keys[0]
		if err := os.WriteFile(credsFile, []byte(fmt.Sprintf("[lag-reader]\naws_access_key_id = %s\naws_secret_access_key = %s\n", k.ID, k.Secret)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err = run(append(isolatedAWSEnv(t), "AWS_SHARED_CREDENTIALS_FILE="+credsFile), "--profile", "lag-reader")
		allowed(t, "--profile", out, errOut, err)

		// The producer may not read: the lag cannot be told, and a note says why.
		out, errOut, err = leases(t, prod.Keys[0])
		denied := "AccessDeniedException: " + deniedMessage(prod.arn(), "GetShardIterator", arn)
		if err != nil || !strings.Contains(out, "note: lag of shardId-000000000000: ") || !strings.Contains(out, denied) || hasLeaseRow(out, "shardId-000000000000", "0s") {
			t.Errorf("shoal leases with the producer's keys: %v\n%s%s\nwant a note per shard with %q", err, out, errOut, denied)
		}
		out, errOut, err = leases(t, cons.Keys[0].wrongSecret())
		if err != nil || strings.Count(out, "InvalidSignatureException: "+msgSignatureMismatch) != 2 {
			t.Errorf("shoal leases with a wrong secret: %v\n%s%s\nwant a note per shard with InvalidSignatureException", err, out, errOut)
		}
	})
}

// hasLeaseRow reports whether the "shoal leases" table has a row of shard
// whose last column (LAG) is lag.
func hasLeaseRow(out, shard, lag string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == shard && f[len(f)-1] == lag {
			return true
		}
	}
	return false
}

// benchResult is the part of "shoal bench put -json"'s line the test reads.
type benchResult struct {
	Records      int `json:"records"`
	Calls        int `json:"calls"`
	FailedCalls  int `json:"failed_calls"`
	FailedRecord int `json:"failed_records"`
}

// TestAuthBench runs the shoal binary's "bench put" (a few calls) against a
// server with an auth config: with a principal allowed what it calls
// (DescribeStreamSummary, CreateStream, PutRecords), its keys in the
// environment or in a shared credentials profile (--profile), every record
// is stored; with a principal that may describe but not put, every call
// fails and the first error, AccessDeniedException with IAM's message, is
// shown; with a principal allowed nothing, or a wrong secret, the command
// exits non-zero naming the error.
func TestAuthBench(t *testing.T) {
	bin := shoalBinary(t)
	pattern := streamARNOf("bench-*")
	admin := authPrincipal{Name: "admin", Keys: []authKey{newAuthKey(t, "ADMIN")}, Statements: []map[string]any{allowAll}}
	bench := authPrincipal{Name: "bench", Keys: []authKey{newAuthKey(t, "BENCH")}, Statements: []map[string]any{
		allow([]string{"DescribeStreamSummary", "CreateStream", "PutRecords"}, pattern),
	}}
	describer := authPrincipal{Name: "describer", Keys: []authKey{newAuthKey(t, "DESC")}, Statements: []map[string]any{
		allow([]string{"DescribeStreamSummary"}, pattern),
	}}
	nobody := authPrincipal{Name: "nobody", Keys: []authKey{newAuthKey(t, "NOBODY")}}
	srv := servertest.Start(t, server.Config{
		AuthConfigFile: writeAuthConfig(t, admin, bench, describer, nobody),
		Logger:         zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "bench-auth"
	run := func(t *testing.T, env []string, extra ...string) (benchResult, string, error) {
		t.Helper()
		args := append([]string{"bench", "put", "-endpoint", srv.Endpoint, "-region", authRegion, "-stream", stream, "-shards", "1",
			"-requests", "4", "-warmup", "0", "-clients", "1", "-batch", "10", "-retries", "0", "-json"}, extra...)
		out, errOut, err := runTool(ctx, env, bin, args...)
		var res benchResult
		if lines := strings.Split(strings.TrimSpace(out), "\n"); err == nil {
			if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
				t.Fatalf("shoal bench put: last line not JSON: %v\n%s", jerr, out)
			}
		}
		return res, out + errOut, err
	}

	t.Run("allowed", func(t *testing.T) {
		res, out, err := run(t, isolatedAWSEnv(t, bench.Keys[0].env()...))
		if err != nil || res.Records != 40 || res.Calls != 4 || res.FailedCalls != 0 || res.FailedRecord != 0 {
			t.Fatalf("shoal bench put with the bench principal's keys: %v %+v\n%s", err, res, out)
		}
		recs := readShardAll(ctx, t, keyedClient(srv.Endpoint, admin.Keys[0]), stream, "shardId-000000000000")
		if len(recs) != 40 {
			t.Errorf("the stream holds %d records; bench put 40", len(recs))
		}
	})

	t.Run("profile", func(t *testing.T) {
		dir := t.TempDir()
		credsFile := filepath.Join(dir, "credentials")
		k := bench.Keys[0]
		if err := os.WriteFile(credsFile, []byte(fmt.Sprintf("[bench-profile]\naws_access_key_id = %s\naws_secret_access_key = %s\n", k.ID, k.Secret)), 0o600); err != nil {
			t.Fatal(err)
		}
		// The environment holds another principal's keys: --profile wins.
		env := append(isolatedAWSEnv(t, nobody.Keys[0].env()...), "AWS_SHARED_CREDENTIALS_FILE="+credsFile)
		res, out, err := run(t, env, "-profile", "bench-profile")
		if err != nil || res.Records != 40 || res.FailedCalls != 0 {
			t.Errorf("shoal bench put --profile: %v %+v\n%s", err, res, out)
		}
	})

	t.Run("put denied", func(t *testing.T) {
		res, out, err := run(t, isolatedAWSEnv(t, describer.Keys[0].env()...))
		denied := "AccessDeniedException: " + deniedMessage(describer.arn(), "PutRecords", streamARNOf(stream))
		if err != nil || res.Records != 0 || res.FailedCalls != 4 || !strings.Contains(out, "first error: ") || !strings.Contains(out, denied) {
			t.Errorf("shoal bench put with a principal that may not put: %v %+v\n%s\nwant 4 failed calls and %q", err, res, out, denied)
		}
	})

	t.Run("nothing allowed", func(t *testing.T) {
		_, out, err := run(t, isolatedAWSEnv(t, nobody.Keys[0].env()...))
		denied := "AccessDeniedException: " + deniedMessage(nobody.arn(), "DescribeStreamSummary", streamARNOf(stream))
		if exitCode(err) != 1 || !strings.Contains(out, denied) {
			t.Errorf("shoal bench put with a principal allowed nothing: %v\n%s\nwant exit 1 and %q", err, out, denied)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		_, out, err := run(t, isolatedAWSEnv(t, bench.Keys[0].wrongSecret().env()...))
		if exitCode(err) != 1 || !strings.Contains(out, "InvalidSignatureException: "+msgSignatureMismatch) {
			t.Errorf("shoal bench put with a wrong secret: %v\n%s\nwant exit 1 and InvalidSignatureException", err, out)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		_, out, err := run(t, isolatedAWSEnv(t, newAuthKey(t, "UNKNOWN").env()...))
		if exitCode(err) != 1 || !strings.Contains(out, "UnrecognizedClientException: "+msgInvalidToken) {
			t.Errorf("shoal bench put with an unknown key: %v\n%s\nwant exit 1 and UnrecognizedClientException", err, out)
		}
	})
}
