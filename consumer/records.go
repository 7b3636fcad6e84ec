package consumer

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// hashRange is a shard's hash key range; ok is false when it is unknown
// (the lease does not record it, or it does not parse), and then nothing is
// filtered.
type hashRange struct {
	start, end hashkey.Key
	ok         bool
}

func parseHashRange(start, end string) hashRange {
	s, err1 := hashkey.Parse(start)
	e, err2 := hashkey.Parse(end)
	if err1 != nil || err2 != nil || s.Cmp(e) > 0 {
		return hashRange{}
	}
	return hashRange{start: s, end: e, ok: true}
}

// contains reports whether the user record's hash key (its explicit hash
// key if it has a valid one, else the MD5 of its partition key) is in r.
func (r hashRange) contains(sr aggregation.SubRecord) bool {
	if !r.ok {
		return true
	}
	var k hashkey.Key
	if sr.ExplicitHashKey != "" {
		var err error
		if k, err = hashkey.Parse(sr.ExplicitHashKey); err != nil {
			// Not a hash key Kinesis would have accepted: there is no
			// range to judge it by, and dropping data on a guess is worse
			// than delivering it.
			return true
		}
	} else {
		k = hashkey.FromPartitionKey(sr.PartitionKey)
	}
	return k.Cmp(r.start) >= 0 && k.Cmp(r.end) <= 0
}

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
func unpack(dst []Record, recs []types.Record, after checkpoint.Checkpoint, rng hashRange, subBuf []aggregation.SubRecord) ([]Record, batchStats, []aggregation.SubRecord) {
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
			if aggregated && !rng.contains(sr) {
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
