package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func newAgg(tb testing.TB, cfg Config) *Aggregator {
	tb.Helper()
	a, err := NewAggregator(cfg)
	if err != nil {
		tb.Fatalf("NewAggregator(%+v): %v", cfg, err)
	}
	return a
}

// aggregateAll adds recs in order, building a record each time the
// aggregator is full and once at the end. It checks that every built record
// is exactly as large as Size said and within MaxBytes. It fails on
// ErrTooLarge.
func aggregateAll(tb testing.TB, cfg Config, recs []UserRecord) []Record {
	tb.Helper()
	a := newAgg(tb, cfg)
	var out []Record
	build := func() {
		size := a.Size()
		r, err := a.Build()
		if err != nil {
			tb.Fatalf("Build: %v", err)
		}
		if got := len(r.PartitionKey) + len(r.Data); got != size {
			tb.Fatalf("built %d bytes, Size said %d", got, size)
		}
		if size > a.Config().MaxBytes {
			tb.Fatalf("built %d bytes, MaxBytes %d", size, a.Config().MaxBytes)
		}
		out = append(out, r)
		a.Reset()
	}
	for i, r := range recs {
		err := a.Add(r)
		if errors.Is(err, ErrFull) {
			build()
			err = a.Add(r)
		}
		if err != nil {
			tb.Fatalf("Add(record %d): %v", i, err)
		}
	}
	if a.Len() > 0 {
		build()
	}
	return out
}

// deaggregateAll deaggregates every record, failing on ErrCorrupt, and
// returns the user records in order.
func deaggregateAll(tb testing.TB, recs []Record) []SubRecord {
	tb.Helper()
	var out []SubRecord
	for i, r := range recs {
		var err error
		out, err = AppendDeaggregate(out, r.PartitionKey, r.Data)
		if err != nil && !errors.Is(err, ErrNotAggregated) {
			tb.Fatalf("Deaggregate(record %d): %v", i, err)
		}
	}
	return out
}

// checkSame fails unless got holds want's keys and data, in order. A plain
// (unaggregated) record has no explicit hash key when read back, as Kinesis
// does not return it, so only aggregated ones are checked for it.
func checkSame(tb testing.TB, want []UserRecord, got []SubRecord) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d user records, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		ehkOK := g.ExplicitHashKey == w.ExplicitHashKey || (!g.Aggregated && g.ExplicitHashKey == "")
		if g.PartitionKey != w.PartitionKey || !ehkOK || !bytes.Equal(g.Data, w.Data) {
			tb.Fatalf("user record %d: got {%q %q %x}, want {%q %q %x}", i,
				g.PartitionKey, g.ExplicitHashKey, trunc(g.Data), w.PartitionKey, w.ExplicitHashKey, trunc(w.Data))
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// randomRecords returns n user records with keys drawn from a small pool
// (so that keys repeat), sometimes unicode, sometimes with explicit hash
// keys, and binary data of random length up to maxData.
func randomRecords(rng *rand.Rand, n, maxData int) []UserRecord {
	pool := []string{"a", "user-1", "user-2", "ключ", "鍵-🔑", strings.Repeat("k", 256), strings.Repeat("é", 256)}
	ehks := []string{"0", "1", "170141183460469231731687303715884105728", "340282366920938463463374607431768211455"}
	recs := make([]UserRecord, n)
	for i := range recs {
		var r UserRecord
		if rng.IntN(3) == 0 {
			r.PartitionKey = fmt.Sprintf("pk-%d", rng.IntN(1<<20))
		} else {
			r.PartitionKey = pool[rng.IntN(len(pool))]
		}
		if rng.IntN(4) == 0 {
			r.ExplicitHashKey = ehks[rng.IntN(len(ehks))]
		}
		r.Data = make([]byte, rng.IntN(maxData+1))
		for j := range r.Data {
			r.Data[j] = byte(rng.Uint32())
		}
		recs[i] = r
	}
	return recs
}

// pb builds protobuf messages for tests that craft unusual aggregates.
type pb []byte

func (b pb) str(num protowire.Number, s string) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (b pb) msg(num protowire.Number, m pb) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func (b pb) varint(num protowire.Number, v uint64) pb {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// wrap frames a protobuf message as an aggregated record with a valid MD5.
func wrap(m []byte) []byte {
	sum := md5.Sum(m)
	out := append(append([]byte(nil), Magic[:]...), m...)
	return append(out, sum[:]...)
}
