package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-json-experiment/json"
)

// fuzzTarget is a server with one stream ("f") behind its real HTTP
// handler, for the request fuzzers.
type fuzzTarget struct {
	srv *Server
	ops []string // every operation, sorted
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	srv, err := New(Config{DataDir: f.TempDir(), ShardLimit: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	ft := &fuzzTarget{srv: srv}
	if rec := ft.do("CreateStream", contentTypeJSON, []byte(`{"StreamName":"f","ShardCount":2}`)); rec.Code != 200 {
		f.Fatalf("create stream: %d %s", rec.Code, rec.Body)
	}
	for name := range srv.ops {
		ft.ops = append(ft.ops, name)
	}
	sort.Strings(ft.ops)
	return ft
}

func (ft *fuzzTarget) do(op, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	ft.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// check sends body to the operation opIndex picks: whatever the body, the
// server must answer (no panic), with 200 or a client error carrying an
// AWS error code in a body of the request's protocol, never a 5xx.
func (ft *fuzzTarget) check(t *testing.T, opIndex uint8, contentType string, body []byte, decode func([]byte, any) error) {
	op := ft.ops[int(opIndex)%len(ft.ops)]
	if op == "DeleteStream" {
		return // keep the stream the other operations need
	}
	rec := ft.do(op, contentType, body)
	if rec.Code == http.StatusOK {
		return
	}
	if rec.Code >= 500 {
		t.Fatalf("%s %q: status %d: %s", op, body, rec.Code, rec.Body)
	}
	var eb errorBody
	if err := decode(rec.Body.Bytes(), &eb); err != nil || eb.Type == "" {
		t.Fatalf("%s %q: status %d with a body that is not an AWS error: %q", op, body, rec.Code, rec.Body)
	}
	if got := rec.Header().Get("X-Amzn-ErrorType"); got != eb.Type {
		t.Fatalf("%s: X-Amzn-ErrorType %q but __type %q", op, got, eb.Type)
	}
}

// fuzzSeeds are request bodies (JSON) of several operations.
var fuzzSeeds = []string{
	`{"StreamName":"f","Records":[{"Data":"AAE=","PartitionKey":"k"}]}`,
	`{"StreamName":"f","Data":"AAE=","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211455"}`,
	`{"StreamName":"f","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5e9}`,
	`{"StreamName":"f","ShardFilter":{"Type":"AFTER_SHARD_ID","ShardId":"shardId-000000000000"},"MaxResults":1}`,
	`{"ShardIterator":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","Limit":1}`,
	`{"StreamName":"g","ShardCount":1,"Tags":{"a":"b"}}`,
	`{"StreamName":"f","RetentionPeriodHours":48}`,
	`{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/f","MaxRecordSizeInKiB":2048}`,
	`{"StreamName":"f","Records":[]}`, `null`, `[]`, `{"StreamName":1}`, `{`, ``,
}

// FuzzRequest feeds arbitrary JSON 1.1 bodies to every operation through
// the real HTTP handler (see fuzzTarget.check).
func FuzzRequest(f *testing.F) {
	ft := newFuzzTarget(f)
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		ft.check(t, opIndex, contentTypeJSON, body, func(b []byte, v any) error { return json.Unmarshal(b, v) })
	})
}

// FuzzRequestCBOR is FuzzRequest for AWS CBOR 1.1 bodies (what the Java SDK
// sends): the seeds are the JSON seeds re-encoded as CBOR, with record data
// as byte strings and timestamps as tagged epoch times, as the SDK encodes
// them.
func FuzzRequestCBOR(f *testing.F) {
	ft := newFuzzTarget(f)
	for i, s := range fuzzSeeds {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			f.Add(uint8(i), []byte(s)) // not JSON: as raw bytes
			continue
		}
		raw, err := cborEnc.Marshal(cborSeed(v))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), raw)
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		ft.check(t, opIndex, contentTypeCBOR, body, cborDec.Unmarshal)
	})
}

// cborSeed turns a decoded JSON seed into what the SDK's CBOR codec sends:
// "Data" members as byte strings, "Timestamp" as a tag-1 epoch time.
func cborSeed(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			switch s, isStr := e.(string); {
			case k == "Data" && isStr:
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					b = []byte(s)
				}
				out[k] = b
			case k == "Timestamp":
				if n, ok := e.(float64); ok {
					out[k] = cbor.Tag{Number: 1, Content: n}
					continue
				}
				out[k] = e
			default:
				out[k] = cborSeed(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cborSeed(e)
		}
		return out
	}
	return v
}
