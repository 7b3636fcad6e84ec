package hashkey

import (
	"crypto/md5"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestFormatParseRoundTrip(t *testing.T) {
	cases := []Key{{0, 0}, {0, 1}, {0, ^uint64(0)}, {1, 0}, Max, {0x8000000000000000, 0}, {12345, 67890}}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		cases = append(cases, Key{r.Uint64() >> (r.IntN(64)), r.Uint64()})
	}
	for _, k := range cases {
		s := k.String()
		if want := k.Big().String(); s != want {
			t.Fatalf("String(%v) = %s, want %s", k, s, want)
		}
		got, err := Parse(s)
		if err != nil || got != k {
			t.Fatalf("Parse(%s) = %v, %v; want %v", s, got, err, k)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "01", "1a", " 1", "340282366920938463463374607431768211456", "1000000000000000000000000000000000000000"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if k, err := Parse("340282366920938463463374607431768211455"); err != nil || k != Max {
		t.Errorf("Parse(max) = %v, %v", k, err)
	}
}

func TestFromPartitionKeyMatchesBigInt(t *testing.T) {
	for _, pk := range []string{"a", "partition-1", "ü", "x"} {
		sum := md5.Sum([]byte(pk))
		want := new(big.Int).SetBytes(sum[:])
		if got := FromPartitionKey(pk).Big(); got.Cmp(want) != 0 {
			t.Errorf("%q: %s want %s", pk, got, want)
		}
	}
}

func TestSplitEvenly(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 100} {
		starts, ends := SplitEvenly(n)
		if starts[0] != (Key{}) || ends[n-1] != Max {
			t.Fatalf("n=%d: does not cover the space", n)
		}
		for i := 1; i < n; i++ {
			next, _ := ends[i-1].Add(Key{Lo: 1})
			if next != starts[i] {
				t.Fatalf("n=%d: gap between %d and %d", n, i-1, i)
			}
		}
	}
	// AWS: a 2-shard stream splits at 2^127.
	starts, _ := SplitEvenly(2)
	if starts[1].String() != "170141183460469231731687303715884105728" {
		t.Fatalf("2-shard split at %s", starts[1])
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0")
	f.Add("340282366920938463463374607431768211455")
	f.Add("123")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("round trip %q -> %q", s, k.String())
		}
	})
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		start, end string
		known      bool
	}{
		{"0", Max.String(), true},
		{"7", "7", true},
		{"", "", false},
		{"5", "4", false},
		{"x", "4", false},
		{"0", "340282366920938463463374607431768211456", false}, // 2^128
	} {
		if got := ParseRange(tc.start, tc.end).Known(); got != tc.known {
			t.Errorf("ParseRange(%q, %q).Known() = %v, want %v", tc.start, tc.end, got, tc.known)
		}
	}
}

func TestRangeHoldsRecord(t *testing.T) {
	pk := "customer-1"
	k := FromPartitionKey(pk)
	one := Key{Lo: 1}
	below, _ := k.Sub(one)
	above, _ := k.Add(one)
	exact := ParseRange(k.String(), k.String())
	for _, tc := range []struct {
		name    string
		r       Range
		pk, ehk string
		want    bool
	}{
		{"partition key at the only key", exact, pk, "", true},
		{"partition key above", ParseRange("0", below.String()), pk, "", false},
		{"partition key below", ParseRange(above.String(), Max.String()), pk, "", false},
		{"explicit key wins over partition key", exact, "other", k.String(), true},
		{"explicit key outside", exact, pk, above.String(), false},
		{"explicit key that does not parse is kept", exact, pk, "not-a-number", true},
		{"unknown range holds all", Range{}, pk, above.String(), true},
	} {
		if got := tc.r.HoldsRecord(tc.pk, tc.ehk); got != tc.want {
			t.Errorf("%s: HoldsRecord(%q, %q) = %v, want %v", tc.name, tc.pk, tc.ehk, got, tc.want)
		}
	}
}

func TestAppendUint128(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cases := []Key{{0, 0}, {0, 9}, {0, 1e19 - 1}, {0, 1e19}, {0, ^uint64(0)}, {1, 0}, {0x8000000000000000, 0}, {0x8000000000000000, 1}, Max, {0x0000000000000036, 0x35c9adc5dea00000}, {0x36, 0x35c9adc5dea00000 - 1}}
	for i := 0; i < 5000; i++ {
		cases = append(cases, Key{r.Uint64() >> r.IntN(64), r.Uint64() >> r.IntN(64)})
	}
	for _, k := range cases {
		want := k.Big().String()
		if got := string(AppendUint128([]byte("x"), k.Hi, k.Lo)); got != "x"+want {
			t.Fatalf("AppendUint128(%v) = %s, want x%s", k, got, want)
		}
		if got := FormatUint128(k.Hi, k.Lo); got != want {
			t.Fatalf("FormatUint128(%v) = %s, want %s", k, got, want)
		}
	}
}

func TestFromBytesBigEndian(t *testing.T) {
	b := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if k := FromBytes(b); k != (Key{0x0102030405060708, 0x090a0b0c0d0e0f10}) {
		t.Fatalf("FromBytes = %x", k)
	}
	sum := md5.Sum([]byte("pk"))
	if k, want := FromPartitionKey("pk"), new(big.Int).SetBytes(sum[:]); k.Big().Cmp(want) != 0 {
		t.Fatalf("FromPartitionKey(pk) = %v, want %v", k, want)
	}
}
