package aggregation

import (
	"crypto/md5"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// SubRecord is one user record read from a Kinesis record by Deaggregate.
type SubRecord struct {
	// PartitionKey is the user record's partition key: from the aggregate's
	// key table, or the Kinesis record's own key for a plain record.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key from the
	// aggregate's table, or "" if it has none. It is always "" for a plain
	// record: Kinesis does not return the explicit hash key of a record.
	ExplicitHashKey string
	// Data is the user record's payload. It aliases the data passed to
	// Deaggregate (capacity limited to its length): copy it before
	// modifying that buffer.
	Data []byte
	// SubSequenceNumber is the user record's index in its aggregate, from
	// 0; 0 for a plain record. With the Kinesis record's sequence number it
	// forms the extended sequence number that the KCL checkpoints.
	SubSequenceNumber int64
	// Aggregated reports whether the user record came out of an aggregate.
	Aggregated bool
}

// IsAggregated reports whether data starts with Magic and is long enough to
// hold a checksum: what the KCL checks first. It is a cheap test of the
// prefix only; Deaggregate also checks the checksum and the contents.
func IsAggregated(data []byte) bool {
	return len(data) > Overhead && [4]byte(data[:4]) == Magic
}

// Errors that Deaggregate wraps in ErrCorrupt; built once, so that reading a
// corrupt record costs no allocation for them.
var (
	errChecksum      = fmt.Errorf("%w: md5 mismatch", ErrCorrupt)
	errNoRecords     = fmt.Errorf("%w: no user records", ErrCorrupt)
	errNoPKIndex     = fmt.Errorf("%w: user record without partition_key_index", ErrCorrupt)
	errNoData        = fmt.Errorf("%w: user record without data", ErrCorrupt)
	errTagWithoutKey = fmt.Errorf("%w: tag without key", ErrCorrupt)
)

// Deaggregate returns the user records in the Kinesis record with the given
// partition key and data, in order, as the KCL does.
//
// An aggregated record yields its user records with Aggregated set and
// SubSequenceNumber 0, 1, 2, ... A record that is not aggregated yields one
// plain SubRecord (Aggregated false, SubSequenceNumber 0, the given
// partition key, data untouched) and ErrNotAggregated. A record that starts
// with Magic but fails a check (MD5, protobuf syntax, required fields, key
// indexes within their tables, at least one user record) is also returned
// as one plain SubRecord, with an error wrapping ErrCorrupt. No record is
// ever dropped, and Deaggregate does not panic on any input.
//
// Where the KCL differs: it passes a record with a bad MD5 on as a plain
// record without reporting it, and it drops the whole aggregate if any user
// record's hash key lies outside the lease's hash key range; Deaggregate
// leaves that filter to the caller, which knows the shard.
func Deaggregate(partitionKey string, data []byte) ([]SubRecord, error) {
	return AppendDeaggregate(nil, partitionKey, data)
}

// AppendDeaggregate is Deaggregate appending to dst, so that a consumer can
// reuse one slice for every Kinesis record. It returns the extended slice
// and the same errors as Deaggregate. On error exactly one SubRecord, the
// plain record, is appended.
func AppendDeaggregate(dst []SubRecord, partitionKey string, data []byte) ([]SubRecord, error) {
	if !IsAggregated(data) {
		return append(dst, plainRecord(partitionKey, data)), ErrNotAggregated
	}
	pb := data[len(Magic) : len(data)-md5Size]
	if md5.Sum(pb) != [md5Size]byte(data[len(data)-md5Size:]) {
		return append(dst, plainRecord(partitionKey, data)), errChecksum
	}
	out, err := appendUserRecords(dst, pb)
	if err != nil {
		// Drop whatever was appended before the error was found.
		clear(out[len(dst):])
		return append(dst, plainRecord(partitionKey, data)), err
	}
	return out, nil
}

func plainRecord(partitionKey string, data []byte) SubRecord {
	return SubRecord{PartitionKey: partitionKey, Data: data}
}

// span locates a key: first at offset off of the protobuf message, then,
// once the keys are copied into one string, at offset off of that string.
type span struct{ off, n int }

// appendUserRecords decodes an AggregatedRecord message and appends its user
// records to dst.
//
// It makes two passes over the top-level fields, which proto allows in any
// order and interleaved: the first collects the key tables and counts the
// records, the second decodes the records once every key is known. All keys
// are copied into a single string, and record data is not copied, so
// decoding costs a few allocations however many records there are.
func appendUserRecords(dst []SubRecord, pb []byte) ([]SubRecord, error) {
	var pkArr, ehkArr [32]span // keeps small tables off the heap
	pks, ehks := pkArr[:0], ehkArr[:0]
	nrec, keyBytes := 0, 0
	for b := pb; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, protoError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num > fieldRecords {
			// Unknown fields, and known numbers with another wire type,
			// are skipped, as protobuf parsers do.
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return dst, protoError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return dst, protoError(n)
		}
		off := len(pb) - len(b) + n - len(v)
		switch num {
		case fieldPartitionKeyTable:
			pks = append(pks, span{off, len(v)})
			keyBytes += len(v)
		case fieldExplicitHashKeyTable:
			ehks = append(ehks, span{off, len(v)})
			keyBytes += len(v)
		case fieldRecords:
			nrec++
		}
		b = b[n:]
	}
	if nrec == 0 {
		return dst, errNoRecords
	}

	var sb strings.Builder
	sb.Grow(keyBytes)
	for _, table := range [2][]span{pks, ehks} {
		for i, s := range table {
			table[i].off = sb.Len()
			sb.Write(pb[s.off : s.off+s.n])
		}
	}
	keys := sb.String()

	dst = slices.Grow(dst, nrec)
	var seq int64
	for b := pb; len(b) > 0; {
		// The first pass validated the framing.
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if typ != protowire.BytesType || num != fieldRecords {
			b = b[protowire.ConsumeFieldValue(num, typ, b):]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		b = b[n:]
		r, err := decodeRecord(v)
		if err != nil {
			return dst, err
		}
		if r.pk >= uint64(len(pks)) {
			return dst, fmt.Errorf("%w: user record %d: partition_key_index %d, table has %d keys",
				ErrCorrupt, seq, r.pk, len(pks))
		}
		s := pks[r.pk]
		sub := SubRecord{
			PartitionKey:      keys[s.off : s.off+s.n],
			Data:              r.data,
			SubSequenceNumber: seq,
			Aggregated:        true,
		}
		if r.hasEHK {
			if r.ehk >= uint64(len(ehks)) {
				return dst, fmt.Errorf("%w: user record %d: explicit_hash_key_index %d, table has %d keys",
					ErrCorrupt, seq, r.ehk, len(ehks))
			}
			s := ehks[r.ehk]
			sub.ExplicitHashKey = keys[s.off : s.off+s.n]
		}
		dst = append(dst, sub)
		seq++
	}
	return dst, nil
}

// rawRecord is a decoded Record message.
type rawRecord struct {
	pk, ehk uint64
	hasEHK  bool
	data    []byte
}

// decodeRecord decodes a Record message, enforcing proto2's required fields.
// For a field that occurs more than once the last value wins, as in
// protobuf parsers.
func decodeRecord(b []byte) (rawRecord, error) {
	var r rawRecord
	var hasPK, hasData bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, protoError(n)
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			r.pk, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			r.ehk, n = protowire.ConsumeVarint(b)
			r.hasEHK = true
		case num == fieldData && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			r.data = v[:len(v):len(v)]
			hasData = true
		case num == fieldTags && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n >= 0 {
				if err := checkTag(v); err != nil {
					return r, err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return r, protoError(n)
		}
		b = b[n:]
	}
	switch {
	case !hasPK:
		return r, errNoPKIndex
	case !hasData:
		return r, errNoData
	}
	return r, nil
}

// checkTag validates a Tag message. Tags are never set by the KPL and are
// not returned, but a parser must still reject a malformed one.
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protoError(n)
		}
		b = b[n:]
		if num == fieldTagKey && typ == protowire.BytesType {
			hasKey = true
		}
		// The value (fieldTagValue) is optional and its contents do not
		// matter here.
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protoError(n)
		}
		b = b[n:]
	}
	if !hasKey {
		return errTagWithoutKey
	}
	return nil
}

func protoError(n int) error {
	return fmt.Errorf("%w: %w", ErrCorrupt, protowire.ParseError(n))
}
