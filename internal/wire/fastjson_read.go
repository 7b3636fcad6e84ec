package wire

import (
	"encoding/base64"
	"strconv"
)

// Hand-written JSON encoders for the read path: GetRecords responses and
// SubscribeToShard events, whose records are most of what the server
// writes. Like AppendPutRecordsOutputJSON they write exactly what the
// general encoder writes, and decline (returning false and b unchanged in
// content) whatever they do not handle: a string that is not printable
// ASCII without '"' and '\\', or ChildShards, which only the last read of a
// closed shard carries.

// recordsJSONSize is an upper bound of the bytes appendRecordsJSON writes
// for recs.
func recordsJSONSize(recs []Record) int {
	n := 2
	for i := range recs {
		r := &recs[i]
		// Member names, quotes, commas and a timestamp: under 160 bytes.
		n += 160 + len(r.SequenceNumber) + base64.StdEncoding.EncodedLen(len(r.Data)) + len(r.PartitionKey) + len(r.EncryptionType)
	}
	return n
}

// GetRecordsOutputJSONSize is an upper bound of the bytes that
// AppendGetRecordsOutputJSON appends for out, for the caller to reserve.
func GetRecordsOutputJSONSize(out *GetRecordsOutput) int {
	n := 80 + recordsJSONSize(out.Records)
	if out.NextShardIterator != nil {
		n += len(*out.NextShardIterator)
	}
	return n
}

// AppendGetRecordsOutputJSON appends the JSON form of out to b, as the
// general encoder writes it, and reports true; or reports false, with b
// unchanged in content, when out has ChildShards or a string that needs
// escaping.
func AppendGetRecordsOutputJSON(b []byte, out *GetRecordsOutput) ([]byte, bool) {
	if len(out.ChildShards) > 0 {
		return b, false
	}
	n := len(b)
	b = append(b, `{"Records":`...)
	b, ok := appendRecordsJSON(b, out.Records)
	if !ok {
		return b[:n], false
	}
	if it := out.NextShardIterator; it != nil && *it != "" {
		if !plain(*it) {
			return b[:n], false
		}
		b = append(b, `,"NextShardIterator":"`...)
		b = append(b, *it...)
		b = append(b, '"')
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, out.MillisBehindLatest, 10)
	return append(b, '}'), true
}

// SubscribeToShardEventJSONSize is an upper bound of the bytes that
// AppendSubscribeToShardEventJSON appends for ev.
func SubscribeToShardEventJSONSize(ev *SubscribeToShardEvent) int {
	n := 100 + recordsJSONSize(ev.Records)
	if ev.ContinuationSequenceNumber != nil {
		n += len(*ev.ContinuationSequenceNumber)
	}
	return n
}

// AppendSubscribeToShardEventJSON appends the JSON form of ev to b, as the
// general encoder writes it, and reports true; or reports false, with b
// unchanged in content, when ev has ChildShards or a string that needs
// escaping.
func AppendSubscribeToShardEventJSON(b []byte, ev *SubscribeToShardEvent) ([]byte, bool) {
	if len(ev.ChildShards) > 0 {
		return b, false
	}
	n := len(b)
	b = append(b, `{"Records":`...)
	b, ok := appendRecordsJSON(b, ev.Records)
	if !ok {
		return b[:n], false
	}
	if c := ev.ContinuationSequenceNumber; c != nil && *c != "" {
		if !plain(*c) {
			return b[:n], false
		}
		b = append(b, `,"ContinuationSequenceNumber":"`...)
		b = append(b, *c...)
		b = append(b, '"')
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, ev.MillisBehindLatest, 10)
	return append(b, '}'), true
}

// appendRecordsJSON appends the JSON array of recs, or reports false when
// a string of theirs needs escaping (b is then partly written: the caller
// cuts it back).
func appendRecordsJSON(b []byte, recs []Record) ([]byte, bool) {
	b = append(b, '[')
	for i := range recs {
		r := &recs[i]
		if !plain(r.SequenceNumber) || !plain(r.PartitionKey) || !plain(r.EncryptionType) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"SequenceNumber":"`...)
		b = append(b, r.SequenceNumber...)
		b = append(b, `","ApproximateArrivalTimestamp":`...)
		b = r.ApproximateArrivalTimestamp.AppendJSON(b)
		b = append(b, `,"Data":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Data)
		b = append(b, `","PartitionKey":"`...)
		b = append(b, r.PartitionKey...)
		b = append(b, '"')
		if r.EncryptionType != "" {
			b = append(b, `,"EncryptionType":"`...)
			b = append(b, r.EncryptionType...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ']'), true
}
