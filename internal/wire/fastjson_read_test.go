package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/go-json-experiment/json"
)

// TestPlain checks plain against the byte rule: each byte value at each
// position of an otherwise plain string.
func TestPlain(t *testing.T) {
	rule := func(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }
	for n := 1; n <= 17; n++ {
		for pos := range n {
			for c := range 256 {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				if got, want := plain(string(b)), rule(byte(c)); got != want {
					t.Fatalf("plain(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	if !plain("") || !plain("170141183460469231731687303715884105728") || plain("shardId-000000000001\x00") {
		t.Fatal("plain")
	}
}

// checkEncodeRead holds the read-path encoders to the general encoder.
func checkEncodeRead(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	var (
		got []byte
		ok  bool
		max int
	)
	pre := []byte("prefix")
	switch v := v.(type) {
	case *GetRecordsOutput:
		got, ok = AppendGetRecordsOutputJSON(pre, v)
		max = GetRecordsOutputJSONSize(v)
	case *SubscribeToShardEvent:
		got, ok = AppendSubscribeToShardEventJSON(pre, v)
		max = SubscribeToShardEventJSONSize(v)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("lost the prefix: %q", got)
	}
	got = got[len("prefix"):]
	if err != nil { // invalid UTF-8: the fast encoder must leave it to the general one
		if ok {
			t.Fatalf("encoded %+v, which the general encoder refuses: %v", v, err)
		}
		return
	}
	if !ok {
		if len(got) != 0 {
			t.Fatalf("declined but wrote %q", got)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode:\nfast    %s\ngeneral %s", got, want)
	}
	if len(got) > max {
		t.Fatalf("wrote %d bytes, more than the %d its size bound allows", len(got), max)
	}
}

var readStrs = []string{"", "", "170141183460469231731687303715884105728", "bench-1234", "KMS", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "é", "a\"b", "tab\t", "<html>&", "\xff"}

func randRecords(r *rand.Rand) []Record {
	var recs []Record
	if r.IntN(5) == 0 {
		return []Record{}
	}
	for n := r.IntN(6); n > 0; n-- {
		rec := Record{
			SequenceNumber:              readStrs[r.IntN(len(readStrs))],
			ApproximateArrivalTimestamp: Timestamp(r.Int64N(4e12) - 1e12),
			PartitionKey:                readStrs[r.IntN(len(readStrs))],
			EncryptionType:              readStrs[r.IntN(len(readStrs))],
		}
		if k := r.IntN(40); k > 0 {
			rec.Data = make([]byte, k-1)
			for i := range rec.Data {
				rec.Data[i] = byte(r.Uint32())
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestAppendReadJSONMatchesGeneral(t *testing.T) {
	it := "AAAAAAAAAAGRp7R5b2xlLmJlbmNoAAAAAA=="
	checkEncodeRead(t, &GetRecordsOutput{})
	checkEncodeRead(t, &GetRecordsOutput{ChildShards: []ChildShard{}})
	checkEncodeRead(t, &GetRecordsOutput{ChildShards: []ChildShard{{ShardID: "shardId-000000000001", ParentShards: []string{"x"}}}})
	checkEncodeRead(t, &SubscribeToShardEvent{})
	checkEncodeRead(t, &SubscribeToShardEvent{Records: []Record{}, ContinuationSequenceNumber: &it})
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var p *string
		if r.IntN(3) > 0 {
			p = &readStrs[r.IntN(len(readStrs))]
		}
		checkEncodeRead(t, &GetRecordsOutput{Records: randRecords(r), NextShardIterator: p, MillisBehindLatest: r.Int64N(1e6) - 10})
		checkEncodeRead(t, &SubscribeToShardEvent{Records: randRecords(r), ContinuationSequenceNumber: p, MillisBehindLatest: r.Int64N(1e6)})
	}
}

func FuzzAppendGetRecordsOutputJSON(f *testing.F) {
	f.Add("170141183460469231731687303715884105728", int64(1762440000123), []byte("data"), "bench-1", "", "AAAA", int64(0))
	f.Add("", int64(-1), []byte(nil), "é", "KMS", "", int64(5))
	f.Fuzz(func(t *testing.T, seq string, ts int64, data []byte, pk, enc, it string, behind int64) {
		recs := []Record{{SequenceNumber: seq, ApproximateArrivalTimestamp: Timestamp(ts % 1e14), Data: data, PartitionKey: pk, EncryptionType: enc}, {SequenceNumber: seq, PartitionKey: pk}}
		checkEncodeRead(t, &GetRecordsOutput{Records: recs, NextShardIterator: &it, MillisBehindLatest: behind})
		checkEncodeRead(t, &SubscribeToShardEvent{Records: recs, ContinuationSequenceNumber: &it, MillisBehindLatest: behind})
	})
}
