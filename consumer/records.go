package consumer

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// batchStats counts what unpacking a GetRecords result found.
type batchStats struct {
	aggregates, aggregatedUser, dropped, corrupt, skipped int
}

// unpack turns Kinesis records into user records, appended to dst:
// aggregates are unpacked (aggregation.AppendDeaggregate); user records
// at or before after (the zero Checkpoint: none) are skipped, which is how
// a restart from a checkpoint inside an aggregate resumes after the right
// user record; user records of aggregates whose hash key is outside rng
// are dropped.
//
// The KCL drops a whole aggregate when any of its user records is out of
// range (AggregatorUtil). unpack drops only those user records: the in-range
// ones belong to this shard, and a producer that re-sends the out-of-range
// ones to their shard (as the KPL and shoal's producer do after a reshard)
// may or may not re-send the rest, so dropping them could lose them.
// Records that are not aggregated are never filtered: Kinesis routed them.
func unpack(dst []Record, recs []types.Record, after checkpoint.Checkpoint, rng hashkey.Range, subBuf []aggregation.SubRecord) ([]Record, batchStats, []aggregation.SubRecord) {
	var st batchStats
	skipping := after != (checkpoint.Checkpoint{}) && !after.IsSentinel()
	for _, r := range recs {
		seq := aws.ToString(r.SequenceNumber)
		if skipping && checkpoint.CompareSequenceNumbers(seq, after.SequenceNumber) > 0 {
			skipping = false
		}
		var err error
		subBuf, err = aggregation.AppendDeaggregate(subBuf[:0], aws.ToString(r.PartitionKey), r.Data)
		if err != nil && errors.Is(err, aggregation.ErrCorrupt) {
			st.corrupt++
		}
		aggregated := err == nil
		if aggregated {
			st.aggregates++
			st.aggregatedUser += len(subBuf)
		}
		var arrival = aws.ToTime(r.ApproximateArrivalTimestamp)
		for _, sr := range subBuf {
			if skipping && (checkpoint.Checkpoint{SequenceNumber: seq, SubSequenceNumber: sr.SubSequenceNumber}).Compare(after) <= 0 {
				st.skipped++
				continue
			}
			if aggregated && !rng.HoldsRecord(sr.PartitionKey, sr.ExplicitHashKey) {
				st.dropped++
				continue
			}
			dst = append(dst, Record{
				SequenceNumber:              seq,
				SubSequenceNumber:           sr.SubSequenceNumber,
				PartitionKey:                sr.PartitionKey,
				ExplicitHashKey:             sr.ExplicitHashKey,
				Data:                        sr.Data,
				ApproximateArrivalTimestamp: arrival,
				Aggregated:                  sr.Aggregated,
			})
		}
	}
	clear(subBuf[:cap(subBuf)]) // drop references to the data
	return dst, st, subBuf[:0]
}
