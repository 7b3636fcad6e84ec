package server_test

// Shared helpers of the API conformance suite: a test environment (a real
// server on loopback and aws-sdk-go-v2 clients for it), an injectable clock,
// typed-error assertions, polling, raw JSON calls and shard readers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// newClock returns a clock tests move by hand. It starts at a fixed instant
// that is close to the real one (the SDK and the server agree on epoch
// seconds either way; closeness only keeps the numbers readable).
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Now().Truncate(time.Second))
}

// env is one running server and clients for it.
type env struct {
	t   testing.TB
	srv *servertest.Server
	// c retries as the SDK does by default.
	c *kinesis.Client
	// nr makes one attempt per call: for errors the SDK treats as throttling
	// (LimitExceeded, ProvisionedThroughputExceeded), whose retries would only
	// add back-off time to the test.
	nr *kinesis.Client
	// newClient returns a client of its own (see subscribe), with optFns
	// applied.
	newClient func(optFns ...func(*kinesis.Options)) *kinesis.Client
	ctx       context.Context
}

func newEnv(t testing.TB, cfg server.Config) *env {
	t.Helper()
	srv := servertest.Start(t, cfg)
	return &env{
		t:         t,
		srv:       srv,
		c:         srv.Client(),
		nr:        srv.Client(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }),
		newClient: srv.Client,
		ctx:       context.Background(),
	}
}

// arn is the stream ARN the default configuration hands out.
func arn(name string) string { return "arn:aws:kinesis:us-east-1:000000000000:stream/" + name }

func (e *env) createStream(name string, shards int32) {
	e.t.Helper()
	if _, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		e.t.Fatalf("CreateStream %s: %v", name, err)
	}
}

func (e *env) createOnDemand(name string) {
	e.t.Helper()
	_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{
		StreamName:        aws.String(name),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand},
	})
	if err != nil {
		e.t.Fatalf("CreateStream %s ON_DEMAND: %v", name, err)
	}
}

func (e *env) summary(name string) *types.StreamDescriptionSummary {
	e.t.Helper()
	out, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("DescribeStreamSummary %s: %v", name, err)
	}
	return out.StreamDescriptionSummary
}

func (e *env) shards(name string) []types.Shard {
	e.t.Helper()
	out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("ListShards %s: %v", name, err)
	}
	return out.Shards
}

func (e *env) put(name, pk string, data []byte) *kinesis.PutRecordOutput {
	e.t.Helper()
	out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(pk), Data: data})
	if err != nil {
		e.t.Fatalf("PutRecord %s: %v", name, err)
	}
	return out
}

func (e *env) iterator(name, shard string, typ types.ShardIteratorType, seq *string, ts *time.Time) string {
	e.t.Helper()
	out, err := e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(name), ShardId: aws.String(shard), ShardIteratorType: typ,
		StartingSequenceNumber: seq, Timestamp: ts,
	})
	if err != nil {
		e.t.Fatalf("GetShardIterator %s/%s %s: %v", name, shard, typ, err)
	}
	return aws.ToString(out.ShardIterator)
}

// drain reads from it until a call returns no records, and returns every
// record read.
func (e *env) drain(it string, limit int32) []types.Record {
	e.t.Helper()
	var all []types.Record
	for i := 0; ; i++ {
		if i > 10000 {
			e.t.Fatal("drain: no end in sight")
		}
		in := &kinesis.GetRecordsInput{ShardIterator: aws.String(it)}
		if limit > 0 {
			in.Limit = aws.Int32(limit)
		}
		out, err := e.c.GetRecords(e.ctx, in)
		if err != nil {
			e.t.Fatalf("GetRecords: %v", err)
		}
		all = append(all, out.Records...)
		if len(out.Records) == 0 {
			return all
		}
		if out.NextShardIterator == nil {
			e.t.Fatal("GetRecords: NextShardIterator is nil on an open shard")
		}
		it = *out.NextShardIterator
	}
}

// readShard reads a whole shard from TRIM_HORIZON.
func (e *env) readShard(name, shard string) []types.Record {
	e.t.Helper()
	return e.drain(e.iterator(name, shard, types.ShardIteratorTypeTrimHorizon, nil, nil), 0)
}

// readAll reads every shard of a stream, keyed by shard id.
func (e *env) readAll(name string) map[string][]types.Record {
	e.t.Helper()
	out := map[string][]types.Record{}
	for _, sh := range e.shards(name) {
		out[*sh.ShardId] = e.readShard(name, *sh.ShardId)
	}
	return out
}

// wantErr asserts that err is (or wraps) an *E, as the SDK surfaces a
// modeled exception.
func wantErr[E any, PE interface {
	*E
	error
}](t testing.TB, err error) {
	t.Helper()
	var target PE
	if err == nil {
		t.Fatalf("got no error, want %T", target)
	}
	if !errors.As(err, &target) {
		t.Fatalf("got %v (%T), want %T", err, err, target)
	}
}

// wantCode asserts that err is an API error with the given code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v (%T), want API error %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
}

func noErr(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eventually polls cond until it returns nil or timeout passes.
var eventually = wait.Eventually

// rawResponse is an HTTP response read whole.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorType returns the __type of a JSON error body.
func (r rawResponse) errorType(t testing.TB) string {
	t.Helper()
	var b struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	return b.Type
}

// rawCall posts body (a string, []byte, or a value to marshal as JSON) to
// the operation op with the JSON 1.1 content type.
func rawCall(t testing.TB, endpoint, op string, body any) rawResponse {
	t.Helper()
	return rawDo(t, endpoint, "Kinesis_20131202."+op, "application/x-amz-json-1.1", body)
}

func rawDo(t testing.TB, endpoint, target, contentType string, body any) rawResponse {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := rawHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", target, err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: rb}
}

var rawHTTP = &http.Client{Timeout: time.Minute}

// wantRawError asserts a raw response is a 400 JSON error of the given code.
func wantRawError(t testing.TB, r rawResponse, code string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Fatalf("status %d (%s), want 400 %s", r.Status, r.Body, code)
	}
	if got := r.errorType(t); got != code {
		t.Fatalf("__type %q (%s), want %s", got, r.Body, code)
	}
}

// wantRawOK asserts a raw response is 200 and decodes its body into out (if
// not nil).
func wantRawOK(t testing.TB, r rawResponse, out any) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
}

// seqLess compares two decimal sequence numbers numerically.
func seqLess(a, b string) bool {
	return bigOf(a).Cmp(bigOf(b)) < 0
}

func bigOf(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(fmt.Sprintf("not a decimal: %q", s))
	}
	return n
}

// maxHashKey is 2^128-1.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// bigString returns s repeated to n bytes.
func bigString(n int) string { return strings.Repeat("x", n) }
