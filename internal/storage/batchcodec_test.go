package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// codecCases are batches of varied shapes: empty keys and data, binary
// data, a large record, many records.
func codecCases() [][]Record {
	binary := make([]byte, 300)
	for i := range binary {
		binary[i] = byte(i)
	}
	many := make([]Record, 1000)
	for i := range many {
		many[i] = Record{PartitionKey: strings.Repeat("k", i%7), Data: bytes.Repeat([]byte{byte(i)}, i%13)}
	}
	return [][]Record{
		{{PartitionKey: "a", Data: []byte("hello")}},
		{{PartitionKey: "", Data: nil}},
		{{PartitionKey: "binary", Data: binary}, {PartitionKey: "empty", Data: []byte{}}, {PartitionKey: "unicode ключ", Data: []byte{0}}},
		{{PartitionKey: "large", Data: bytes.Repeat([]byte{0, 0xff, '\n'}, 100_000)}},
		many,
	}
}

// EncodeBatch and DecodeBatch round-trip records and the arrival time;
// decoded data do not overlap.
func TestBatchCodecRoundTrip(t *testing.T) {
	for ci, recs := range codecCases() {
		for _, ms := range []int64{0, 1_700_000_000_123, -5} {
			b := EncodeBatch(recs, ms)
			if len(b) != BatchSize(recs) {
				t.Fatalf("case %d: encoded %d bytes, BatchSize %d", ci, len(b), BatchSize(recs))
			}
			got, out, err := DecodeBatch(b)
			if err != nil {
				t.Fatalf("case %d: DecodeBatch: %v", ci, err)
			}
			if got != ms || len(out) != len(recs) {
				t.Fatalf("case %d: decoded arrival %d and %d records, want %d and %d", ci, got, len(out), ms, len(recs))
			}
			for i := range recs {
				if out[i].PartitionKey != recs[i].PartitionKey || !bytes.Equal(out[i].Data, recs[i].Data) || out[i].Data == nil {
					t.Fatalf("case %d: record %d = %q/%x, want %q/%x (non-nil)", ci, i, out[i].PartitionKey, out[i].Data, recs[i].PartitionKey, recs[i].Data)
				}
				if cap(out[i].Data) != len(out[i].Data) {
					t.Fatalf("case %d: record %d data has capacity %d beyond its length %d", ci, i, cap(out[i].Data), len(out[i].Data))
				}
			}
		}
	}
}

// DecodeBatch rejects damaged batches with ErrCorrupt: every single bit
// flip, truncation, or trailing byte.
func TestDecodeBatchCorrupt(t *testing.T) {
	b := EncodeBatch([]Record{{PartitionKey: "key", Data: []byte("value")}, {PartitionKey: "k2"}}, 42)
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, _, err := DecodeBatch(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip of bit %d: err = %v, want ErrCorrupt", i, err)
		}
	}
	for n := range len(b) {
		if _, _, err := DecodeBatch(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("first %d bytes: err = %v, want ErrCorrupt", n, err)
		}
	}
	if _, _, err := DecodeBatch(append(bytes.Clone(b), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v, want ErrCorrupt", err)
	}
}

// EncodeBatch panics on an empty batch: callers validate first.
func TestEncodeBatchEmptyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("EncodeBatch(nil) did not panic")
		}
	}()
	EncodeBatch(nil, 0)
}

// FuzzDecodeBatch feeds DecodeBatch arbitrary bytes: it never panics, it
// fails only with ErrCorrupt, and whatever it accepts encodes back to a
// batch that decodes to the same records (byte equality would reject
// overlong uvarints, which decode fine).
func FuzzDecodeBatch(f *testing.F) {
	for _, recs := range codecCases()[:3] {
		f.Add(EncodeBatch(recs, 1_700_000_000_000))
	}
	f.Add([]byte{})
	f.Add([]byte("SL\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, recs, err := DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeBatch error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		ms2, recs2, err := DecodeBatch(EncodeBatch(recs, ms))
		if err != nil || ms2 != ms || len(recs2) != len(recs) {
			t.Fatalf("re-encoded batch decodes to %d, %d records, %v; want %d, %d records", ms2, len(recs2), err, ms, len(recs))
		}
		for i := range recs {
			if recs2[i].PartitionKey != recs[i].PartitionKey || !bytes.Equal(recs2[i].Data, recs[i].Data) {
				t.Fatalf("record %d changed in the round trip", i)
			}
		}
	})
}
