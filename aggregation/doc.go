// Package aggregation reads and writes the KPL aggregated record format:
// many user records packed into one Kinesis record, byte-compatible with
// the Kinesis Producer Library (KPL), the Kinesis Client Library (KCL) and
// awslabs/kinesis-aggregation.
//
// Aggregation is how a producer gets past a shard's limit of 1,000 records
// per second: a shard still takes 1 MiB/s, and one aggregated record can
// carry thousands of small user records.
//
// # Format
//
// An aggregated record's data is
//
//	F3 89 9A C2          Magic
//	protobuf message     AggregatedRecord, below
//	16 bytes             MD5 of the protobuf message (not of Magic)
//
// with the proto2 schema of the KPL (aws/kinesis/protobuf/messages.proto):
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag { required string key = 1; optional string value = 2; }
//
// Each user record names its keys by index into the tables, so a key
// shared by many records is stored once. The message is encoded and
// decoded with google.golang.org/protobuf's protowire.
//
// # Producing
//
// An Aggregator collects user records and builds one Kinesis record:
//
//	agg, err := aggregation.NewAggregator(aggregation.Config{})
//	for _, r := range userRecords {
//		err := agg.Add(r)
//		if errors.Is(err, aggregation.ErrFull) {
//			rec, _ := agg.Build() // send rec with PutRecords
//			agg.Reset()
//			err = agg.Add(r)
//		}
//		if err != nil { /* ErrTooLarge: r alone exceeds MaxBytes */ }
//	}
//
// Config.MaxBytes (default 1 MiB) bounds what Kinesis counts against its
// maximum record size: the outer partition key's UTF-8 bytes plus the data.
// The aggregator tracks the exact size of the record it would build as
// records are added (protobuf field overheads included), in O(1) per
// record, so it fills records up to that limit exactly and never past it.
// Config.MaxRecords bounds the count.
//
// A lone user record is sent as it is, as the KPL does, unless
// Config.AggregateSingle is set. An aggregated record goes, by default
// (OuterKeyFirst), under its first user record's partition key and
// explicit hash key, as aws-kinesis-agg does; OuterKeyKPL instead uses the
// KPL's choice, partition key "a" and the first user record's hash key as
// explicit hash key. Either way it lands on the first user record's shard.
//
// # Consuming
//
// Deaggregate takes a Kinesis record (partition key and data) and returns
// its user records with their sub-sequence numbers, as the KCL does. A
// record that is not aggregated comes back as one plain record with
// ErrNotAggregated; one that claims to be aggregated but is not valid
// comes back the same way with an error wrapping ErrCorrupt, so that
// callers can count it. AppendDeaggregate reuses a slice across records.
//
// # Guarantees
//
//   - Deaggregate returns exactly the user records that were added to the
//     Aggregator, in order, with their keys and data. (A record sent alone
//     and unaggregated reads back without its explicit hash key, which
//     Kinesis does not return.)
//   - For the same user records, Build writes the same bytes as the KPL's
//     and aws-kinesis-agg's protobuf serializers (fields in number order);
//     the tests check this against aws-kinesis-agg under node, both ways.
//   - len(PartitionKey)+len(Data) of a built record equals Size and never
//     exceeds Config.MaxBytes.
//   - Deaggregate never panics and never drops a record: anything it cannot
//     read is returned whole.
//
// # Caveats
//
//   - An aggregate goes to the shard of its first user record, so aggregate
//     together only records that map to the same shard (one Aggregator per
//     predicted shard, as the KPL) or that share a partition key. The KCL
//     drops a whole aggregate if any of its user records hashes outside the
//     shard that delivered it. Deaggregate does not filter by hash range;
//     a consumer that knows its shard's range should.
//   - Add keeps each record's Data slice until Reset, and SubRecord.Data
//     aliases the Kinesis record's data: neither copies.
//   - Keys are not validated: Kinesis requires partition keys of 1 to 256
//     characters and explicit hash keys in decimal below 2^128.
//   - Tags are never written; they are checked for syntax on reading and
//     otherwise ignored, as the KCL ignores them.
//   - A plain record from another producer whose data happens to be a valid
//     aggregate (magic and matching MD5) is read as one, as by the KCL.
//     The Aggregator itself never sends plain data that starts with Magic.
//   - The KCL passes a record with a bad MD5 on as a plain record without a
//     word; Deaggregate does the same but also reports ErrCorrupt.
//   - An Aggregator is not safe for concurrent use.
package aggregation
