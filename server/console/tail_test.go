package console_test

import (
	"bufio"
	"encoding/json"
	"math/big"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

// openTail opens a tail once the console has answered (its starting
// iterators are taken by then); the caller closes the body.
func (e *env) openTail(path string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, e.web.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		_ = res.Body.Close()
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res
}

// nextRecord reads the next event, which must be a record.
func nextRecord(t *testing.T, r *bufio.Reader) record {
	t.Helper()
	ev, ok := readEvent(r)
	if !ok {
		t.Fatal("the tail ended")
	}
	if ev.name != "record" {
		t.Fatalf("event %q: %s", ev.name, ev.data)
	}
	var rec record
	if err := json.Unmarshal([]byte(ev.data), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestTail: the tail pushes records put after it started, follows the
// children of a split, and ends when the console closes.
func TestTail(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("live", 2)
	e.put("live", "before", []byte("before the tail"))
	res := e.openTail("/console/api/streams/live/tail")
	defer func() { _ = res.Body.Close() }()
	events := bufio.NewReader(res.Body)

	shard := e.put("live", "k1", []byte("<b>first</b>"))
	rec := nextRecord(t, events)
	if string(rec.Data) != "<b>first</b>" || rec.ShardID != shard || rec.PartitionKey != "k1" {
		t.Fatalf("first event %+v", rec)
	}

	// A split: the tail follows the children.
	mid := new(big.Int).Lsh(big.NewInt(1), 126).String() // inside shard 0's range
	if _, err := e.sdk.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String("live"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.sdk.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("live"), PartitionKey: aws.String("k2"), ExplicitHashKey: aws.String("1"), Data: []byte("to a child")})
	if err != nil {
		t.Fatal(err)
	}
	rec = nextRecord(t, events)
	if string(rec.Data) != "to a child" || rec.ShardID != aws.ToString(out.ShardId) || rec.ShardID == "shardId-000000000000" {
		t.Fatalf("event after the split %+v (put to %s)", rec, aws.ToString(out.ShardId))
	}

	// Close ends the stream.
	if err := e.con.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := readEvent(events); !ok {
			break
		}
	}
}

// TestTailFilterAndError: key filters the records pushed; a deleted
// stream ends the tail with an error event in the server's words.
func TestTailFilterAndError(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("one", 1)
	res := e.openTail("/console/api/streams/one/tail?key=wanted")
	defer func() { _ = res.Body.Close() }()
	events := bufio.NewReader(res.Body)
	e.put("one", "other", []byte("skip me"))
	e.put("one", "wanted", []byte("show me"))
	// One shard: the records come in order, so the first event shows the
	// other key's record was filtered out.
	if rec := nextRecord(t, events); string(rec.Data) != "show me" {
		t.Fatalf("first event %+v", rec)
	}
	if _, err := e.sdk.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	ev, ok := readEvent(events)
	if !ok || ev.name != "error" {
		t.Fatalf("after the delete: %+v %v", ev, ok)
	}
	var body struct{ Code, Message string }
	if err := json.Unmarshal([]byte(ev.data), &body); err != nil || body.Code != "ResourceNotFoundException" {
		t.Fatalf("error event %s (%v)", ev.data, err)
	}
	if _, ok := readEvent(events); ok {
		t.Fatal("events after the error")
	}
	// A tail of a stream that does not exist is answered at once.
	a := e.do(http.MethodGet, "/console/api/streams/nosuch/tail", nil)
	if a.status != http.StatusBadRequest || a.code() != "ResourceNotFoundException" {
		t.Fatalf("tail of nosuch: %d %s", a.status, a.body)
	}
}
