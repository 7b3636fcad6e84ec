package aggregation

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The test vector of the reference notes (§1.1), checked there byte for byte
// against aws-kinesis-agg 4.2.8 in both directions.
const (
	goldenBase64  = "84mawgoDcGsxCgNwazIaCQgAGgVoZWxsbxoJCAEaBXdvcmxkh8Iq8e0Y4pLrVbAYQTo8/w=="
	goldenHashPK1 = "329398341438914906102347661116985167824" // MD5("pk1") as a decimal hash key
)

var goldenRecords = []UserRecord{
	{PartitionKey: "pk1", Data: []byte("hello")},
	{PartitionKey: "pk2", Data: []byte("world")},
}

func TestGoldenVector(t *testing.T) {
	want, err := base64.StdEncoding.DecodeString(goldenBase64)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg             Config
		wantPK, wantEHK string
	}{
		{Config{}, "pk1", ""},
		{Config{OuterKey: OuterKeyKPL}, "a", goldenHashPK1},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.OuterKey.String(), func(t *testing.T) {
			recs := aggregateAll(t, tt.cfg, goldenRecords)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			r := recs[0]
			if !bytes.Equal(r.Data, want) {
				t.Errorf("data\n got %x\nwant %x", r.Data, want)
			}
			if r.PartitionKey != tt.wantPK || r.ExplicitHashKey != tt.wantEHK {
				t.Errorf("outer keys %q %q, want %q %q", r.PartitionKey, r.ExplicitHashKey, tt.wantPK, tt.wantEHK)
			}
		})
	}
	subs, err := Deaggregate("a", want)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, goldenRecords, subs)
	for i, s := range subs {
		if !s.Aggregated || s.SubSequenceNumber != int64(i) {
			t.Errorf("sub-record %d: Aggregated %v, SubSequenceNumber %d", i, s.Aggregated, s.SubSequenceNumber)
		}
	}
}

// TestSizeExact checks, on many random inputs and every configuration, that
// SizeWith predicts Size and Size predicts the built record exactly, and
// that the records come back in order.
func TestSizeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	configs := []Config{
		{},
		{AggregateSingle: true},
		{OuterKey: OuterKeyKPL},
		{OuterKey: OuterKeyKPL, AggregateSingle: true},
		{MaxBytes: 4096},
		{MaxBytes: 300, AggregateSingle: true},
		{MaxBytes: 100_000, MaxRecords: 7, OuterKey: OuterKeyKPL},
	}
	for _, cfg := range configs {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			for round := range 50 {
				recs := randomRecords(rng, 1+rng.IntN(300), []int{0, 10, 200, 3000}[round%4])
				a := newAgg(t, cfg)
				var want []UserRecord
				var got []SubRecord
				flush := func() {
					size := a.Size()
					r, err := a.Build()
					if err != nil {
						t.Fatal(err)
					}
					if n := len(r.PartitionKey) + len(r.Data); n != size || n > a.Config().MaxBytes {
						t.Fatalf("built %d bytes, Size %d, MaxBytes %d", n, size, a.Config().MaxBytes)
					}
					got = append(got, deaggregateAll(t, []Record{r})...)
					a.Reset()
				}
				for _, r := range recs {
					predicted := a.SizeWith(r)
					err := a.Add(r)
					switch {
					case errors.Is(err, ErrTooLarge):
						if a.Len() == 0 && predicted <= a.Config().MaxBytes {
							t.Fatalf("ErrTooLarge for %d bytes, MaxBytes %d", predicted, a.Config().MaxBytes)
						}
						continue
					case errors.Is(err, ErrFull):
						if predicted <= a.Config().MaxBytes && (cfg.MaxRecords == 0 || a.Len() < cfg.MaxRecords) {
							t.Fatalf("ErrFull with SizeWith %d <= MaxBytes %d, Len %d", predicted, a.Config().MaxBytes, a.Len())
						}
						flush()
						predicted = a.SizeWith(r)
						if err := a.Add(r); err != nil {
							t.Fatalf("Add after Reset: %v", err)
						}
					case err != nil:
						t.Fatal(err)
					}
					if a.Size() != predicted {
						t.Fatalf("SizeWith said %d, Size is %d after Add", predicted, a.Size())
					}
					want = append(want, r)
				}
				if a.Len() > 0 {
					flush()
				}
				checkSame(t, want, got)
			}
		})
	}
}

// TestExactBoundary checks that a record making the built record exactly
// MaxBytes long is accepted, and that one byte more is refused.
func TestExactBoundary(t *testing.T) {
	prefixes := map[string][]UserRecord{
		"empty": nil,
		"one":   {{PartitionKey: "first-key", Data: bytes.Repeat([]byte{1}, 50)}},
		"many":  randomRecords(rand.New(rand.NewPCG(3, 4)), 40, 100),
	}
	for name, prefix := range prefixes {
		for _, cfg := range []Config{{}, {AggregateSingle: true}, {OuterKey: OuterKeyKPL}} {
			for _, dataLen := range []int{0, 1, 126, 127, 128, 5000, 16383, 16384} {
				t.Run(fmt.Sprintf("%s/%+v/%d", name, cfg, dataLen), func(t *testing.T) {
					r := UserRecord{PartitionKey: "boundary", ExplicitHashKey: "12345", Data: make([]byte, dataLen)}
					bigger := r
					bigger.Data = make([]byte, dataLen+1)

					probe := newAgg(t, Config{MaxBytes: LimitMaxBytes, AggregateSingle: cfg.AggregateSingle, OuterKey: cfg.OuterKey})
					for _, p := range prefix {
						if err := probe.Add(p); err != nil {
							t.Fatal(err)
						}
					}
					limit := probe.SizeWith(r)

					wantErr := ErrFull
					if len(prefix) == 0 {
						wantErr = ErrTooLarge
					}
					for _, tc := range []struct {
						max  int
						rec  UserRecord
						want error
					}{
						{limit, r, nil},
						{limit - 1, r, wantErr},
						{limit, bigger, wantErr},
					} {
						c := cfg
						c.MaxBytes = tc.max
						a := newAgg(t, c)
						for _, p := range prefix {
							if err := a.Add(p); err != nil {
								t.Fatalf("MaxBytes %d: prefix: %v", tc.max, err)
							}
						}
						err := a.Add(tc.rec)
						if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
							t.Fatalf("MaxBytes %d, data %d: Add = %v, want %v", tc.max, len(tc.rec.Data), err, tc.want)
						}
						if err == nil {
							built, berr := a.Build()
							if berr != nil {
								t.Fatal(berr)
							}
							if n := len(built.PartitionKey) + len(built.Data); n != limit || a.Size() != limit {
								t.Fatalf("built %d bytes, Size %d, want exactly %d", n, a.Size(), limit)
							}
						} else if a.Len() != len(prefix) {
							t.Fatalf("refused Add changed Len to %d", a.Len())
						}
					}
				})
			}
		}
	}
}

func TestMaxRecords(t *testing.T) {
	a := newAgg(t, Config{MaxRecords: 3})
	for i := range 3 {
		if err := a.Add(UserRecord{PartitionKey: "k", Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Add(UserRecord{PartitionKey: "k", Data: []byte{3}}); !errors.Is(err, ErrFull) {
		t.Fatalf("4th Add = %v, want ErrFull", err)
	}
	if a.Len() != 3 {
		t.Fatalf("Len %d", a.Len())
	}
	// A record too large alone is reported as such even when the aggregator is full.
	small := newAgg(t, Config{MaxBytes: 100, MaxRecords: 1})
	if err := small.Add(UserRecord{PartitionKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := small.Add(UserRecord{PartitionKey: "k", Data: make([]byte, 100)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add = %v, want ErrTooLarge", err)
	}

	// MaxRecords 1 sends every record plain.
	recs := aggregateAll(t, Config{MaxRecords: 1}, goldenRecords)
	if len(recs) != 2 || string(recs[0].Data) != "hello" || recs[1].PartitionKey != "pk2" {
		t.Fatalf("got %+v", recs)
	}
}

func TestTooLarge(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		rec  UserRecord
	}{
		{"plain", Config{MaxBytes: 10}, UserRecord{PartitionKey: "abc", Data: make([]byte, 8)}},
		{"aggregated single", Config{MaxBytes: 40, AggregateSingle: true}, UserRecord{PartitionKey: "abc", Data: make([]byte, 10)}},
		{"default 1 MiB", Config{}, UserRecord{PartitionKey: "k", Data: make([]byte, DefaultMaxBytes)}},
		{"looks aggregated", Config{MaxBytes: 30}, UserRecord{PartitionKey: "k", Data: wrap([]byte{1, 2, 3})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAgg(t, tt.cfg)
			if err := a.Add(tt.rec); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("empty: Add = %v, want ErrTooLarge", err)
			}
			if a.Len() != 0 || a.Size() != 0 {
				t.Fatalf("Len %d Size %d after refused Add", a.Len(), a.Size())
			}
			if err := a.Add(UserRecord{PartitionKey: "x"}); err != nil {
				t.Fatal(err)
			}
			if err := a.Add(tt.rec); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("non-empty: Add = %v, want ErrTooLarge", err)
			}
		})
	}
	// 1 MiB exactly, key included, fits alone as a plain record.
	a := newAgg(t, Config{})
	if err := a.Add(UserRecord{PartitionKey: "k", Data: make([]byte, DefaultMaxBytes-1)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(UserRecord{PartitionKey: "k"}); !errors.Is(err, ErrFull) {
		t.Fatalf("second Add = %v, want ErrFull", err)
	}
}

// countTables returns the number of entries in the key tables of an
// aggregated record's protobuf message.
func countTables(t *testing.T, data []byte) (pks, ehks, recs int) {
	t.Helper()
	b := data[len(Magic) : len(data)-md5Size]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 || typ != protowire.BytesType {
			t.Fatalf("bad field %d type %d", num, typ)
		}
		switch num {
		case fieldPartitionKeyTable:
			pks++
		case fieldExplicitHashKeyTable:
			ehks++
		case fieldRecords:
			recs++
		}
		b = b[n:]
	}
	return pks, ehks, recs
}

func TestKeysStoredOnce(t *testing.T) {
	var recs []UserRecord
	for i := range 1000 {
		r := UserRecord{PartitionKey: []string{"alpha", "beta", "gamma"}[i%3], Data: []byte{byte(i)}}
		if i%2 == 0 {
			r.ExplicitHashKey = []string{"1", "2"}[i%4/2]
		}
		recs = append(recs, r)
	}
	built := aggregateAll(t, Config{}, recs)
	if len(built) != 1 {
		t.Fatalf("%d records", len(built))
	}
	pks, ehks, n := countTables(t, built[0].Data)
	if pks != 3 || ehks != 2 || n != 1000 {
		t.Fatalf("tables: %d partition keys, %d explicit hash keys, %d records", pks, ehks, n)
	}
	checkSame(t, recs, deaggregateAll(t, built))
}

func TestEdgeCases(t *testing.T) {
	manyKeys := make([]UserRecord, 20000) // indexes past 127 and 16383 take 2 and 3 bytes
	for i := range manyKeys {
		manyKeys[i] = UserRecord{PartitionKey: fmt.Sprint(i), ExplicitHashKey: fmt.Sprint(i * 7), Data: []byte{byte(i)}}
	}
	tests := []struct {
		name string
		recs []UserRecord
	}{
		{"empty data", []UserRecord{{PartitionKey: "a"}, {PartitionKey: "b", Data: []byte{}}}},
		{"empty key", []UserRecord{{PartitionKey: "", Data: []byte("x")}, {PartitionKey: "", Data: []byte("y")}}},
		{"256-char keys", []UserRecord{
			{PartitionKey: strings.Repeat("x", 256), Data: []byte("1")},
			{PartitionKey: strings.Repeat("ü", 256), Data: []byte("2")},   // 512 bytes
			{PartitionKey: strings.Repeat("🦈", 256), Data: []byte("3")}}}, // 1024 bytes
		{"unicode keys", []UserRecord{{PartitionKey: "ключ", Data: []byte("1")}, {PartitionKey: "鍵", Data: []byte("2")}, {PartitionKey: "ключ", Data: []byte("3")}}},
		{"explicit hash keys", []UserRecord{
			{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("1")},
			{PartitionKey: "a", Data: []byte("2")},
			{PartitionKey: "b", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("3")},
			{PartitionKey: "c", ExplicitHashKey: "0", Data: []byte("4")}}},
		{"many keys", manyKeys},
		{"binary data", []UserRecord{{PartitionKey: "a", Data: []byte{0, 0xff, 0xF3, 0x89, 0x9A, 0xC2}}, {PartitionKey: "a", Data: make([]byte, 1500)}}},
		{"data looks aggregated", []UserRecord{{PartitionKey: "a", Data: wrap(pb{}.str(1, "k").msg(3, pb{}.varint(1, 0).str(3, "inner")))}}},
	}
	for _, tt := range tests {
		for _, cfg := range []Config{{}, {AggregateSingle: true}, {OuterKey: OuterKeyKPL}, {MaxBytes: 2000}} {
			t.Run(fmt.Sprintf("%s/%+v", tt.name, cfg), func(t *testing.T) {
				checkSame(t, tt.recs, deaggregateAll(t, aggregateAll(t, cfg, tt.recs)))
			})
		}
	}
}

func TestSingleRecord(t *testing.T) {
	r := UserRecord{PartitionKey: "pk1", Data: []byte("hello")}
	withEHK := UserRecord{PartitionKey: "pk1", ExplicitHashKey: "42", Data: []byte("hello")}
	tests := []struct {
		name            string
		cfg             Config
		rec             UserRecord
		aggregated      bool
		wantPK, wantEHK string
	}{
		{"plain", Config{}, r, false, "pk1", ""},
		{"plain with EHK", Config{}, withEHK, false, "pk1", "42"},
		{"plain KPL", Config{OuterKey: OuterKeyKPL}, r, false, "pk1", goldenHashPK1},
		{"plain KPL with EHK", Config{OuterKey: OuterKeyKPL}, withEHK, false, "pk1", "42"},
		{"aggregated", Config{AggregateSingle: true}, r, true, "pk1", ""},
		{"aggregated KPL", Config{AggregateSingle: true, OuterKey: OuterKeyKPL}, withEHK, true, "a", "42"},
		{"data starts with magic", Config{}, UserRecord{PartitionKey: "pk1", Data: append(Magic[:4:4], 'x')}, true, "pk1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := aggregateAll(t, tt.cfg, []UserRecord{tt.rec})
			if len(out) != 1 {
				t.Fatalf("%d records", len(out))
			}
			got := out[0]
			if got.PartitionKey != tt.wantPK || got.ExplicitHashKey != tt.wantEHK {
				t.Errorf("keys %q %q, want %q %q", got.PartitionKey, got.ExplicitHashKey, tt.wantPK, tt.wantEHK)
			}
			if IsAggregated(got.Data) != tt.aggregated {
				t.Errorf("aggregated = %v", !tt.aggregated)
			}
			if !tt.aggregated && &got.Data[0] != &tt.rec.Data[0] {
				t.Error("plain record's data was copied")
			}
		})
	}
}

func TestBuildEmptyAndReset(t *testing.T) {
	a := newAgg(t, Config{})
	if _, err := a.Build(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Build = %v, want ErrEmpty", err)
	}
	for _, r := range goldenRecords {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	first, err := a.Build()
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Build() // Build does not reset
	if err != nil || !bytes.Equal(first.Data, again.Data) || &first.Data[0] == &again.Data[0] {
		t.Fatalf("second Build: %v", err)
	}
	a.Reset()
	if a.Len() != 0 || a.Size() != 0 {
		t.Fatalf("after Reset: Len %d Size %d", a.Len(), a.Size())
	}
	if _, err := a.Build(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Build after Reset = %v", err)
	}
	// Keys from before Reset must not leak into the new tables.
	next := []UserRecord{{PartitionKey: "pk2", Data: []byte("1")}, {PartitionKey: "pk3", Data: []byte("2")}}
	for _, r := range next {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	built, err := a.Build()
	if err != nil {
		t.Fatal(err)
	}
	if pks, _, _ := countTables(t, built.Data); pks != 2 {
		t.Fatalf("%d partition keys after Reset", pks)
	}
	checkSame(t, next, deaggregateAll(t, []Record{built}))
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr []string
	}{
		{Config{}, nil},
		{Config{MaxBytes: LimitMaxBytes, MaxRecords: 1}, nil},
		{Config{MaxBytes: -1}, []string{"MaxBytes"}},
		{Config{MaxBytes: LimitMaxBytes + 1}, []string{"MaxBytes"}},
		{Config{MaxRecords: -1, OuterKey: 7}, []string{"MaxRecords", "OuterKey(7)"}},
	}
	for _, tt := range tests {
		a, err := NewAggregator(tt.cfg)
		if len(tt.wantErr) == 0 {
			if err != nil {
				t.Errorf("%+v: %v", tt.cfg, err)
			} else if a.Config().MaxBytes == 0 {
				t.Errorf("%+v: default MaxBytes not applied", tt.cfg)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error", tt.cfg)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %s", tt.cfg, err, w)
			}
		}
	}
}
