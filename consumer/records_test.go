package consumer

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/hashkey"
)

func kinesisRecord(seq string, e types.PutRecordsRequestEntry) types.Record {
	return types.Record{SequenceNumber: aws.String(seq), PartitionKey: e.PartitionKey, Data: e.Data, ApproximateArrivalTimestamp: aws.Time(time.Unix(100, 0))}
}

func userRecords(n int, pk string) []aggregation.UserRecord {
	out := make([]aggregation.UserRecord, n)
	for i := range out {
		out[i] = aggregation.UserRecord{PartitionKey: pk, Data: []byte(fmt.Sprintf("u%d", i))}
	}
	return out
}

func TestUnpackResumesInsideAggregate(t *testing.T) {
	recs := []types.Record{
		kinesisRecord("100", aggregate(t, userRecords(5, "k"))),
		kinesisRecord("200", types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("plain")}),
	}
	for _, tc := range []struct {
		after checkpoint.Checkpoint
		want  []string // seq/sub of the delivered records
	}{
		{checkpoint.Checkpoint{}, []string{"100", "100/1", "100/2", "100/3", "100/4", "200"}},
		{checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}, []string{"100", "100/1", "100/2", "100/3", "100/4", "200"}},
		{checkpoint.Checkpoint{SequenceNumber: "100", SubSequenceNumber: 2}, []string{"100/3", "100/4", "200"}},
		{checkpoint.Checkpoint{SequenceNumber: "100", SubSequenceNumber: 0}, []string{"100/1", "100/2", "100/3", "100/4", "200"}},
		{checkpoint.Checkpoint{SequenceNumber: "100", SubSequenceNumber: 4}, []string{"200"}},
		{checkpoint.Checkpoint{SequenceNumber: "99", SubSequenceNumber: 7}, []string{"100", "100/1", "100/2", "100/3", "100/4", "200"}},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			out, st, _ := unpack(nil, recs, tc.after, hashkey.Range{}, nil)
			var got []string
			for _, r := range out {
				got = append(got, r.Position().String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("delivered %v, want %v", got, tc.want)
			}
			if st.aggregates != 1 || st.aggregatedUser != 5 {
				t.Errorf("stats %+v", st)
			}
			if st.skipped != 6-len(tc.want) {
				t.Errorf("skipped %d, want %d", st.skipped, 6-len(tc.want))
			}
		})
	}
}

func TestUnpackDropsOutOfRange(t *testing.T) {
	starts, ends := hashkey.SplitEvenly(2)
	rng := hashkey.ParseRange(starts[0].String(), ends[0].String())
	in0, in1 := starts[0].String(), starts[1].String() // one hash key in each half
	agg := aggregate(t, []aggregation.UserRecord{
		{PartitionKey: "a", ExplicitHashKey: in0, Data: []byte("in-0")},
		{PartitionKey: "b", ExplicitHashKey: in1, Data: []byte("out-1")},
		{PartitionKey: "c", ExplicitHashKey: ends[0].String(), Data: []byte("in-2")},
		{PartitionKey: "d", ExplicitHashKey: hashkey.Max.String(), Data: []byte("out-3")},
		{PartitionKey: "e", ExplicitHashKey: "not-a-key", Data: []byte("kept-4")},
	})
	// A plain record whose key hashes to the other half is never filtered.
	var plainPK string
	for i := 0; ; i++ {
		plainPK = fmt.Sprint("pk", i)
		if hashkey.FromPartitionKey(plainPK).Cmp(starts[1]) >= 0 {
			break
		}
	}
	recs := []types.Record{
		kinesisRecord("1", agg),
		kinesisRecord("2", types.PutRecordsRequestEntry{PartitionKey: aws.String(plainPK), Data: []byte("plain")}),
	}
	out, st, _ := unpack(nil, recs, checkpoint.Checkpoint{}, rng, nil)
	var got []string
	for _, r := range out {
		got = append(got, string(r.Data))
	}
	if fmt.Sprint(got) != "[in-0 in-2 kept-4 plain]" {
		t.Fatalf("delivered %v", got)
	}
	if st.dropped != 2 {
		t.Fatalf("dropped %d, want 2", st.dropped)
	}
	// Sub-sequence numbers are kept, with gaps where records were dropped.
	if out[1].SubSequenceNumber != 2 || out[1].ExplicitHashKey != ends[0].String() || !out[1].Aggregated {
		t.Fatalf("record %+v", out[1])
	}
}

func TestUnpackPartitionKeyHash(t *testing.T) {
	starts, ends := hashkey.SplitEvenly(4)
	rng := hashkey.ParseRange(starts[2].String(), ends[2].String())
	var recs []aggregation.UserRecord
	want := 0
	for i := 0; i < 200; i++ {
		pk := fmt.Sprint("key-", i)
		k := hashkey.FromPartitionKey(pk)
		if k.Cmp(starts[2]) >= 0 && k.Cmp(ends[2]) <= 0 {
			want++
		}
		recs = append(recs, aggregation.UserRecord{PartitionKey: pk, Data: []byte(pk)})
	}
	out, st, _ := unpack(nil, []types.Record{kinesisRecord("9", aggregate(t, recs))}, checkpoint.Checkpoint{}, rng, nil)
	if len(out) != want || st.dropped != 200-want {
		t.Fatalf("kept %d dropped %d, want %d and %d", len(out), st.dropped, want, 200-want)
	}
}

func TestUnpackCorruptAggregate(t *testing.T) {
	e := aggregate(t, userRecords(3, "k"))
	e.Data[len(e.Data)-1] ^= 0xff // break the MD5
	out, st, _ := unpack(nil, []types.Record{kinesisRecord("5", e)}, checkpoint.Checkpoint{}, hashkey.ParseRange("0", "1"), nil)
	if len(out) != 1 || out[0].Aggregated || st.corrupt != 1 || st.dropped != 0 {
		t.Fatalf("out %d stats %+v", len(out), st)
	}
}
