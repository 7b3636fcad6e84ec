package aggregation

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzDeaggregate feeds arbitrary records to Deaggregate. It must never
// panic; a record it rejects comes back whole as one plain record; a record
// it accepts holds user records that, aggregated again and read back, are
// the same records. With frame set, the fuzz bytes are framed with Magic
// and their MD5 first, so that the fuzzer reaches the protobuf decoder
// (it would hardly ever guess a matching checksum).
func FuzzDeaggregate(f *testing.F) {
	golden, _ := base64.StdEncoding.DecodeString(goldenBase64)
	f.Add("pk", golden, false)
	f.Add("pk", golden[len(Magic):len(golden)-md5Size], true)
	f.Add("pk", []byte("plain"), false)
	f.Add("", []byte{}, false)
	f.Add("", []byte{}, true)
	f.Add("pk", []byte(pb{}.str(1, "k").str(2, "9").msg(3, pb{}.varint(1, 0).varint(2, 0).str(3, "d").msg(4, pb{}.str(1, "t").str(2, "v")))), true)
	f.Add("pk", []byte(pb{}.str(1, "k").msg(3, pb{}.varint(1, 2).str(3, "d"))), true)
	f.Add("pk", []byte(pb{}.msg(3, pb{}.varint(1, 0).str(3, "d").varint(9, 1)).str(1, "k").varint(7, 3)), true)
	for _, r := range aggregateAll(f, Config{MaxBytes: 2000}, randomRecords(rand.New(rand.NewPCG(5, 6)), 30, 60)) {
		f.Add(r.PartitionKey, r.Data, false)
	}

	f.Fuzz(func(t *testing.T, pk string, data []byte, frame bool) {
		if frame {
			data = wrap(data)
		}
		subs, err := Deaggregate(pk, data)
		if err != nil {
			if errors.Is(err, ErrNotAggregated) == errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not exactly one of ErrNotAggregated, ErrCorrupt", err)
			}
			if errors.Is(err, ErrNotAggregated) == IsAggregated(data) {
				t.Fatalf("IsAggregated %v, error %v", IsAggregated(data), err)
			}
			if len(subs) != 1 || subs[0].Aggregated || subs[0].SubSequenceNumber != 0 ||
				subs[0].PartitionKey != pk || subs[0].ExplicitHashKey != "" || !bytes.Equal(subs[0].Data, data) {
				t.Fatalf("rejected record not returned whole: %+v", subs)
			}
			return
		}
		if !IsAggregated(data) || len(subs) == 0 {
			t.Fatalf("accepted %d records from %x", len(subs), data)
		}
		var again []UserRecord
		for i, s := range subs {
			if !s.Aggregated || s.SubSequenceNumber != int64(i) {
				t.Fatalf("record %d: Aggregated %v, SubSequenceNumber %d", i, s.Aggregated, s.SubSequenceNumber)
			}
			again = append(again, UserRecord{PartitionKey: s.PartitionKey, ExplicitHashKey: s.ExplicitHashKey, Data: s.Data})
		}
		a := newAgg(t, Config{MaxBytes: LimitMaxBytes, AggregateSingle: true})
		for _, r := range again {
			if err := a.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		rebuilt, err := a.Build()
		if err != nil {
			t.Fatal(err)
		}
		subs2, err := Deaggregate(rebuilt.PartitionKey, rebuilt.Data)
		if err != nil {
			t.Fatalf("re-aggregated record: %v", err)
		}
		if len(subs2) != len(subs) {
			t.Fatalf("re-aggregated: %d records, want %d", len(subs2), len(subs))
		}
		for i := range subs {
			s, s2 := subs[i], subs2[i]
			if s.PartitionKey != s2.PartitionKey || s.ExplicitHashKey != s2.ExplicitHashKey || !bytes.Equal(s.Data, s2.Data) ||
				s.SubSequenceNumber != s2.SubSequenceNumber || !s2.Aggregated {
				t.Fatalf("record %d: %+v, re-aggregated %+v", i, s, s2)
			}
		}
	})
}

// fuzzRecords turns fuzz bytes into user records: two control bytes per
// record choose a new or earlier partition key, an explicit hash key or
// none, and the data length; keys and data come from the following bytes.
func fuzzRecords(b []byte) []UserRecord {
	take := func(n int) []byte {
		n = min(n, len(b))
		v := b[:n]
		b = b[n:]
		return v
	}
	var recs []UserRecord
	var keys, ehks []string
	for len(b) >= 2 {
		c1, c2 := b[0], b[1]
		b = b[2:]
		var r UserRecord
		if c1 < 128 && len(keys) > 0 {
			r.PartitionKey = keys[int(c1)%len(keys)]
		} else {
			r.PartitionKey = string(take(int(c1 & 31)))
			keys = append(keys, r.PartitionKey)
		}
		switch c2 & 3 {
		case 1:
			if len(ehks) > 0 {
				r.ExplicitHashKey = ehks[int(c2>>2)%len(ehks)]
			}
		case 2, 3:
			r.ExplicitHashKey = string(take(int(c2>>2) & 15))
			ehks = append(ehks, r.ExplicitHashKey)
		}
		r.Data = take(int(c2 >> 2))
		if c1&64 != 0 { // now and then a larger record
			r.Data = take(int(c1) * 16)
		}
		recs = append(recs, r)
	}
	return recs
}

// FuzzRoundTrip aggregates arbitrary user records under arbitrary limits
// and checks that deaggregating the built records gives them back in order,
// and that every built record is exactly as large as Size predicted.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint8(0), false, false)
	f.Add([]byte("\x83pk1\x14hello\x83pk2\x14world"), uint16(0), uint8(0), false, false)
	f.Add([]byte("\x83pk1\x16\x01\x07hello\x00\x14world\xc1ab"), uint16(100), uint8(3), true, true)
	f.Add(bytes.Repeat([]byte("\x85abcde\x7e0123456789"), 50), uint16(300), uint8(0), false, true)

	f.Fuzz(func(t *testing.T, in []byte, maxBytes uint16, maxRecords uint8, single, kpl bool) {
		cfg := Config{MaxBytes: int(maxBytes), MaxRecords: int(maxRecords), AggregateSingle: single}
		if kpl {
			cfg.OuterKey = OuterKeyKPL
		}
		a := newAgg(t, cfg)
		var want []UserRecord
		var got []SubRecord
		build := func() {
			size := a.Size()
			firstPK := ""
			r, err := a.Build()
			if err != nil {
				t.Fatal(err)
			}
			if n := len(r.PartitionKey) + len(r.Data); n != size || n > a.Config().MaxBytes {
				t.Fatalf("built %d bytes, Size %d, MaxBytes %d", n, size, a.Config().MaxBytes)
			}
			var derr error
			got, derr = AppendDeaggregate(got, r.PartitionKey, r.Data)
			switch {
			case errors.Is(derr, ErrNotAggregated):
				firstPK = r.PartitionKey
				if a.Len() != 1 || single {
					t.Fatalf("plain record built from %d records", a.Len())
				}
			case derr != nil:
				t.Fatal(derr)
			case kpl:
				firstPK = want[len(want)-a.Len()].PartitionKey
				if r.PartitionKey != KPLPartitionKey || r.ExplicitHashKey == "" {
					t.Fatalf("KPL outer keys %q %q", r.PartitionKey, r.ExplicitHashKey)
				}
			default:
				firstPK = r.PartitionKey
				if first := want[len(want)-a.Len()]; r.ExplicitHashKey != first.ExplicitHashKey {
					t.Fatalf("outer explicit hash key %q, first record's %q", r.ExplicitHashKey, first.ExplicitHashKey)
				}
			}
			if first := want[len(want)-a.Len()]; firstPK != first.PartitionKey {
				t.Fatalf("outer partition key %q, first record's %q", firstPK, first.PartitionKey)
			}
			a.Reset()
		}
		for _, r := range fuzzRecords(in) {
			predicted := a.SizeWith(r)
			err := a.Add(r)
			if errors.Is(err, ErrFull) {
				build()
				predicted = a.SizeWith(r)
				err = a.Add(r)
			}
			if errors.Is(err, ErrTooLarge) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Size() != predicted {
				t.Fatalf("SizeWith %d, Size after Add %d", predicted, a.Size())
			}
			want = append(want, r)
		}
		if a.Len() > 0 {
			build()
		}
		checkSame(t, want, got)
	})
}
