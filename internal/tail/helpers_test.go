package tail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/internal/tail"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait on a condition: far more than any of them
// takes, so that only a hang fails a test.
const waitFor = 15 * time.Second

// env is a running shoal server and a client of it.
type env struct {
	t   *testing.T
	srv *servertest.Server
	c   *kinesis.Client
	ctx context.Context
}

func newEnv(t *testing.T, cfg server.Config) *env {
	t.Helper()
	srv := servertest.Start(t, cfg)
	return &env{t: t, srv: srv, c: srv.Client(), ctx: t.Context()}
}

func (e *env) createStream(name string, shards int32) {
	e.t.Helper()
	if _, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		e.t.Fatalf("CreateStream: %v", err)
	}
}

// eighth returns the explicit hash key at the start of the i-th eighth of
// the key space: a two-shard stream has eighths 0-3 in shard 0 and 4-7 in
// shard 1.
func eighth(i int) string {
	return new(big.Int).Lsh(big.NewInt(int64(i)), 125).String()
}

// put is a record the test put: where Kinesis stored it.
type put struct {
	data, shard, seq string
}

// put puts a record with data at the explicit hash key ehk.
func (e *env) put(stream, ehk, data string) put {
	e.t.Helper()
	out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(stream), PartitionKey: aws.String("pk-" + data),
		ExplicitHashKey: aws.String(ehk), Data: []byte(data),
	})
	if err != nil {
		e.t.Fatalf("PutRecord %s: %v", data, err)
	}
	return put{data: data, shard: *out.ShardId, seq: *out.SequenceNumber}
}

// putRound puts n records at each of the eighths, named round-e<eighth>-<i>.
func (e *env) putRound(stream, round string, n int, eighths ...int) []put {
	e.t.Helper()
	var ps []put
	for i := range n {
		for _, x := range eighths {
			ps = append(ps, e.put(stream, eighth(x), fmt.Sprintf("%s-e%d-%d", round, x, i)))
		}
	}
	return ps
}

func (e *env) split(stream, shard string, at int) {
	e.t.Helper()
	if _, err := e.c.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(eighth(at))}); err != nil {
		e.t.Fatalf("SplitShard %s: %v", shard, err)
	}
}

func (e *env) merge(stream, a, b string) {
	e.t.Helper()
	if _, err := e.c.MergeShards(e.ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b)}); err != nil {
		e.t.Fatalf("MergeShards %s %s: %v", a, b, err)
	}
}

// parents returns each shard's parents, from ListShards.
func (e *env) parents(stream string) map[string][]string {
	e.t.Helper()
	out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		e.t.Fatalf("ListShards: %v", err)
	}
	m := map[string][]string{}
	for _, s := range out.Shards {
		var ps []string
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				ps = append(ps, *p)
			}
		}
		m[*s.ShardId] = ps
	}
	return m
}

// sink is an io.Writer that keeps what Run printed and signals each write.
type sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{}, 1)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *sink) lines() []string {
	out := strings.TrimSuffix(s.String(), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// wait waits until cond holds for the lines printed so far, or fails the
// test after waitFor; it returns those lines.
func (s *sink) wait(t *testing.T, what string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		if ls := s.lines(); cond(ls) {
			return ls
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; output:\n%s", what, s.String())
		}
	}
}

// jsonLine is a line of the JSON format.
type jsonLine struct {
	ShardID           string  `json:"shardId"`
	SequenceNumber    string  `json:"sequenceNumber"`
	SubSequenceNumber *int64  `json:"subSequenceNumber"`
	Arrival           string  `json:"approximateArrivalTimestamp"`
	PartitionKey      string  `json:"partitionKey"`
	ExplicitHashKey   *string `json:"explicitHashKey"`
	Data              []byte  `json:"data"`
}

func parseJSON(t *testing.T, lines []string) []jsonLine {
	t.Helper()
	out := make([]jsonLine, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
	}
	return out
}

// hasData returns a condition: every one of want's data was printed (JSON).
func hasData(t *testing.T, want []put) func([]string) bool {
	return func(lines []string) bool {
		seen := map[string]bool{}
		for _, l := range parseJSON(t, lines) {
			seen[string(l.Data)] = true
		}
		for _, p := range want {
			if !seen[p.data] {
				return false
			}
		}
		return true
	}
}

// running is a Run in its own goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	failed bool // Run returned an error the test saw (wait)
}

// start runs tail.Run with cfg (Client, Out and the intervals filled in
// when unset) until stop or the end of the test.
func start(t *testing.T, cfg tail.Config) *running {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 2 * time.Millisecond
	}
	if cfg.CallInterval == 0 {
		cfg.CallInterval = -1
	}
	if cfg.RelistInterval == 0 {
		cfg.RelistInterval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tail.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil && !r.failed {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop cancels the Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns the Run's error once it returned by itself or was stopped.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.failed = err != nil
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitFor):
		t.Fatal("tail.Run did not return")
		return nil
	}
}

// counting wraps a tail.API and counts calls and errors.
type counting struct {
	tail.API
	mu      sync.Mutex
	gets    int            // GetRecords calls that succeeded
	errors  map[string]int // error codes of failed calls
	changed chan struct{}  // signalled after each count, if not nil
}

func (c *counting) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := c.API.GetRecords(ctx, in, opts...)
	c.count(err)
	return out, err
}

func (c *counting) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	out, err := c.API.GetShardIterator(ctx, in, opts...)
	if err != nil {
		c.count(err)
	}
	return out, err
}

func (c *counting) count(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[string]int{}
	}
	var ae smithy.APIError
	switch {
	case err == nil:
		c.gets++
	case errors.As(err, &ae):
		c.errors[ae.ErrorCode()]++
	default:
		c.errors["other"]++
	}
	if c.changed != nil {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

func (c *counting) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.errors {
		m[k] = v
	}
	return c.gets, m
}
