package fanout

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// Record is one record a Subscriber delivers: a Kinesis record, or, with
// Config.Deaggregate, one user record of a KPL aggregate.
type Record struct {
	// SequenceNumber is the Kinesis record's sequence number.
	SequenceNumber string
	// SubSequenceNumber is the user record's index in its aggregate (0
	// for a record that is not aggregated).
	SubSequenceNumber int64
	// PartitionKey is the (user) record's partition key.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key from its
	// aggregate, or "".
	ExplicitHashKey string
	// Data is the (user) record's payload.
	Data []byte
	// ApproximateArrivalTimestamp is when Kinesis received the record.
	ApproximateArrivalTimestamp time.Time
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
}

// Batch is what a Subscriber hands to its Handler: the records of one
// SubscribeToShard event of one shard.
type Batch struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Records are in the shard's order. It may be empty (an event that
	// only reports progress).
	Records []Record
	// ContinuationSequenceNumber is where reading the shard resumes
	// (AFTER_SEQUENCE_NUMBER, see Config.ShardPositions) once this batch is
	// processed; empty at the end of the shard.
	ContinuationSequenceNumber string
	// MillisBehindLatest is how far the batch is behind the shard's
	// newest record.
	MillisBehindLatest int64
	// ChildShards are the shard's children, on its last batch only.
	ChildShards []types.ChildShard
}

// ShardEnded reports whether this is the shard's last batch.
func (b Batch) ShardEnded() bool {
	return len(b.ChildShards) > 0 || b.ContinuationSequenceNumber == ""
}

// hashRange is a shard's hash key range from its description; the unknown
// range (which filters nothing) when it has none or it does not parse.
func hashRange(r *types.HashKeyRange) hashkey.Range {
	if r == nil {
		return hashkey.Range{}
	}
	return hashkey.ParseRange(aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey))
}

// toRecords converts an event's Kinesis records. With deaggregate, KPL
// aggregates are unpacked and their user records outside rng (the shard's
// range: after a reshard a producer's aggregate may straddle it) are
// dropped, as the consumer library does; a corrupt aggregate is delivered
// as one plain record. It returns the records and how many were dropped.
func toRecords(recs []types.Record, deaggregate bool, rng hashkey.Range) ([]Record, int) {
	out := make([]Record, 0, len(recs))
	dropped := 0
	var sub []aggregation.SubRecord
	for _, r := range recs {
		seq, pk, at := aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey), aws.ToTime(r.ApproximateArrivalTimestamp)
		if !deaggregate {
			out = append(out, Record{SequenceNumber: seq, PartitionKey: pk, Data: r.Data, ApproximateArrivalTimestamp: at})
			continue
		}
		var err error
		sub, err = aggregation.AppendDeaggregate(sub[:0], pk, r.Data)
		aggregated := err == nil // ErrNotAggregated or ErrCorrupt: one plain record
		for _, sr := range sub {
			if aggregated && !rng.HoldsRecord(sr.PartitionKey, sr.ExplicitHashKey) {
				dropped++
				continue
			}
			out = append(out, Record{
				SequenceNumber: seq, SubSequenceNumber: sr.SubSequenceNumber, PartitionKey: sr.PartitionKey,
				ExplicitHashKey: sr.ExplicitHashKey, Data: sr.Data, ApproximateArrivalTimestamp: at, Aggregated: sr.Aggregated,
			})
		}
	}
	return out, dropped
}

// dataBytes is the size of the records' data (KCL: DataBytesProcessed).
func dataBytes(recs []Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n
}
