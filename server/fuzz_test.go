package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"

	"github.com/go-json-experiment/json"
)

// FuzzRequest feeds arbitrary bodies to every operation through the real
// HTTP handler of a server with one stream. Whatever the body, the server
// must answer (no panic), with 200 or a client error carrying an AWS error
// code in a JSON body, never a 5xx: no input is the server's fault.
func FuzzRequest(f *testing.F) {
	srv, err := New(Config{DataDir: f.TempDir(), ShardLimit: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	h := srv.Handler()
	do := func(op string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", targetPrefix+op)
		req.Header.Set("Content-Type", contentTypeJSON)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("CreateStream", []byte(`{"StreamName":"f","ShardCount":2}`)); rec.Code != 200 {
		f.Fatalf("create stream: %d %s", rec.Code, rec.Body)
	}
	ops := make([]string, 0, len(srv.ops))
	for name := range srv.ops {
		ops = append(ops, name)
	}
	sort.Strings(ops)
	seeds := []string{
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
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ops[int(opIndex)%len(ops)]
		if op == "DeleteStream" {
			return // keep the stream the other operations need
		}
		rec := do(op, body)
		if rec.Code == http.StatusOK {
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", op, body, rec.Code, rec.Body)
		}
		var eb errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Type == "" {
			t.Fatalf("%s %q: status %d with a body that is not an AWS error: %q", op, body, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("X-Amzn-ErrorType"); got != eb.Type {
			t.Fatalf("%s: X-Amzn-ErrorType %q but __type %q", op, got, eb.Type)
		}
	})
}
