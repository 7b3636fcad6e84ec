package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Batch layout; see doc.go.
const (
	magic0        = 'S'
	magic1        = 'L'
	formatVersion = 1

	offVersion = 2
	offFlags   = 3
	offLength  = 4
	offCRC     = 8
	offCount   = 12
	offArrival = 14
	headerSize = 22

	// minRecordBytes is the smallest encoded record: two one-byte uvarints.
	minRecordBytes = 2
	// indexInterval is the spacing, in log bytes, of sparse index entries.
	indexInterval = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed header of a batch.
type batchHeader struct {
	length  uint32 // whole batch, header included
	crc     uint32
	count   uint16
	arrival int64
}

var (
	errMagic   = errors.New("bad magic")
	errVersion = errors.New("unknown version")
	errFlags   = errors.New("unknown flags")
	errLength  = errors.New("length out of bounds")
	errCount   = errors.New("zero record count")
	errCRC     = errors.New("checksum mismatch")
	errRecords = errors.New("records inconsistent with length")
)

// parseHeader decodes and bounds-checks the header in b[:headerSize]. It does
// not verify the checksum.
func parseHeader(b []byte) (batchHeader, error) {
	_ = b[headerSize-1]
	if b[0] != magic0 || b[1] != magic1 {
		return batchHeader{}, errMagic
	}
	if b[offVersion] != formatVersion {
		return batchHeader{}, errVersion
	}
	if b[offFlags] != 0 {
		return batchHeader{}, errFlags
	}
	h := batchHeader{
		length:  binary.LittleEndian.Uint32(b[offLength:]),
		crc:     binary.LittleEndian.Uint32(b[offCRC:]),
		count:   binary.LittleEndian.Uint16(b[offCount:]),
		arrival: int64(binary.LittleEndian.Uint64(b[offArrival:])),
	}
	if h.count == 0 {
		return batchHeader{}, errCount
	}
	if uint64(h.length) < headerSize+minRecordBytes*uint64(h.count) || h.length > MaxBatchBytes {
		return batchHeader{}, errLength
	}
	return h, nil
}

// nextRecord parses the record starting at b[p]. It returns the key and data
// bounds and the offset just past the record; ok is false if the record does
// not fit in b.
func nextRecord(b []byte, p int) (ks, ke, ds, de, np int, ok bool) {
	kl, n := binary.Uvarint(b[p:])
	if n <= 0 || kl > uint64(len(b)-p-n) {
		return 0, 0, 0, 0, 0, false
	}
	ks = p + n
	ke = ks + int(kl)
	dl, n := binary.Uvarint(b[ke:])
	if n <= 0 || dl > uint64(len(b)-ke-n) {
		return 0, 0, 0, 0, 0, false
	}
	ds = ke + n
	de = ds + int(dl)
	return ks, ke, ds, de, de, true
}

// validateBatch checks the checksum of the whole batch b (len(b) ==
// h.length) and that its records exactly fill it.
func validateBatch(b []byte, h batchHeader) error {
	if crc32.Checksum(b[offCount:], castagnoli) != h.crc {
		return errCRC
	}
	p := headerSize
	for i := 0; i < int(h.count); i++ {
		var ok bool
		if _, _, _, _, p, ok = nextRecord(b, p); !ok {
			return errRecords
		}
	}
	if p != len(b) {
		return errRecords
	}
	return nil
}

// batchSize returns the encoded size of recs.
func batchSize(recs []Record) int {
	n := headerSize
	for i := range recs {
		k, d := len(recs[i].PartitionKey), len(recs[i].Data)
		n += uvarintLen(uint64(k)) + k + uvarintLen(uint64(d)) + d
		if n > MaxBatchBytes {
			return n
		}
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// encodeBatch encodes recs (whose encoding is size bytes) into dst, reusing
// its capacity, and returns the encoded batch.
func encodeBatch(dst []byte, recs []Record, arrival int64, size int) []byte {
	if cap(dst) < size {
		dst = make([]byte, size, size+size/4)
	}
	b := dst[:size]
	b[0], b[1], b[offVersion], b[offFlags] = magic0, magic1, formatVersion, 0
	binary.LittleEndian.PutUint32(b[offLength:], uint32(size))
	binary.LittleEndian.PutUint16(b[offCount:], uint16(len(recs)))
	binary.LittleEndian.PutUint64(b[offArrival:], uint64(arrival))
	p := headerSize
	for i := range recs {
		r := &recs[i]
		p += binary.PutUvarint(b[p:], uint64(len(r.PartitionKey)))
		p += copy(b[p:], r.PartitionKey)
		p += binary.PutUvarint(b[p:], uint64(len(r.Data)))
		p += copy(b[p:], r.Data)
	}
	binary.LittleEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offCount:], castagnoli))
	return b
}
