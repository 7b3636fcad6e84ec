package storage

import (
	"fmt"
	"strconv"
)

// BatchSize returns the length of the encoding of recs that EncodeBatch
// makes: the 22-byte header and every record's length-prefixed key and
// data. It stops counting once the size passes MaxBatchBytes.
func BatchSize(recs []Record) int { return batchSize(recs) }

// EncodeBatch returns recs encoded as one checksummed batch (the format in
// the package documentation: header with CRC-32C, record count and the
// arrival time arrivalMillis, then the records), in a new buffer. Other
// stores than Log (the NATS engine, which sends one batch per message)
// use it so that the CRC travels end to end. It panics if recs is empty,
// holds more than MaxBatchRecords records or encodes to more than
// MaxBatchBytes: callers check len(recs) and BatchSize first.
func EncodeBatch(recs []Record, arrivalMillis int64) []byte {
	if len(recs) == 0 || len(recs) > MaxBatchRecords {
		panic("storage: EncodeBatch of " + strconv.Itoa(len(recs)) + " records")
	}
	size := batchSize(recs)
	if size > MaxBatchBytes {
		panic("storage: EncodeBatch of more than MaxBatchBytes")
	}
	return encodeBatch(nil, recs, arrivalMillis, size)
}

// DecodeBatch decodes b, which must hold exactly one batch as EncodeBatch
// makes it, after validating its magic, version, flags, length, CRC-32C
// and record framing. Any failure is an error wrapping ErrCorrupt. The
// records' Data alias b (each with its capacity clipped to its length, so
// that appending to one never overwrites the next); their keys are copies.
// Data of a record stored empty is an empty, non-nil slice.
func DecodeBatch(b []byte) (arrivalMillis int64, recs []Record, err error) {
	if len(b) < headerSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than a batch header", ErrCorrupt, len(b))
	}
	h, err := parseHeader(b[:headerSize])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if int64(h.length) != int64(len(b)) {
		return 0, nil, fmt.Errorf("%w: batch length %d in a buffer of %d bytes", ErrCorrupt, h.length, len(b))
	}
	if err := validateBatch(b, h); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	recs = make([]Record, h.count)
	p := headerSize
	for i := range recs {
		ks, ke, ds, de, np, _ := nextRecord(b, p) // validateBatch checked the framing
		recs[i] = Record{PartitionKey: string(b[ks:ke]), Data: b[ds:de:de]}
		p = np
	}
	return h.arrival, recs, nil
}
