package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-json-experiment/json"

	"github.com/shoalstream/shoal/internal/wire"
)

// The two encodings as the server uses them (server/codec.go): AWS JSON 1.1
// through go-json-experiment/json with its defaults, and AWS CBOR 1.1
// through fxamacker/cbor with these decoding options and the default
// encoding ones.
var (
	cborDec = func() cbor.DecMode {
		dm, err := cbor.DecOptions{
			MaxArrayElements: 1 << 17,
			MaxMapPairs:      1 << 17,
			DupMapKey:        cbor.DupMapKeyQuiet,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return dm
	}()
	cborEnc = func() cbor.EncMode {
		em, err := cbor.EncOptions{}.EncMode()
		if err != nil {
			panic(err)
		}
		return em
	}()
)

type codec struct {
	name   string
	encode func(v any) ([]byte, error)
	decode func(b []byte, v any) error
}

var codecs = []codec{
	{
		name: "json",
		encode: func(v any) ([]byte, error) {
			var b bytes.Buffer
			err := json.MarshalWrite(&b, v)
			return b.Bytes(), err
		},
		decode: func(b []byte, v any) error { return json.Unmarshal(b, v) },
	},
	{
		name: "cbor",
		encode: func(v any) ([]byte, error) {
			var b bytes.Buffer
			err := cborEnc.NewEncoder(&b).Encode(v)
			return b.Bytes(), err
		},
		decode: func(b []byte, v any) error {
			rest, err := cborDec.UnmarshalFirst(b, v)
			if err == nil && len(rest) != 0 {
				err = errors.New("unexpected data after the object")
			}
			return err
		},
	},
}

// roundTrip encodes in with c and decodes the result into a new T.
func roundTrip[T any](t *testing.T, c codec, in *T) (*T, []byte) {
	t.Helper()
	b, err := c.encode(in)
	if err != nil {
		t.Fatalf("%s: encode %T: %v", c.name, in, err)
	}
	out := new(T)
	if err := c.decode(b, out); err != nil {
		t.Fatalf("%s: decode %T from %x: %v", c.name, in, b, err)
	}
	return out, b
}

// diag returns the CBOR diagnostic notation of b.
func diag(t *testing.T, b []byte) string {
	t.Helper()
	s, err := cbor.Diagnose(b)
	if err != nil {
		t.Fatalf("diagnose %x: %v", b, err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// Milliseconds of 2025-11-06T14:40:00.123Z.
const ms = 1762440000123

// TestRoundTrip sends representative requests and responses through both
// encodings: every member survives, including blobs with every byte value,
// millisecond timestamps, pointers that are set and pointers that are not,
// and the members of embedded structs.
func TestRoundTrip(t *testing.T) {
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	cases := []struct {
		name string
		rt   func(t *testing.T, c codec) (in, out any)
	}{
		{"PutRecordsInput", func(t *testing.T, c codec) (any, any) {
			in := &wire.PutRecordsInput{
				StreamRef: wire.StreamRef{StreamName: ptr("orders")},
				Records: []wire.PutRecordsRequestEntry{
					{Data: blob, PartitionKey: ptr("k1")},
					{Data: []byte("x"), PartitionKey: ptr("k2"), ExplicitHashKey: ptr("340282366920938463463374607431768211455")},
				},
				DryRun: ptr(false),
			}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"GetRecordsOutput", func(t *testing.T, c codec) (any, any) {
			in := &wire.GetRecordsOutput{
				Records: []wire.Record{
					{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", ApproximateArrivalTimestamp: ms, Data: blob, PartitionKey: "k1"},
					{SequenceNumber: "49590338271490256608559692538361571095921575989136588899", ApproximateArrivalTimestamp: ms + 1000, Data: []byte{0}, PartitionKey: "k2", EncryptionType: "NONE"},
				},
				NextShardIterator:  ptr("AAAA"),
				MillisBehindLatest: 1500,
			}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"GetRecordsOutput at a closed shard's end", func(t *testing.T, c codec) (any, any) {
			in := &wire.GetRecordsOutput{
				Records: []wire.Record{{SequenceNumber: "1", ApproximateArrivalTimestamp: ms, Data: []byte("last"), PartitionKey: "k"}},
				ChildShards: []wire.ChildShard{{
					ShardID:      "shardId-000000000002",
					ParentShards: []string{"shardId-000000000000", "shardId-000000000001"},
					HashKeyRange: wire.HashKeyRange{StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455"},
				}},
			}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"ListShardsInput", func(t *testing.T, c codec) (any, any) {
			in := &wire.ListShardsInput{
				StreamRef:  wire.StreamRef{StreamARN: ptr("arn:aws:kinesis:us-east-1:000000000000:stream/orders")},
				MaxResults: ptr(int32(100)),
				ShardFilter: &wire.ShardFilter{
					Type:      ptr("FROM_TIMESTAMP"),
					Timestamp: ptr(wire.Timestamp(ms)),
				},
			}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"DescribeStreamSummaryOutput", func(t *testing.T, c codec) (any, any) {
			in := &wire.DescribeStreamSummaryOutput{StreamDescriptionSummary: wire.StreamDescriptionSummary{
				StreamName:              "orders",
				StreamARN:               "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
				StreamStatus:            "ACTIVE",
				StreamModeDetails:       &wire.StreamModeDetails{StreamMode: "PROVISIONED"},
				RetentionPeriodHours:    24,
				StreamCreationTimestamp: ms,
				EnhancedMonitoring:      []wire.EnhancedMetrics{{ShardLevelMetrics: []string{"IncomingBytes"}}},
				EncryptionType:          "NONE",
				OpenShardCount:          4,
				MaxRecordSizeInKiB:      1024,
				WarmThroughput:          &wire.WarmThroughput{CurrentMiBps: ptr(int32(0))},
			}}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"DescribeStreamConsumerInput", func(t *testing.T, c codec) (any, any) {
			in := &wire.DescribeStreamConsumerInput{ConsumerRef: wire.ConsumerRef{
				StreamARN:    ptr("arn:aws:kinesis:us-east-1:000000000000:stream/orders"),
				ConsumerName: ptr("app"),
			}}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"SubscribeToShardInput", func(t *testing.T, c codec) (any, any) {
			in := &wire.SubscribeToShardInput{
				ConsumerARN: ptr("arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1762440000"),
				ShardID:     ptr("shardId-000000000000"),
				StartingPosition: &wire.StartingPosition{
					Type:      ptr("AT_TIMESTAMP"),
					Timestamp: ptr(wire.Timestamp(ms)),
				},
			}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
		{"AccountSettingsOutput", func(t *testing.T, c codec) (any, any) {
			in := &wire.AccountSettingsOutput{MinimumThroughputBillingCommitment: &wire.MinimumThroughputBillingCommitmentOutput{
				Status:    "ENABLED",
				StartedAt: ptr(wire.Timestamp(ms)),
			}}
			out, _ := roundTrip(t, c, in)
			return in, out
		}},
	}
	for _, c := range codecs {
		for _, tc := range cases {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				in, out := tc.rt(t, c)
				if !reflect.DeepEqual(in, out) {
					t.Fatalf("round trip changed the value:\n in %+v\nout %+v", in, out)
				}
			})
		}
	}
}

// TestJSONForm pins the JSON text of a response: member names, blobs in
// base64, timestamps in epoch seconds with millisecond decimals, and
// optional members left out when absent.
func TestJSONForm(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"GetRecordsOutput", &wire.GetRecordsOutput{
			Records:           []wire.Record{{SequenceNumber: "1", ApproximateArrivalTimestamp: ms, Data: []byte{0, 1, 0xfe, 0xff}, PartitionKey: "k"}},
			NextShardIterator: ptr("it"),
		}, `{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1762440000.123,"Data":"AAH+/w==","PartitionKey":"k"}],"NextShardIterator":"it","MillisBehindLatest":0}`},
		// Nil slices are written as [] (the jsonCodec's documented choice);
		// omitempty members are left out.
		{"empty GetRecordsOutput", &wire.GetRecordsOutput{}, `{"Records":[],"MillisBehindLatest":0}`},
		{"whole-second timestamp", &wire.Consumer{ConsumerName: "app", ConsumerARN: "arn", ConsumerStatus: "ACTIVE", ConsumerCreationTimestamp: 1762440000000},
			`{"ConsumerName":"app","ConsumerARN":"arn","ConsumerStatus":"ACTIVE","ConsumerCreationTimestamp":1762440000}`},
		{"StreamSummary without mode", &wire.StreamSummary{StreamName: "s", StreamARN: "arn", StreamStatus: "CREATING", StreamCreationTimestamp: 1000},
			`{"StreamName":"s","StreamARN":"arn","StreamStatus":"CREATING","StreamCreationTimestamp":1}`},
		{"AccountSettingsOutput without commitment", &wire.AccountSettingsOutput{}, `{}`},
		{"ErrorBody", &wire.ErrorBody{Type: "ResourceNotFoundException", Message: "Stream s not found."},
			`{"__type":"ResourceNotFoundException","message":"Stream s not found."}`},
		{"SubscribeToShardEvent, last of a closed shard", &wire.SubscribeToShardEvent{
			Records:     []wire.Record{},
			ChildShards: []wire.ChildShard{{ShardID: "shardId-000000000001", ParentShards: []string{"shardId-000000000000"}, HashKeyRange: wire.HashKeyRange{StartingHashKey: "0", EndingHashKey: "9"}}},
		}, `{"Records":[],"MillisBehindLatest":0,"ChildShards":[{"ShardId":"shardId-000000000001","ParentShards":["shardId-000000000000"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"9"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := codecs[0].encode(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

// TestCBORForm pins the CBOR of the same kind of values, in diagnostic
// notation: blobs are byte strings, timestamps tag 1 of integer epoch
// milliseconds, absent optional members left out.
func TestCBORForm(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"GetRecordsOutput", &wire.GetRecordsOutput{
			Records:           []wire.Record{{SequenceNumber: "1", ApproximateArrivalTimestamp: ms, Data: []byte{0, 1, 0xfe, 0xff}, PartitionKey: "k"}},
			NextShardIterator: ptr("it"),
		}, `{"Records": [{"SequenceNumber": "1", "ApproximateArrivalTimestamp": 1(1762440000123), "Data": h'0001feff', "PartitionKey": "k"}], "NextShardIterator": "it", "MillisBehindLatest": 0}`},
		{"empty GetRecordsOutput", &wire.GetRecordsOutput{}, `{"Records": null, "MillisBehindLatest": 0}`},
		{"StreamSummary without mode", &wire.StreamSummary{StreamName: "s", StreamARN: "arn", StreamStatus: "CREATING", StreamCreationTimestamp: 1000},
			`{"StreamName": "s", "StreamARN": "arn", "StreamStatus": "CREATING", "StreamCreationTimestamp": 1(1000)}`},
		{"AccountSettingsOutput without commitment", &wire.AccountSettingsOutput{}, `{}`},
		{"ErrorBody", &wire.ErrorBody{Type: "LimitExceededException"}, `{"__type": "LimitExceededException"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := codecs[1].encode(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := diag(t, b); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestOmittedOptionalMembers decodes requests without their optional
// members: the pointers stay nil, so the server can tell "absent" from
// "zero", and explicit nulls (JSON) read as absent too.
func TestOmittedOptionalMembers(t *testing.T) {
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.encode(map[string]any{"StreamName": "orders", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
			if err != nil {
				t.Fatal(err)
			}
			var in wire.GetShardIteratorInput
			if err := c.decode(b, &in); err != nil {
				t.Fatal(err)
			}
			want := wire.GetShardIteratorInput{
				StreamRef:         wire.StreamRef{StreamName: ptr("orders")},
				ShardID:           ptr("shardId-000000000000"),
				ShardIteratorType: ptr("TRIM_HORIZON"),
			}
			if !reflect.DeepEqual(in, want) {
				t.Fatalf("decoded %+v, want %+v", in, want)
			}

			// Zero values that are present stay distinct from absent ones.
			b, err = c.encode(map[string]any{"ShardIterator": "it", "Limit": 0, "DryRun": false})
			if err != nil {
				t.Fatal(err)
			}
			var gr wire.GetRecordsInput
			if err := c.decode(b, &gr); err != nil {
				t.Fatal(err)
			}
			if gr.Limit == nil || *gr.Limit != 0 || gr.DryRun == nil || *gr.DryRun || gr.StreamARN != nil {
				t.Fatalf("decoded %+v: want Limit and DryRun present and zero, StreamARN absent", gr)
			}
		})
	}
	var in wire.PutRecordInput
	if err := codecs[0].decode([]byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k","ExplicitHashKey":null}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.ExplicitHashKey != nil || string(in.Data) != "x" || in.StreamARN != nil {
		t.Fatalf("decoded %+v", in)
	}
}

// TestEmptyBlob: a zero-length blob reads back as zero length in both
// encodings (JSON "" and a CBOR empty byte string).
func TestEmptyBlob(t *testing.T) {
	for _, c := range codecs {
		out, _ := roundTrip(t, c, &wire.PutRecordInput{Data: []byte{}, PartitionKey: ptr("k")})
		if len(out.Data) != 0 || out.PartitionKey == nil || *out.PartitionKey != "k" {
			t.Fatalf("%s: decoded %+v", c.name, out)
		}
	}
}
