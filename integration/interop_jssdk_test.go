package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/nodetest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// The AWS SDK for JavaScript v3 interop test: testdata/js-sdk/interop.js
// drives a shoal server with @aws-sdk/client-kinesis, pinned with every
// dependency by testdata/js-sdk/package-lock.json, and this test checks what
// it reports against what aws-sdk-go-v2 reads from the same server.

// jsSDKMinNode is the oldest node the pinned SDK supports (its "engines").
const jsSDKMinNode = 20

// jsRecord is one record as the script sends or reports it; encoding/json
// reads and writes []byte as base64, as the script does.
type jsRecord struct {
	SequenceNumber  string `json:"sequenceNumber,omitempty"`
	PartitionKey    string `json:"partitionKey"`
	ExplicitHashKey string `json:"explicitHashKey,omitempty"`
	Data            []byte `json:"data"`
	ArrivalMillis   *int64 `json:"arrivalMillis,omitempty"`
	EncryptionType  string `json:"encryptionType,omitempty"`
}

// jsInput is the script's input file.
type jsInput struct {
	Endpoint       string     `json:"endpoint"`
	Handler        string     `json:"handler"`
	StreamName     string     `json:"streamName"`
	ConsumerName   string     `json:"consumerName"`
	MissingStream  string     `json:"missingStream"`
	SubscribeShard string     `json:"subscribeShard"`
	SplitShard     string     `json:"splitShard"`
	PutRecord      jsRecord   `json:"putRecord"`
	PutRecords     []jsRecord `json:"putRecords"`
	AfterRecords   []jsRecord `json:"afterRecords"`
}

type jsPutResult struct {
	ShardID        string `json:"shardId"`
	SequenceNumber string `json:"sequenceNumber"`
	ErrorCode      string `json:"errorCode"`
}

type jsPutRecordsResult struct {
	Failed  int           `json:"failed"`
	Records []jsPutResult `json:"records"`
}

type jsError struct {
	Name               string `json:"name"`
	IsResourceNotFound bool   `json:"isResourceNotFound"`
	Fault              string `json:"fault"`
	HTTPStatusCode     int    `json:"httpStatusCode"`
	RequestID          string `json:"requestId"`
	Message            string `json:"message"`
}

// jsOutput is what the script prints.
type jsOutput struct {
	SDKVersion      string `json:"sdkVersion"`
	NodeVersion     string `json:"nodeVersion"`
	RequestHandler  string `json:"requestHandler"`
	HandlerProtocol string `json:"handlerProtocol"`
	CreateStatus    int    `json:"createStatus"`
	WaiterState     string `json:"waiterState"`
	Summary         struct {
		Status         string `json:"status"`
		ARN            string `json:"arn"`
		OpenShardCount int    `json:"openShardCount"`
		Mode           string `json:"mode"`
		Created        bool   `json:"created"`
	} `json:"summary"`
	PutRecord  jsPutResult        `json:"putRecord"`
	PutRecords jsPutRecordsResult `json:"putRecords"`
	Shards     []struct {
		ShardID                string `json:"shardId"`
		Start                  string `json:"start"`
		End                    string `json:"end"`
		StartingSequenceNumber string `json:"startingSequenceNumber"`
	} `json:"shards"`
	Read   map[string][]jsRecord `json:"read"`
	Errors struct {
		DescribeMissing          jsError `json:"describeMissing"`
		LongPartitionKey         jsError `json:"longPartitionKey"`
		SubscribeMissingConsumer jsError `json:"subscribeMissingConsumer"`
	} `json:"errors"`
	Consumer struct {
		ARN              string `json:"arn"`
		RegisteredStatus string `json:"registeredStatus"`
		Polls            int    `json:"polls"`
		Status           string `json:"status"`
		StreamARN        string `json:"streamArn"`
	} `json:"consumer"`
	Subscribe struct {
		HTTPStatusCode int `json:"httpStatusCode"`
		Events         []struct {
			Records                    int     `json:"records"`
			ContinuationSequenceNumber string  `json:"continuationSequenceNumber"`
			MillisBehindLatest         *int64  `json:"millisBehindLatest"`
			LastSequenceNumber         *string `json:"lastSequenceNumber"`
		} `json:"events"`
		Records         []jsRecord          `json:"records"`
		UnknownEvents   [][]string          `json:"unknownEvents"`
		Before          int                 `json:"before"`
		After           *jsPutRecordsResult `json:"after"`
		StoppedByClient bool                `json:"stoppedByClient"`
	} `json:"subscribe"`
	ShardEnd struct {
		Events []struct {
			Records                    int     `json:"records"`
			ContinuationSequenceNumber *string `json:"continuationSequenceNumber"`
			ChildShards                []struct {
				ShardID      string   `json:"shardId"`
				ParentShards []string `json:"parentShards"`
				Start        string   `json:"start"`
				End          string   `json:"end"`
			} `json:"childShards"`
		} `json:"events"`
		Records      []jsRecord `json:"records"`
		ChildShards  []string   `json:"childShards"`
		EndedCleanly bool       `json:"endedCleanly"`
	} `json:"shardEnd"`
	Deregistered struct {
		ShardID string   `json:"shardId"`
		Events  int      `json:"events"`
		Error   *jsError `json:"error"`
	} `json:"deregistered"`
	Transport jsTransport `json:"transport"`
}

// jsTransport is what testdata/js-sdk/transport.js counted: the transports
// the AWS SDK for JavaScript used.
type jsTransport struct {
	HTTP2Sessions int      `json:"http2Sessions"`
	ALPNProtocols []string `json:"alpnProtocols"`
	HTTP1Requests int      `json:"http1Requests"`
	TLSSockets    int      `json:"tlsSockets"`
}

// TestInteropJSSDK runs the AWS SDK for JavaScript v3 against shoal: stream
// creation with the SDK's waiter, PutRecord and PutRecords with binary data
// and explicit hash keys, ListShards, GetShardIterator and GetRecords, API
// errors, consumer registration, and SubscribeToShard. Everything the SDK
// read must equal what aws-sdk-go-v2 reads. It runs with the Kinesis
// client's default request handler, NodeHttp2Handler, which speaks h2c to
// an http:// endpoint, and again with the HTTP/1.1 NodeHttpHandler.
func TestInteropJSSDK(t *testing.T) {
	node := nodetest.Node(t, jsSDKMinNode)
	lockDir, err := filepath.Abs(filepath.Join("testdata", "js-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	installStart := time.Now()
	modules := nodetest.InstallLocked(t, lockDir)
	t.Logf("npm packages ready in %v (%s)", time.Since(installStart).Round(time.Millisecond), modules)
	for _, tc := range []struct {
		name, handler string
		http2         bool
	}{
		{"h2c", "default", true},
		{"http1", "http1", false},
	} {
		t.Run(tc.name, func(t *testing.T) { checkJSInterop(t, node, modules, lockDir, tc.handler, tc.http2) })
	}
}

// checkJSInterop runs interop.js with handler against a new server and
// checks its results; http2 says which protocol the handler must use.
func checkJSInterop(t *testing.T, node, modules, lockDir, handler string, http2 bool) {
	// The server's debug log says which protocol each subscription came in
	// over; the observer keeps it, the test log gets Info and up.
	obsCore, logs := observer.New(zap.DebugLevel)
	logger := zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Core(), obsCore))
	srv := servertest.Start(t, server.Config{
		Logger:              logger,
		CreateDelay:         300 * time.Millisecond, // the SDK's waiter must wait
		ConsumerCreateDelay: 300 * time.Millisecond, // the script must poll
	})
	kc := srv.Client()

	in := jsInteropInput(srv.Endpoint)
	in.Handler = handler
	file := filepath.Join(t.TempDir(), "input.json")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runStart := time.Now()
	stdout := nodetest.Run(ctx, t, node, modules, filepath.Join(lockDir, "interop.js"), file)
	t.Logf("interop.js ran in %v", time.Since(runStart).Round(time.Millisecond))
	var out jsOutput
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("script output: %v\n%s", err, stdout)
	}

	t.Run("sdk", func(t *testing.T) {
		if want := pinnedJSSDKVersion(t, lockDir); out.SDKVersion != want {
			t.Errorf("script loaded @aws-sdk/client-kinesis %s, package.json pins %s", out.SDKVersion, want)
		}
		want := map[bool]string{true: "NodeHttp2Handler", false: "NodeHttpHandler"}[http2]
		if out.RequestHandler != want {
			t.Errorf("Kinesis client's request handler %q, want %s", out.RequestHandler, want)
		}
		t.Logf("@aws-sdk/client-kinesis %s on node %s, %s (%s)", out.SDKVersion, out.NodeVersion, out.RequestHandler, out.HandlerProtocol)
	})

	desc, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &in.StreamName})
	if err != nil {
		t.Fatal(err)
	}
	allShards := listShards(ctx, t, kc, in.StreamName)
	goRead := make(map[string][]types.Record)
	for _, sh := range allShards {
		goRead[*sh.ShardId] = readShardAll(ctx, t, kc, in.StreamName, *sh.ShardId)
	}
	// The stream's two shards, and the children of the one the script split.
	if len(allShards) != 4 {
		t.Fatalf("Go lists %d shards, want 2 and the 2 children of a split", len(allShards))
	}
	goShards, children := allShards[:2], allShards[2:]

	t.Run("create", func(t *testing.T) {
		s := out.Summary
		if out.CreateStatus != 200 || out.WaiterState != "SUCCESS" || s.Status != "ACTIVE" || s.OpenShardCount != 2 || s.Mode != "PROVISIONED" || !s.Created {
			t.Errorf("CreateStream %d, waiter %s, summary %+v; want 200, SUCCESS, ACTIVE with 2 open PROVISIONED shards", out.CreateStatus, out.WaiterState, s)
		}
		if s.ARN != aws.ToString(desc.StreamDescriptionSummary.StreamARN) {
			t.Errorf("JS stream ARN %q, Go %q", s.ARN, aws.ToString(desc.StreamDescriptionSummary.StreamARN))
		}
	})

	t.Run("shards", func(t *testing.T) {
		if len(out.Shards) != len(goShards) {
			t.Fatalf("JS listed %d shards, Go %d", len(out.Shards), len(goShards))
		}
		for i, s := range out.Shards {
			g := goShards[i]
			if s.ShardID != *g.ShardId || s.Start != *g.HashKeyRange.StartingHashKey || s.End != *g.HashKeyRange.EndingHashKey ||
				s.StartingSequenceNumber != *g.SequenceNumberRange.StartingSequenceNumber {
				t.Errorf("shard %d: JS %+v, Go {%s %s %s %s}", i, s, *g.ShardId, *g.HashKeyRange.StartingHashKey,
					*g.HashKeyRange.EndingHashKey, *g.SequenceNumberRange.StartingSequenceNumber)
			}
		}
	})

	// What the script put, by sequence number, with the shard it must have
	// gone to by its hash key.
	type put struct {
		rec   jsRecord
		shard string
	}
	puts := make(map[string]put)
	addPuts := func(t *testing.T, what string, recs []jsRecord, res jsPutRecordsResult) {
		t.Helper()
		if res.Failed != 0 || len(res.Records) != len(recs) {
			t.Fatalf("%s: %d failed, %d results for %d records: %+v", what, res.Failed, len(res.Records), len(recs), res.Records)
		}
		for i, r := range res.Records {
			if r.ErrorCode != "" || r.SequenceNumber == "" {
				t.Fatalf("%s record %d: %+v", what, i, r)
			}
			want := shardFor(t, goShards, recs[i])
			if r.ShardID != want {
				t.Errorf("%s record %d (key %q, hash key %q) went to %s, want %s", what, i, recs[i].PartitionKey, recs[i].ExplicitHashKey, r.ShardID, want)
			}
			if _, dup := puts[r.SequenceNumber]; dup {
				t.Fatalf("%s record %d: sequence number %s given twice", what, i, r.SequenceNumber)
			}
			puts[r.SequenceNumber] = put{recs[i], r.ShardID}
		}
	}
	addPuts(t, "PutRecord", []jsRecord{in.PutRecord}, jsPutRecordsResult{Records: []jsPutResult{out.PutRecord}})
	addPuts(t, "PutRecords", in.PutRecords, out.PutRecords)

	t.Run("read", func(t *testing.T) {
		total := 0
		for shard, recs := range out.Read {
			if _, ok := goRead[shard]; !ok {
				t.Errorf("JS read unknown shard %s", shard)
			}
			total += len(recs)
		}
		if total != len(puts) {
			t.Errorf("JS read %d records, put %d", total, len(puts))
		}
		for _, sh := range goShards {
			id := *sh.ShardId
			js := out.Read[id]
			// Go reads after the subscription's puts, which come last.
			g := goRead[id]
			if len(g) < len(js) {
				t.Fatalf("%s: Go read %d records, JS %d", id, len(g), len(js))
			}
			sameRecords(t, "GetRecords "+id, js, g[:len(js)])
			for _, r := range js {
				p, ok := puts[r.SequenceNumber]
				if !ok {
					t.Errorf("%s: JS read %s, which was not put before", id, r.SequenceNumber)
					continue
				}
				if p.shard != id || r.PartitionKey != p.rec.PartitionKey || !bytes.Equal(r.Data, p.rec.Data) {
					t.Errorf("%s: read {%s %q %x}, put {%s %q %x}", id, r.SequenceNumber, r.PartitionKey, trunc(r.Data), p.shard, p.rec.PartitionKey, trunc(p.rec.Data))
				}
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		e := out.Errors.DescribeMissing
		if e.Name != "ResourceNotFoundException" || !e.IsResourceNotFound || e.Fault != "client" || e.HTTPStatusCode != 400 || e.RequestID == "" {
			t.Errorf("DescribeStream of a missing stream: %+v", e)
		}
		_, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &in.MissingStream})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("Go DescribeStream of a missing stream: %v", err)
		}
		if e.Message != rnf.ErrorMessage() {
			t.Errorf("JS message %q, Go %q", e.Message, rnf.ErrorMessage())
		}

		e = out.Errors.LongPartitionKey
		_, err = kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &in.StreamName, PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte{}})
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("Go PutRecord with a 257-character key: %v", err)
		}
		if e.Name != "ValidationException" || ae.ErrorCode() != e.Name || e.HTTPStatusCode != 400 || e.Message != ae.ErrorMessage() {
			t.Errorf("PutRecord with a 257-character key: JS %+v, Go %s: %s", e, ae.ErrorCode(), ae.ErrorMessage())
		}

		e = out.Errors.SubscribeMissingConsumer
		if e.Name != "ResourceNotFoundException" || !e.IsResourceNotFound || e.HTTPStatusCode != 400 {
			t.Errorf("SubscribeToShard of a missing consumer: %+v", e)
		}
	})

	t.Run("consumer", func(t *testing.T) {
		c := out.Consumer
		wantARN := out.Summary.ARN + "/consumer/" + in.ConsumerName + ":"
		if c.RegisteredStatus != "CREATING" || c.Status != "ACTIVE" || c.Polls < 1 || c.StreamARN != out.Summary.ARN || !strings.HasPrefix(c.ARN, wantARN) {
			t.Errorf("JS consumer %+v; want CREATING, then ACTIVE, ARN %s...", c, wantARN)
		}
	})

	t.Run("subscribe", func(t *testing.T) {
		s := out.Subscribe
		if s.HTTPStatusCode != 200 || !s.StoppedByClient || len(s.UnknownEvents) != 0 {
			t.Errorf("subscription: status %d, stopped by client %v, unknown events %v", s.HTTPStatusCode, s.StoppedByClient, s.UnknownEvents)
		}
		if s.After == nil {
			t.Fatal("the script put no records while subscribed")
		}
		before := len(out.Read[in.SubscribeShard])
		if s.Before != before || before == 0 {
			t.Errorf("subscription waited for %d records before putting more; %d were there", s.Before, before)
		}
		addPuts(t, "PutRecords while subscribed", in.AfterRecords, *s.After)
		for _, r := range s.After.Records {
			if r.ShardID != in.SubscribeShard {
				t.Fatalf("a record put while subscribed went to %s, want %s", r.ShardID, in.SubscribeShard)
			}
		}
		// The subscription read the whole shard from TRIM_HORIZON, the records
		// put before it started and those put while it ran, exactly as Go
		// reads them with GetRecords.
		g := goRead[in.SubscribeShard]
		if len(s.Records) != len(g) || len(g) != before+len(in.AfterRecords) {
			t.Fatalf("subscription received %d records, Go read %d, %d were put", len(s.Records), len(g), before+len(in.AfterRecords))
		}
		sameRecords(t, "SubscribeToShard", s.Records, g)
		for i, r := range s.Records[before:] {
			if r.SequenceNumber != s.After.Records[i].SequenceNumber || !bytes.Equal(r.Data, in.AfterRecords[i].Data) {
				t.Errorf("record %d after subscribing: %s %x, put %s %x", i, r.SequenceNumber, r.Data, s.After.Records[i].SequenceNumber, in.AfterRecords[i].Data)
			}
		}
		// Each event's ContinuationSequenceNumber is its last record's
		// sequence number; an event without records repeats the previous.
		n, cont := 0, ""
		for i, ev := range s.Events {
			n += ev.Records
			if ev.Records > 0 {
				cont = *ev.LastSequenceNumber
			}
			if ev.ContinuationSequenceNumber == "" || cont != "" && ev.ContinuationSequenceNumber != cont {
				t.Errorf("event %d (%d records): ContinuationSequenceNumber %q, want %q", i, ev.Records, ev.ContinuationSequenceNumber, cont)
			}
			if ev.MillisBehindLatest == nil {
				t.Errorf("event %d: no MillisBehindLatest", i)
			}
		}
		if n != len(s.Records) || cont != *g[len(g)-1].SequenceNumber {
			t.Errorf("events carried %d records ending at %s; received %d, the shard ends at %s", n, cont, len(s.Records), *g[len(g)-1].SequenceNumber)
		}
		t.Logf("%d records in %d events", len(s.Records), len(s.Events))
	})

	t.Run("shard end", func(t *testing.T) {
		e := out.ShardEnd
		if !e.EndedCleanly || len(e.Events) < 2 {
			t.Fatalf("subscription to the split shard: ended cleanly %v after %d events; want a clean end after 2 or more", e.EndedCleanly, len(e.Events))
		}
		// The parent's records, then a last event without records or
		// continuation that names the children.
		sameRecords(t, "SubscribeToShard "+in.SplitShard, e.Records, goRead[in.SplitShard])
		last := e.Events[len(e.Events)-1]
		if last.Records != 0 || last.ContinuationSequenceNumber != nil || len(last.ChildShards) != 2 {
			t.Fatalf("last event: %+v; want no records, no continuation, 2 child shards", last)
		}
		for i, c := range last.ChildShards {
			g := children[i]
			if c.ShardID != *g.ShardId || !slices.Equal(c.ParentShards, []string{in.SplitShard}) || aws.ToString(g.ParentShardId) != in.SplitShard ||
				c.Start != *g.HashKeyRange.StartingHashKey || c.End != *g.HashKeyRange.EndingHashKey {
				t.Errorf("child %d: JS %+v, Go %s parent %s [%s, %s]", i, c, *g.ShardId, aws.ToString(g.ParentShardId), *g.HashKeyRange.StartingHashKey, *g.HashKeyRange.EndingHashKey)
			}
		}
		for i, ev := range e.Events[:len(e.Events)-1] {
			if len(ev.ChildShards) != 0 || ev.ContinuationSequenceNumber == nil {
				t.Errorf("event %d before the last: %+v", i, ev)
			}
		}
	})

	t.Run("deregistered", func(t *testing.T) {
		d := out.Deregistered
		if d.ShardID != *children[0].ShardId {
			t.Errorf("subscribed to %s, want the first child %s", d.ShardID, *children[0].ShardId)
		}
		if d.Error == nil || d.Error.Name != "ResourceNotFoundException" || !d.Error.IsResourceNotFound ||
			!strings.Contains(d.Error.Message, "deregistered") {
			t.Fatalf("event stream of a deregistered consumer ended with %+v; want ResourceNotFoundException", d.Error)
		}
		_, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: &out.Consumer.ARN})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("Go DescribeStreamConsumer of the deregistered consumer: %v; want ResourceNotFoundException", err)
		}
	})

	t.Run("protocol", func(t *testing.T) {
		tr := out.Transport
		if http2 {
			if tr.HTTP1Requests != 0 || tr.HTTP2Sessions == 0 || len(tr.ALPNProtocols) != tr.HTTP2Sessions {
				t.Errorf("JS transport: %+v; want HTTP/2 sessions only", tr)
			}
			for _, p := range tr.ALPNProtocols {
				if p != "h2c" {
					t.Errorf("JS HTTP/2 session protocol %q, want h2c", p)
				}
			}
		} else if tr.HTTP2Sessions != 0 || tr.HTTP1Requests == 0 {
			t.Errorf("JS transport: %+v; want HTTP/1.1 requests only", tr)
		}
		// Server side: the subscription came in over HTTP/2, and the server
		// ended it when the SDK stopped reading.
		forConsumer := func(msg string) []observer.LoggedEntry {
			return logs.FilterMessage(msg).FilterField(zap.String("consumer", out.Consumer.ARN)).AllUntimed()
		}
		started := forConsumer("subscription started")
		if len(started) != 3 {
			t.Fatalf("server logged %d subscriptions of the JS consumer, want 3", len(started))
		}
		wantProto := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[http2]
		for _, e := range started {
			if proto := e.ContextMap()["proto"]; proto != wantProto {
				t.Errorf("server: a JS subscription came in over %v, want %s", proto, wantProto)
			}
		}
		wait.Eventually(t, 30*time.Second, func() error {
			if n := len(forConsumer("subscription ended")); n != 3 {
				return fmt.Errorf("server ended %d subscriptions of the JS consumer", n)
			}
			return nil
		})
		t.Logf("%d HTTP/2 sessions %v, %d HTTP/1.1 requests; server saw SubscribeToShard over %s", tr.HTTP2Sessions, tr.ALPNProtocols, tr.HTTP1Requests, wantProto)
	})
}

// jsInteropInput returns the script's input: records with binary data,
// unicode keys and explicit hash keys at both shards' edges.
func jsInteropInput(endpoint string) jsInput {
	rng := rand.New(rand.NewPCG(7, 11))
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	in := jsInput{
		Endpoint:       endpoint,
		StreamName:     "js-sdk-interop",
		ConsumerName:   "js-efo",
		MissingStream:  "js-sdk-missing",
		SubscribeShard: "shardId-000000000000",
		SplitShard:     "shardId-000000000001",
		PutRecord:      jsRecord{PartitionKey: "put-record", Data: all},
		PutRecords: []jsRecord{
			{PartitionKey: "low", ExplicitHashKey: "0", Data: data(1)},
			{PartitionKey: "edge-0", ExplicitHashKey: new(big.Int).Sub(half, big.NewInt(1)).String(), Data: data(1000)},
			{PartitionKey: "edge-1", ExplicitHashKey: half.String(), Data: data(17)},
			{PartitionKey: "high", ExplicitHashKey: top.String(), Data: []byte{0, 0, 0}},
			{PartitionKey: "empty", Data: []byte{}},
			{PartitionKey: "🦈 ключ", Data: []byte("unicode key")},
		},
		AfterRecords: []jsRecord{
			{PartitionKey: "after-1", ExplicitHashKey: "1", Data: data(64)},
			{PartitionKey: "after-2", ExplicitHashKey: "12345", Data: []byte{0xff, 0xfe, 0}},
		},
	}
	for i := range 10 {
		in.PutRecords = append(in.PutRecords, jsRecord{PartitionKey: fmt.Sprint("key-", i), Data: data(int(rng.UintN(300)))})
	}
	return in
}

// pinnedJSSDKVersion returns the @aws-sdk/client-kinesis version that
// lockDir's package.json pins.
func pinnedJSSDKVersion(t *testing.T, lockDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lockDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	return pkg.Dependencies["@aws-sdk/client-kinesis"]
}

// shardFor returns the shard whose hash key range holds r's hash key.
func shardFor(t *testing.T, shards []types.Shard, r jsRecord) string {
	t.Helper()
	k := hashkey.FromPartitionKey(r.PartitionKey).Big()
	if r.ExplicitHashKey != "" {
		var ok bool
		if k, ok = new(big.Int).SetString(r.ExplicitHashKey, 10); !ok {
			t.Fatalf("bad hash key %q", r.ExplicitHashKey)
		}
	}
	for _, s := range shards {
		lo, _ := new(big.Int).SetString(*s.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
		if k.Cmp(lo) >= 0 && k.Cmp(hi) <= 0 {
			return *s.ShardId
		}
	}
	t.Fatalf("no shard holds hash key %s", k)
	return ""
}

// listShards returns the stream's shards as aws-sdk-go-v2 lists them.
func listShards(ctx context.Context, t *testing.T, kc *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out.Shards, func(a, b types.Shard) int { return strings.Compare(*a.ShardId, *b.ShardId) })
	return out.Shards
}

// readShardAll reads a shard from TRIM_HORIZON with aws-sdk-go-v2 until it is
// caught up.
func readShardAll(ctx context.Context, t *testing.T, kc *kinesis.Client, stream, shard string) []types.Record {
	t.Helper()
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &stream, ShardId: &shard, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	for iter := it.ShardIterator; iter != nil; {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, out.Records...)
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iter = out.NextShardIterator
	}
	return recs
}

// sameRecords checks that the records the JS SDK reported are those Go read:
// same sequence numbers, keys, data, encryption and arrival times (to the
// millisecond the JS Date holds).
func sameRecords(t *testing.T, what string, js []jsRecord, g []types.Record) {
	t.Helper()
	if len(js) != len(g) {
		t.Fatalf("%s: JS has %d records, Go %d", what, len(js), len(g))
	}
	for i, r := range js {
		w := g[i]
		if r.SequenceNumber != *w.SequenceNumber || r.PartitionKey != *w.PartitionKey || !bytes.Equal(r.Data, w.Data) ||
			r.EncryptionType != string(w.EncryptionType) {
			t.Errorf("%s record %d: JS {%s %q %x %q}, Go {%s %q %x %q}", what, i, r.SequenceNumber, r.PartitionKey, trunc(r.Data), r.EncryptionType,
				*w.SequenceNumber, *w.PartitionKey, trunc(w.Data), w.EncryptionType)
		}
		if r.ArrivalMillis == nil || w.ApproximateArrivalTimestamp == nil {
			t.Errorf("%s record %d: arrival time JS %v, Go %v", what, i, r.ArrivalMillis, w.ApproximateArrivalTimestamp)
			continue
		}
		// Both SDKs parse the same epoch-seconds number; they may round its
		// sub-millisecond digits differently.
		if d := *r.ArrivalMillis - w.ApproximateArrivalTimestamp.UnixMilli(); d < -1 || d > 1 {
			t.Errorf("%s record %d: arrival time JS %d ms, Go %v", what, i, *r.ArrivalMillis, w.ApproximateArrivalTimestamp.UnixMilli())
		}
	}
}

// trunc shortens data for messages.
func trunc(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
