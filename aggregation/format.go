package aggregation

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic is the four-byte prefix of every aggregated record.
var Magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	// DefaultMaxBytes is the size limit used when Config.MaxBytes is zero:
	// 1 MiB, the default maximum size (partition key plus data) of a Kinesis
	// record.
	DefaultMaxBytes = 1 << 20
	// LimitMaxBytes is the largest Config.MaxBytes accepted: 10 MiB, the
	// largest maximum record size a stream can be given (UpdateMaxRecordSize).
	LimitMaxBytes = 10 << 20
	// Overhead is the number of bytes an aggregated record adds around its
	// protobuf message: the magic and the MD5 checksum.
	Overhead = len(Magic) + md5Size
	// KPLPartitionKey is the outer partition key the KPL gives every
	// aggregated record, and that Build uses with OuterKeyKPL.
	KPLPartitionKey = "a"
)

const md5Size = 16

// Field numbers of the protobuf schema (aws/kinesis/protobuf/messages.proto
// in the KPL).
const (
	fieldPartitionKeyTable    protowire.Number = 1 // AggregatedRecord: repeated string
	fieldExplicitHashKeyTable protowire.Number = 2 // AggregatedRecord: repeated string
	fieldRecords              protowire.Number = 3 // AggregatedRecord: repeated Record

	fieldPartitionKeyIndex    protowire.Number = 1 // Record: required uint64
	fieldExplicitHashKeyIndex protowire.Number = 2 // Record: optional uint64
	fieldData                 protowire.Number = 3 // Record: required bytes
	fieldTags                 protowire.Number = 4 // Record: repeated Tag

	fieldTagKey   protowire.Number = 1 // Tag: required string
	fieldTagValue protowire.Number = 2 // Tag: optional string
)

// Every field number of the schema is below 16, so each tag is one byte.
const tagSize = 1

// Errors returned by this package. They may be wrapped; test with errors.Is.
var (
	// ErrFull is returned by Aggregator.Add when the record would push the
	// aggregate past Config.MaxBytes or Config.MaxRecords. Build and Reset
	// the aggregator, then Add the record again: an empty aggregator
	// accepts every record that does not fail with ErrTooLarge.
	ErrFull = errors.New("aggregation: aggregate full")
	// ErrTooLarge is returned by Aggregator.Add when the record alone, in an
	// empty aggregator, would exceed Config.MaxBytes.
	ErrTooLarge = errors.New("aggregation: user record too large")
	// ErrEmpty is returned by Aggregator.Build when no record was added.
	ErrEmpty = errors.New("aggregation: no records")
	// ErrNotAggregated is returned by Deaggregate for a record that does not
	// start with Magic or is too short to hold a checksum: an ordinary
	// Kinesis record, which Deaggregate returns unchanged. It is the normal
	// outcome for records that were not aggregated, not a failure.
	ErrNotAggregated = errors.New("aggregation: not an aggregated record")
	// ErrCorrupt is returned (wrapped, with the reason) by Deaggregate for a
	// record that starts with Magic but whose checksum does not match, whose
	// protobuf message is invalid, truncated or holds no records, or whose
	// key indexes are out of range. Deaggregate returns such a record
	// unchanged, as one plain record.
	ErrCorrupt = errors.New("aggregation: corrupt aggregated record")
)

// sizeField returns the encoded size of a length-delimited field whose
// value is n bytes long.
func sizeField(n int) int {
	return tagSize + protowire.SizeBytes(n)
}

// sizeRecord returns the size of a Record message (without its own tag and
// length). ehkIndex < 0 means no explicit hash key.
func sizeRecord(pkIndex, ehkIndex, dataLen int) int {
	n := tagSize + protowire.SizeVarint(uint64(pkIndex))
	if ehkIndex >= 0 {
		n += tagSize + protowire.SizeVarint(uint64(ehkIndex))
	}
	return n + sizeField(dataLen)
}
