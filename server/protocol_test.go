package server_test

// Protocol-level conformance, below the SDK: raw HTTP/1.1 requests the SDK
// cannot send (malformed bodies, wrong member types, oversized bodies), AWS
// CBOR 1.1, cleartext HTTP/2 with prior knowledge, and GOAWAY handling.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoalstream/shoal/server"
)

const (
	ctJSON = "application/x-amz-json-1.1"
	ctCBOR = "application/x-amz-cbor-1.1"
)

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkEnvelope asserts what every JSON response carries: a request id and
// the JSON 1.1 content type; for an error, a JSON body with __type and
// message, and the code in X-Amzn-ErrorType too.
func checkEnvelope(t *testing.T, r rawResponse) {
	t.Helper()
	if id := r.Header.Get("x-amzn-RequestId"); !requestIDRE.MatchString(id) {
		t.Fatalf("x-amzn-RequestId %q", id)
	}
	if ct := r.Header.Get("Content-Type"); ct != ctJSON {
		t.Fatalf("Content-Type %q", ct)
	}
	if r.Status == http.StatusOK {
		return
	}
	var b map[string]any
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	typ, _ := b["__type"].(string)
	msg, _ := b["message"].(string)
	if typ == "" || msg == "" {
		t.Fatalf("error body without __type or message: %s", r.Body)
	}
	if h := r.Header.Get("X-Amzn-ErrorType"); h != typ {
		t.Fatalf("X-Amzn-ErrorType %q, __type %q", h, typ)
	}
}

func TestProtocolEnvelope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	ep := e.srv.Endpoint
	e.createStream("s", 1)

	ids := map[string]bool{}
	for _, tc := range []struct {
		name   string
		target string
		ct     string
		body   string
		status int
		code   string
	}{
		{"OK", "Kinesis_20131202.ListStreams", ctJSON, `{}`, 200, ""},
		{"OKNoContentType", "Kinesis_20131202.ListStreams", "", `{}`, 200, ""},
		{"OKJSON10", "Kinesis_20131202.ListStreams", "application/x-amz-json-1.0", `{}`, 200, ""},
		{"OKWhiteSpace", "Kinesis_20131202.DescribeStreamSummary", ctJSON, " \n{\"StreamName\":\"s\"}\n ", 200, ""},
		{"OKEmptyOutput", "Kinesis_20131202.IncreaseStreamRetentionPeriod", ctJSON, `{"StreamName":"s","RetentionPeriodHours":24}`, 200, ""},
		{"UnknownOperation", "Kinesis_20131202.Bogus", ctJSON, `{}`, 400, "UnknownOperationException"},
		{"UnknownOperationLowercase", "Kinesis_20131202.liststreams", ctJSON, `{}`, 400, "UnknownOperationException"},
		{"OtherService", "DynamoDB_20120810.ListTables", ctJSON, `{}`, 400, "UnknownOperationException"},
		{"NoTarget", "", ctJSON, `{}`, 400, "UnknownOperationException"},
		{"BareOperation", "ListStreams", ctJSON, `{}`, 400, "UnknownOperationException"},
		{"UnsupportedContentType", "Kinesis_20131202.ListStreams", "text/plain", `{}`, 400, "UnknownOperationException"},
		{"MalformedJSON", "Kinesis_20131202.CreateStream", ctJSON, `{"StreamName":"x",`, 400, "SerializationException"},
		{"NotJSON", "Kinesis_20131202.ListStreams", ctJSON, `hello`, 400, "SerializationException"},
		{"Array", "Kinesis_20131202.ListStreams", ctJSON, `[]`, 400, "SerializationException"},
		{"TrailingData", "Kinesis_20131202.ListStreams", ctJSON, `{} {}`, 400, "SerializationException"},
		{"StringForInteger", "Kinesis_20131202.CreateStream", ctJSON, `{"StreamName":"x","ShardCount":"x"}`, 400, "SerializationException"},
		{"NumberForString", "Kinesis_20131202.CreateStream", ctJSON, `{"StreamName":5,"ShardCount":1}`, 400, "SerializationException"},
		{"FloatForInteger", "Kinesis_20131202.ListStreams", ctJSON, `{"Limit":1.5}`, 400, "SerializationException"},
		{"IntegerOverflow", "Kinesis_20131202.ListStreams", ctJSON, `{"Limit":99999999999}`, 400, "SerializationException"},
		{"StringForList", "Kinesis_20131202.PutRecords", ctJSON, `{"StreamName":"s","Records":"x"}`, 400, "SerializationException"},
		{"StringForBool", "Kinesis_20131202.PutRecord", ctJSON, `{"StreamName":"s","PartitionKey":"k","Data":"eA==","DryRun":"yes"}`, 400, "SerializationException"},
		{"StringForMap", "Kinesis_20131202.AddTagsToStream", ctJSON, `{"StreamName":"s","Tags":"a=b"}`, 400, "SerializationException"},
		{"BadTimestamp", "Kinesis_20131202.GetShardIterator", ctJSON, `{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":"yesterday"}`, 400, "SerializationException"},
		{"EmptyBody", "Kinesis_20131202.ListStreams", ctJSON, ``, 400, "SerializationException"},
		{"Validation", "Kinesis_20131202.CreateStream", ctJSON, `{}`, 400, "ValidationException"},
		// Member names are case-sensitive: "streamName" is an unknown member.
		{"MemberNameCase", "Kinesis_20131202.DescribeStreamSummary", ctJSON, `{"streamName":"s"}`, 400, "InvalidArgumentException"},
		{"UnknownMemberIgnored", "Kinesis_20131202.DescribeStreamSummary", ctJSON, `{"StreamName":"s","Bogus":[1,{"x":null}]}`, 200, ""},
		{"NotFound", "Kinesis_20131202.DescribeStreamSummary", ctJSON, `{"StreamName":"nope"}`, 400, "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDo(t, ep, tc.target, tc.ct, tc.body)
			checkEnvelope(t, r)
			if r.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.Status, r.Body, tc.status)
			}
			if tc.code != "" {
				if got := r.errorType(t); got != tc.code {
					t.Fatalf("__type %s (%s), want %s", got, r.Body, tc.code)
				}
			}
			id := r.Header.Get("x-amzn-RequestId")
			if ids[id] {
				t.Fatalf("request id %s reused", id)
			}
			ids[id] = true
		})
	}

	t.Run("SerializationMessageNamesMember", func(t *testing.T) {
		r := rawCall(t, ep, "CreateStream", `{"StreamName":"x","ShardCount":"x"}`)
		if !strings.Contains(string(r.Body), "ShardCount") {
			t.Fatalf("message does not name the member: %s", r.Body)
		}
	})

	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, ep+"/", nil)
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		resp, err := rawHTTP.Do(req)
		noErr(t, err, "GET")
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
		checkEnvelope(t, r)
		if r.Status == http.StatusOK {
			t.Fatalf("GET answered 200: %s", b)
		}
	})

	t.Run("PlainJSONContentType", func(t *testing.T) {
		// AWS answers application/json with a coral envelope and 404.
		r := rawDo(t, ep, "Kinesis_20131202.ListStreams", "application/json", `{}`)
		if r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), "UnknownOperationException") {
			t.Fatalf("application/json: %d %s", r.Status, r.Body)
		}
		if !requestIDRE.MatchString(r.Header.Get("x-amzn-RequestId")) {
			t.Fatalf("no request id")
		}
	})

	t.Run("SDKSeesRequestID", func(t *testing.T) {
		_, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("nope")})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("got %v (%T), want %T", err, err, rnf)
		}
		if !strings.Contains(rnf.ErrorMessage(), "nope") {
			t.Fatalf("message %q", rnf.ErrorMessage())
		}
		if !strings.Contains(err.Error(), "RequestID: ") {
			t.Fatalf("SDK error carries no request id: %v", err)
		}
	})
}

// rawConn opens a TCP connection to the server of endpoint.
func rawConn(t *testing.T, endpoint string) net.Conn {
	t.Helper()
	u, err := url.Parse(endpoint)
	noErr(t, err, "parse endpoint")
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	noErr(t, err, "dial")
	t.Cleanup(func() { _ = c.Close() }) // a test may have closed it already
	return c
}

func checkTooLarge(t *testing.T, resp *http.Response) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read to the end
	noErr(t, err, "read 413 body")
	r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%s), want 413", r.Status, b)
	}
	checkEnvelope(t, r)
	if got := r.errorType(t); got != "SerializationException" {
		t.Fatalf("__type %s", got)
	}
}

func TestProtocolBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	const over = 16<<20 + 1

	t.Run("ContentLength", func(t *testing.T) {
		// Announce 16 MiB + 1 but send only 64 KiB: the server must answer
		// without waiting for (or reading) the rest.
		c := rawConn(t, e.srv.Endpoint)
		noErr(t, c.SetDeadline(time.Now().Add(20*time.Second)), "deadline")
		_, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: shoal\r\nContent-Type: %s\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: %d\r\n\r\n", ctJSON, over)
		noErr(t, err, "write head")
		_, err = c.Write(bytes.Repeat([]byte(" "), 64<<10))
		noErr(t, err, "write body start")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		noErr(t, err, "read response")
		checkTooLarge(t, resp)
	})

	t.Run("Chunked", func(t *testing.T) {
		// Without a length, the server reads up to the limit and no further.
		c := rawConn(t, e.srv.Endpoint)
		noErr(t, c.SetDeadline(time.Now().Add(30*time.Second)), "deadline")
		var wg sync.WaitGroup
		wg.Go(func() {
			w := bufio.NewWriter(c)
			// Writes fail once the server hangs up after answering. A
			// bufio.Writer keeps its first error, so the check after each
			// chunk covers the writes before it, and the end may fail too.
			_, _ = fmt.Fprintf(w, "POST / HTTP/1.1\r\nHost: shoal\r\nContent-Type: %s\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\nTransfer-Encoding: chunked\r\n\r\n", ctJSON)
			chunk := bytes.Repeat([]byte(" "), 1<<20)
			for i := 0; i < 24; i++ {
				_, _ = fmt.Fprintf(w, "%x\r\n", len(chunk))
				_, _ = w.Write(chunk)
				if _, err := w.WriteString("\r\n"); err != nil {
					return // the server hung up after answering
				}
			}
			_, _ = w.WriteString("0\r\n\r\n")
			_ = w.Flush()
		})
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		noErr(t, err, "read response")
		checkTooLarge(t, resp)
		_ = c.Close() // stops the writer; the cleanup closes it again
		wg.Wait()
	})

	t.Run("SDK", func(t *testing.T) {
		// 12 MiB of data is 16 MiB of base64: over the body limit. The SDK
		// sees the 413 as an error (not a crash, not a hang).
		recs := make([]types.PutRecordsRequestEntry, 12)
		for i := range recs {
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, 1<<20)}
		}
		_, err := e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		wantCode(t, err, "SerializationException")
	})

	// The server is still serving.
	e.put("s", "k", []byte("still here"))
	if got := datas(e.readShard("s", shardID(0))); got != "still here" {
		t.Fatalf("after oversized requests the shard holds %q", got)
	}
}

// cborCall posts req, CBOR-encoded, to op and decodes the response map.
func cborCall(t *testing.T, endpoint, op string, req any) (int, map[string]cbor.RawMessage) {
	t.Helper()
	b, err := cbor.Marshal(req)
	noErr(t, err, "cbor encode")
	r := rawDo(t, endpoint, "Kinesis_20131202."+op, ctCBOR, b)
	if ct := r.Header.Get("Content-Type"); ct != ctCBOR {
		t.Fatalf("%s: Content-Type %q (%q)", op, ct, r.Body)
	}
	if !requestIDRE.MatchString(r.Header.Get("x-amzn-RequestId")) {
		t.Fatalf("%s: no request id", op)
	}
	var m map[string]cbor.RawMessage
	if err := cbor.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: response %x is not a CBOR map: %v", op, r.Body, err)
	}
	return r.Status, m
}

func cborOK(t *testing.T, endpoint, op string, req any) map[string]cbor.RawMessage {
	t.Helper()
	status, m := cborCall(t, endpoint, op, req)
	if status != http.StatusOK {
		t.Fatalf("%s: status %d: %v", op, status, cborText(m))
	}
	return m
}

func cborErr(t *testing.T, endpoint, op string, req any, code string) {
	t.Helper()
	status, m := cborCall(t, endpoint, op, req)
	if status != http.StatusBadRequest {
		t.Fatalf("%s: status %d, want 400 %s", op, status, code)
	}
	var typ, msg string
	if err := cbor.Unmarshal(m["__type"], &typ); err != nil || typ != code {
		t.Fatalf("%s: __type %q (%v), want %s", op, typ, err, code)
	}
	if err := cbor.Unmarshal(m["message"], &msg); err != nil || msg == "" {
		t.Fatalf("%s: no message", op)
	}
}

func cborText(m map[string]cbor.RawMessage) string {
	var parts []string
	for k, v := range m {
		d, _ := cbor.Diagnose(v)
		parts = append(parts, k+"="+d)
	}
	return strings.Join(parts, " ")
}

func cborString(t *testing.T, raw cbor.RawMessage) string {
	t.Helper()
	var s string
	if len(raw) == 0 || raw[0]>>5 != 3 {
		t.Fatalf("%x is not a CBOR text string", raw)
	}
	noErr(t, cbor.Unmarshal(raw, &s), "cbor text")
	return s
}

// cborTimestampMillis asserts raw is tag 1 wrapping an integer (AWS CBOR's
// epoch milliseconds) and returns the integer.
func cborTimestampMillis(t *testing.T, raw cbor.RawMessage) int64 {
	t.Helper()
	if len(raw) == 0 || raw[0] != 0xC1 {
		t.Fatalf("timestamp %x is not CBOR tag 1", raw)
	}
	var tag cbor.RawTag
	noErr(t, cbor.Unmarshal(raw, &tag), "cbor tag")
	if tag.Number != 1 {
		t.Fatalf("tag %d", tag.Number)
	}
	if mt := tag.Content[0] >> 5; mt != 0 {
		t.Fatalf("tag 1 content %x has major type %d, want 0 (unsigned integer)", tag.Content, mt)
	}
	var ms int64
	noErr(t, cbor.Unmarshal(tag.Content, &ms), "cbor integer")
	return ms
}

func TestProtocolCBOR(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	ep := e.srv.Endpoint

	cborOK(t, ep, "CreateStream", map[string]any{"StreamName": "c", "ShardCount": 1})
	sum := cborOK(t, ep, "DescribeStreamSummary", map[string]any{"StreamName": "c"})
	var desc map[string]cbor.RawMessage
	noErr(t, cbor.Unmarshal(sum["StreamDescriptionSummary"], &desc), "summary")
	if cborString(t, desc["StreamStatus"]) != "ACTIVE" {
		t.Fatalf("status %s", cborText(desc))
	}
	created := cborTimestampMillis(t, desc["StreamCreationTimestamp"])
	if d := time.Since(time.UnixMilli(created)); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("StreamCreationTimestamp %d ms is %v from now", created, d)
	}

	payloads := [][]byte{{0x00, 0x01, 0xFF, 0xFE}, {}, []byte("plain text")}
	var seqs []string
	for _, p := range payloads {
		put := cborOK(t, ep, "PutRecord", map[string]any{"StreamName": "c", "PartitionKey": "k", "Data": p})
		if cborString(t, put["ShardId"]) != shardID(0) {
			t.Fatalf("ShardId %s", cborText(put))
		}
		seqs = append(seqs, cborString(t, put["SequenceNumber"]))
	}

	it := cborOK(t, ep, "GetShardIterator", map[string]any{"StreamName": "c", "ShardId": shardID(0), "ShardIteratorType": "TRIM_HORIZON"})
	recs := cborRecords(t, ep, cborString(t, it["ShardIterator"]))
	if len(recs) != len(payloads) {
		t.Fatalf("read %d records", len(recs))
	}
	var arrivals []int64
	for i, r := range recs {
		raw := r["Data"]
		if len(raw) == 0 || raw[0]>>5 != 2 {
			t.Fatalf("record %d: Data %x is not a CBOR byte string", i, raw)
		}
		var data []byte
		noErr(t, cbor.Unmarshal(raw, &data), "data")
		if !bytes.Equal(data, payloads[i]) {
			t.Fatalf("record %d: Data %x, want %x", i, data, payloads[i])
		}
		if cborString(t, r["SequenceNumber"]) != seqs[i] || cborString(t, r["PartitionKey"]) != "k" {
			t.Fatalf("record %d: %s", i, cborText(r))
		}
		ms := cborTimestampMillis(t, r["ApproximateArrivalTimestamp"])
		if d := time.Since(time.UnixMilli(ms)); d < -5*time.Second || d > 5*time.Second {
			t.Fatalf("record %d: ApproximateArrivalTimestamp %d ms is %v from now", i, ms, d)
		}
		arrivals = append(arrivals, ms)
	}

	// A record that arrives strictly later than the last one.
	eventually(t, 5*time.Second, func() error {
		if time.Now().UnixMilli() <= arrivals[len(arrivals)-1] {
			return fmt.Errorf("clock still at %d ms", arrivals[len(arrivals)-1])
		}
		return nil
	})
	cborOK(t, ep, "PutRecord", map[string]any{"StreamName": "c", "PartitionKey": "k", "Data": []byte("later")})
	last := arrivals[len(arrivals)-1]
	for _, tc := range []struct {
		ms   int64
		want int
	}{{arrivals[0], 4}, {last, 4 - indexOf(arrivals, last)}, {last + 1, 1}} {
		at := cborOK(t, ep, "GetShardIterator", map[string]any{"StreamName": "c", "ShardId": shardID(0), "ShardIteratorType": "AT_TIMESTAMP",
			"Timestamp": cbor.Tag{Number: 1, Content: tc.ms}})
		if got := len(cborRecords(t, ep, cborString(t, at["ShardIterator"]))); got != tc.want {
			t.Fatalf("AT_TIMESTAMP %d: %d records, want %d", tc.ms, got, tc.want)
		}
	}

	// Errors are CBOR maps too.
	cborErr(t, ep, "DescribeStreamSummary", map[string]any{"StreamName": "nope"}, "ResourceNotFoundException")
	cborErr(t, ep, "CreateStream", map[string]any{"StreamName": "c", "ShardCount": 1}, "ResourceInUseException")
	cborErr(t, ep, "CreateStream", map[string]any{"ShardCount": 1}, "ValidationException")
	cborErr(t, ep, "CreateStream", map[string]any{"StreamName": "x", "ShardCount": "one"}, "SerializationException")
	cborErr(t, ep, "Bogus", map[string]any{}, "UnknownOperationException")
	for _, body := range [][]byte{{0xFF}, {0xA1, 0x61}, []byte("{}")} {
		r := rawDo(t, ep, "Kinesis_20131202.ListStreams", ctCBOR, body)
		var m map[string]any
		if r.Status != http.StatusBadRequest || r.Header.Get("Content-Type") != ctCBOR || cbor.Unmarshal(r.Body, &m) != nil || m["__type"] != "SerializationException" {
			t.Fatalf("malformed CBOR %x: %d %q", body, r.Status, r.Body)
		}
	}
}

func indexOf(xs []int64, x int64) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// cborRecords reads a shard to its end over CBOR and returns the records.
func cborRecords(t *testing.T, ep, it string) []map[string]cbor.RawMessage {
	t.Helper()
	var all []map[string]cbor.RawMessage
	for {
		out := cborOK(t, ep, "GetRecords", map[string]any{"ShardIterator": it})
		var recs []map[string]cbor.RawMessage
		noErr(t, cbor.Unmarshal(out["Records"], &recs), "records")
		var behind int64
		noErr(t, cbor.Unmarshal(out["MillisBehindLatest"], &behind), "MillisBehindLatest")
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		it = cborString(t, out["NextShardIterator"])
	}
}

// h2cTransport speaks cleartext HTTP/2 with prior knowledge, and nothing else.
func h2cTransport() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: &p}
}

func TestProtocolH2C(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	tr := h2cTransport()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	req, _ := http.NewRequest(http.MethodPost, e.srv.Endpoint+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", ctJSON)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	resp, err := hc.Do(req)
	noErr(t, err, "h2c ListStreams")
	defer func() { _ = resp.Body.Close() }()
	if resp.ProtoMajor != 2 {
		t.Fatalf("response protocol %s, want HTTP/2", resp.Proto)
	}
	var ls struct{ StreamNames []string }
	noErr(t, json.NewDecoder(resp.Body).Decode(&ls), "decode")
	if resp.StatusCode != 200 || len(ls.StreamNames) != 1 || ls.StreamNames[0] != "s" {
		t.Fatalf("status %d, streams %v", resp.StatusCode, ls.StreamNames)
	}
	if !requestIDRE.MatchString(resp.Header.Get("x-amzn-RequestId")) || resp.Header.Get("Content-Type") != ctJSON {
		t.Fatalf("headers %v", resp.Header)
	}

	// The SDK works over h2c too, including errors.
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		BaseEndpoint: aws.String(e.srv.Endpoint),
		HTTPClient:   hc,
	})
	ctx := context.Background()
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("over h2c")})
	noErr(t, err, "SDK PutRecord over h2c")
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	noErr(t, err, "SDK GetShardIterator over h2c")
	gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	noErr(t, err, "SDK GetRecords over h2c")
	if datas(gr.Records) != "over h2c" {
		t.Fatalf("read %q", datas(gr.Records))
	}
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("nope")})
	wantErr[types.ResourceNotFoundException](t, err)

	// Many concurrent streams on one connection.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Go(func() {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("c")}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent PutRecord over h2c: %v", err)
	}
}

// TestProtocolH2GoAway sends a GetRecords whose answer is about 1.4 MiB on a
// raw HTTP/2 connection, and GOAWAY as soon as the response HEADERS arrive,
// with the flow-control window still closed: the server must finish the
// response it started (all DATA, END_STREAM), and must never send a PING
// ACK, since the client sent no PING.
func TestProtocolH2GoAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("g", 1)
	const recSize, nRecs = 128 << 10, 8
	var want int
	for i := 0; i < nRecs; i++ {
		e.put("g", "k", bytes.Repeat([]byte{byte('a' + i)}, recSize))
		want += recSize
	}
	it := e.iterator("g", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	reqBody, _ := json.Marshal(map[string]string{"ShardIterator": it})

	c := rawConn(t, e.srv.Endpoint)
	noErr(t, c.SetDeadline(time.Now().Add(30*time.Second)), "deadline")
	_, err := io.WriteString(c, http2.ClientPreface)
	noErr(t, err, "preface")
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 20
	noErr(t, fr.WriteSettings(), "SETTINGS") // default 64 KiB windows

	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", c.RemoteAddr().String()},
		{"content-type", ctJSON}, {"x-amz-target", "Kinesis_20131202.GetRecords"}, {"content-length", fmt.Sprint(len(reqBody))},
	} {
		noErr(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}), "hpack")
	}
	noErr(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}), "HEADERS")
	noErr(t, fr.WriteData(1, true, reqBody), "DATA")

	var (
		body          bytes.Buffer
		status        string
		contentLength string
		sentGoAway    bool
		dataAfterGA   int
		serverGoAway  bool
		ended         bool
	)
	for !ended {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame (after %d body bytes, GOAWAY sent %v): %v", body.Len(), sentGoAway, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				noErr(t, fr.WriteSettingsAck(), "SETTINGS ACK")
			}
		case *http2.PingFrame:
			if f.IsAck() {
				t.Fatalf("server sent a PING ACK for a PING the client never sent: %x", f.Data)
			}
			noErr(t, fr.WritePing(true, f.Data), "PING ACK")
		case *http2.GoAwayFrame:
			serverGoAway = true
			if f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("server GOAWAY with %v", f.ErrCode)
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("server reset stream %d: %v", f.StreamID, f.ErrCode)
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HEADERS on stream %d", f.StreamID)
			}
			if status == "" {
				status = f.PseudoValue("status")
				for _, h := range f.RegularFields() {
					if h.Name == "content-length" {
						contentLength = h.Value
					}
				}
				noErr(t, fr.WriteGoAway(0, http2.ErrCodeNo, nil), "GOAWAY")
				sentGoAway = true
			}
			ended = f.StreamEnded()
		case *http2.DataFrame:
			if f.StreamID != 1 {
				t.Fatalf("DATA on stream %d", f.StreamID)
			}
			body.Write(f.Data())
			if sentGoAway {
				dataAfterGA += len(f.Data())
			}
			ended = f.StreamEnded()
			if n := uint32(len(f.Data())); n > 0 && !ended {
				noErr(t, fr.WriteWindowUpdate(0, n), "WINDOW_UPDATE conn")
				noErr(t, fr.WriteWindowUpdate(1, n), "WINDOW_UPDATE stream")
			}
		}
	}
	if status != "200" {
		t.Fatalf(":status %q: %s", status, body.Bytes())
	}
	if contentLength != fmt.Sprint(body.Len()) {
		t.Fatalf("content-length %s, received %d bytes", contentLength, body.Len())
	}
	if dataAfterGA == 0 {
		t.Fatal("the whole body arrived before GOAWAY was sent; the test proved nothing")
	}
	var out struct {
		Records []struct{ Data []byte }
	}
	noErr(t, json.Unmarshal(body.Bytes(), &out), "decode GetRecords")
	got := 0
	for i, r := range out.Records {
		if !bytes.Equal(r.Data, bytes.Repeat([]byte{byte('a' + i)}, recSize)) {
			t.Fatalf("record %d corrupted", i)
		}
		got += len(r.Data)
	}
	if len(out.Records) != nRecs || got != want {
		t.Fatalf("%d records, %d bytes; want %d, %d", len(out.Records), got, nRecs, want)
	}

	// Read what else the server sends until it closes the connection: a
	// GOAWAY of its own, never a PING ACK.
	noErr(t, c.SetReadDeadline(time.Now().Add(5*time.Second)), "deadline")
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break // EOF once the server closes, or the deadline
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() {
				t.Fatalf("server sent a PING ACK for a PING the client never sent: %x", f.Data)
			}
		case *http2.GoAwayFrame:
			serverGoAway = true
		}
	}
	if !serverGoAway {
		t.Error("the server did not answer the client's GOAWAY with its own")
	}
}
