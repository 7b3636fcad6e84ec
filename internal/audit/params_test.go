package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/wire"
)

func ptr[T any](v T) *T { return &v }

func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequestParametersPutRecordsHasNoPayload(t *testing.T) {
	in := &wire.PutRecordsInput{StreamRef: wire.StreamRef{StreamName: ptr("orders")}}
	var secrets []string
	for i := range 500 {
		data := fmt.Sprintf("payload-%03d-SECRET", i)
		key := fmt.Sprintf("pk-%03d-KEY", i)
		hash := fmt.Sprintf("9%038d", i)
		in.Records = append(in.Records, wire.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: &key, ExplicitHashKey: &hash})
		secrets = append(secrets, data, key, hash)
	}
	got := RequestParameters(in)
	b := marshal(t, got)
	if b != `{"recordsCount":500,"streamName":"orders"}` {
		t.Errorf("got %s", b)
	}
	// However the record is serialised, nothing of a record shows.
	line := string(encodeLine(t, &Record{EventName: "PutRecords", RequestParameters: got}))
	for _, s := range append(secrets, "SECRET", "KEY", "payload", "cGF5bG9hZ", "partitionKey", "data", "explicitHashKey") {
		if strings.Contains(line, s) {
			t.Fatalf("output holds %q: %s", s, line)
		}
	}
}

// Types beyond the wire package's, for the remaining rules.
type (
	inner struct {
		Name  string  `json:"Name"`
		Depth *int32  `json:"Depth,omitempty"`
		Blob  []byte  `json:"Blob"`
		Kind  *string `json:"Kind"`
	}
	leaf struct {
		Name  string  `json:"Name"`
		Depth *int32  `json:"Depth,omitempty"`
		Kind  *string `json:"Kind"`
	}
	embeddedRef struct {
		StreamARN *string `json:"StreamARN"`
		Shadowed  string  `json:"Limit"`
	}
	pointerMarshaler struct{ n int }
	kitchenSink      struct {
		*embeddedRef
		Limit       *int32            `json:"Limit"` // shadows embeddedRef's
		Inner       inner             `json:"Inner"`
		InnerPtr    *inner            `json:"InnerPtr"`
		Leaves      []leaf            `json:"Leaves"`
		When        time.Time         `json:"When"`
		At          *wire.Timestamp   `json:"At"`
		Custom      pointerMarshaler  `json:"Custom"`
		Tags        map[string]string `json:"Tags"`
		NoTags      map[string]string `json:"NoTags"`
		Keys        []string          `json:"TagKeys"`
		Any         any               `json:"Any"`
		AnyNil      any               `json:"AnyNil"`
		Raw         json.RawMessage   `json:"Raw"`
		Sum         [16]byte          `json:"Sum"`
		Skipped     string            `json:"-"`
		Empty       string            `json:"Empty,omitempty"`
		Zero        int               `json:"Zero"`
		NoTag       bool
		ShardID     string `json:"ShardId"`
		unexported  string
		PartitionID string `json:"partitionKey"` // a payload name under another Go name
	}
)

func (p *pointerMarshaler) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `"custom-%d"`, p.n), nil
}

func TestRequestParametersShapes(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	at := wire.TimestampOf(when)
	for _, c := range []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `null`},
		{"not a struct", "StreamName", `null`},
		{"nothing set", &wire.ListStreamsInput{}, `null`},
		{"create stream: nil pointers left out, nested struct, map",
			&wire.CreateStreamInput{StreamName: ptr("GoodStream"), ShardCount: ptr[int32](1),
				StreamModeDetails: &wire.StreamModeDetails{StreamMode: "PROVISIONED"}, Tags: map[string]string{"Team": "a"}},
			`{"shardCount":1,"streamModeDetails":{"streamMode":"PROVISIONED"},"streamName":"GoodStream","tags":{"Team":"a"}}`},
		{"split shard (the CloudTrail example)",
			&struct {
				wire.StreamRef
				ShardToSplit       *string `json:"ShardToSplit"`
				NewStartingHashKey *string `json:"NewStartingHashKey"`
			}{wire.StreamRef{StreamName: ptr("GoodStream")}, ptr("shardId-000000000000"), ptr("11111111")},
			`{"newStartingHashKey":"11111111","shardToSplit":"shardId-000000000000","streamName":"GoodStream"}`},
		{"put record: data, partition key and hash key left out",
			wire.PutRecordInput{StreamRef: wire.StreamRef{StreamARN: ptr("arn:aws:kinesis:us-east-1:1:stream/s")},
				Data: []byte("SECRET"), PartitionKey: ptr("KEY"), ExplicitHashKey: ptr("7"), SequenceNumberForOrdering: ptr("49")},
			`{"sequenceNumberForOrdering":"49","streamARN":"arn:aws:kinesis:us-east-1:1:stream/s"}`},
		{"get shard iterator: ShardId tag, time value",
			&wire.GetShardIteratorInput{StreamRef: wire.StreamRef{StreamName: ptr("s")}, ShardID: ptr("shardId-000000000001"),
				ShardIteratorType: ptr("AT_TIMESTAMP"), Timestamp: &at},
			`{"shardId":"shardId-000000000001","shardIteratorType":"AT_TIMESTAMP","streamName":"s","timestamp":1704164645}`},
		{"subscribe to shard: nested pointer struct",
			&wire.SubscribeToShardInput{ConsumerARN: ptr("arn:c"), ShardID: ptr("shardId-000000000000"),
				StartingPosition: &wire.StartingPosition{Type: ptr("LATEST")}},
			`{"consumerARN":"arn:c","shardId":"shardId-000000000000","startingPosition":{"type":"LATEST"}}`},
		{"every rule",
			&kitchenSink{
				embeddedRef: &embeddedRef{StreamARN: ptr("arn:s"), Shadowed: "lost"},
				Limit:       ptr[int32](10),
				Inner:       inner{Name: "n", Blob: []byte("SECRET")},
				Leaves:      []leaf{{Name: "a", Depth: ptr[int32](2)}, {Kind: ptr("k")}},
				When:        when, At: &at, Custom: pointerMarshaler{7},
				Tags: map[string]string{"Owner": "x"}, Keys: []string{"a", "b"},
				Any: &inner{Name: "dyn", Blob: []byte("SECRET")},
				Raw: json.RawMessage(`"SECRET"`), Sum: [16]byte{1},
				Skipped: "SECRET", NoTag: true, ShardID: "shardId-1", unexported: "SECRET", PartitionID: "SECRET",
			},
			`{"any":{"name":"dyn"},"at":1704164645,"custom":"custom-7","inner":{"name":"n"},` +
				`"leaves":[{"depth":2,"name":"a"},{"kind":"k","name":""}],"limit":10,"noTag":true,"shardId":"shardId-1",` +
				`"streamARN":"arn:s","tagKeys":["a","b"],"tags":{"Owner":"x"},"when":"2024-01-02T03:04:05Z","zero":0}`},
		{"nil embedded pointer", &kitchenSink{}, `{"custom":"custom-0","inner":{"name":""},"noTag":false,"shardId":"","when":"0001-01-01T00:00:00Z","zero":0}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := marshal(t, RequestParameters(c.in)); got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestRequestParametersRecordSlices(t *testing.T) {
	type entry struct {
		Name string
		Data []byte
	}
	type withPayloadName struct{ PartitionKey string }
	in := struct {
		Entries    []entry            `json:"Entries"`
		Ptrs       *[]*entry          `json:"Ptrs"`
		Named      []withPayloadName  `json:"Named"`
		Nil        []entry            `json:"Nil"`
		None       []entry            `json:"None,omitempty"`
		Shards     []wire.Shard       `json:"Shards"` // no payload: kept
		Array      [2]entry           `json:"Array"`
		Nested     map[string][]byte  `json:"Nested"`
		NestedRecs map[string][]entry `json:"NestedRecs"`
	}{
		Entries:    []entry{{"a", []byte("SECRET")}, {"b", nil}},
		Ptrs:       &[]*entry{{Data: []byte("SECRET")}},
		Named:      []withPayloadName{{"SECRET"}},
		None:       []entry{},
		Shards:     []wire.Shard{{ShardID: "shardId-0"}},
		Nested:     map[string][]byte{"k": []byte("SECRET")},
		NestedRecs: map[string][]entry{"k": {{"n", []byte("SECRET")}}},
	}
	got := marshal(t, RequestParameters(in))
	if strings.Contains(got, "SECRET") {
		t.Fatalf("payload in %s", got)
	}
	for _, want := range []string{`"entriesCount":2`, `"ptrsCount":1`, `"namedCount":1`, `"arrayCount":2`,
		`"shards":[{"hashKeyRange":`, `"nested":{}`, `"nestedRecs":{"k":[{"name":"n"}]}`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	for _, absent := range []string{"nilCount", "noneCount"} {
		if strings.Contains(got, absent) {
			t.Errorf("%s has %s", got, absent)
		}
	}
}

// The result shares no memory with the request: a server may reuse it while
// the record waits in the queue.
func TestRequestParametersCopies(t *testing.T) {
	in := &wire.CreateStreamInput{StreamName: ptr("a"), StreamModeDetails: &wire.StreamModeDetails{StreamMode: "ON_DEMAND"},
		Tags: map[string]string{"k": "v"}}
	ts := wire.Timestamp(1000)
	gsi := &wire.GetShardIteratorInput{Timestamp: &ts}
	got, gotTS := RequestParameters(in), RequestParameters(gsi)
	before, beforeTS := marshal(t, got), marshal(t, gotTS)
	*in.StreamName, in.StreamModeDetails.StreamMode, in.Tags["k"], ts = "b", "PROVISIONED", "w", 2000
	if after := marshal(t, got); after != before {
		t.Errorf("changed with the request: %s, was %s", after, before)
	}
	if after := marshal(t, gotTS); after != beforeTS {
		t.Errorf("timestamp changed with the request: %s, was %s", after, beforeTS)
	}
}

func TestRequestParametersConcurrent(t *testing.T) {
	type fresh struct {
		A *string `json:"A"`
		B []leaf  `json:"B"`
	}
	done := make(chan string)
	for range 8 {
		go func() { done <- marshal(t, RequestParameters(fresh{A: ptr("x"), B: []leaf{{Name: "y"}}})) }()
	}
	for range 8 {
		if got := <-done; got != `{"a":"x","b":[{"name":"y"}]}` {
			t.Errorf("got %s", got)
		}
	}
}

func FuzzRequestParameters(f *testing.F) {
	f.Add([]byte("payload"), "key", "123", "orders")
	f.Add([]byte{0, 0xff}, "", "", "")
	f.Fuzz(func(t *testing.T, data []byte, key, hash, stream string) {
		in := &wire.PutRecordsInput{StreamRef: wire.StreamRef{StreamName: &stream},
			Records: []wire.PutRecordsRequestEntry{{Data: data, PartitionKey: &key, ExplicitHashKey: &hash}}}
		one := &wire.PutRecordInput{StreamRef: in.StreamRef, Data: data, PartitionKey: &key, ExplicitHashKey: &hash}
		for _, v := range []any{in, one} {
			m := RequestParameters(v)
			if len(m) > 2 || m["streamName"] != stream {
				t.Fatalf("RequestParameters(%T) = %v", v, m)
			}
			if _, ok := m["recordsCount"]; ok != (v == in) {
				t.Fatalf("recordsCount in %v", m)
			}
		}
	})
}

func BenchmarkRequestParametersPutRecords(b *testing.B) {
	in := &wire.PutRecordsInput{StreamRef: wire.StreamRef{StreamName: ptr("orders")},
		Records: make([]wire.PutRecordsRequestEntry, 500)}
	b.ReportAllocs()
	for b.Loop() {
		RequestParameters(in)
	}
}

func BenchmarkRequestParametersGetShardIterator(b *testing.B) {
	at := wire.Timestamp(1)
	in := &wire.GetShardIteratorInput{StreamRef: wire.StreamRef{StreamName: ptr("orders")}, ShardID: ptr("shardId-000000000001"),
		ShardIteratorType: ptr("AT_TIMESTAMP"), Timestamp: &at}
	b.ReportAllocs()
	for b.Loop() {
		RequestParameters(in)
	}
}
