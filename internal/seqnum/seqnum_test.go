package seqnum

import (
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestRoundTripAndOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var nums []Number
	for i := 0; i < 5000; i++ {
		nums = append(nums, Number{Shard: uint32(r.IntN(5)), Offset: r.Uint64N(MaxOffset), Index: uint16(r.IntN(600)), Epoch: 7})
	}
	nums = append(nums, Number{}, Number{Shard: ^uint32(0), Offset: MaxOffset - 1, Index: ^uint16(0), Epoch: ^uint16(0)})
	for _, n := range nums {
		s := n.String()
		if len(s) != 39 {
			t.Fatalf("%+v: %q has %d digits", n, s, len(s))
		}
		got, err := Parse(s)
		if err != nil || got != n {
			t.Fatalf("Parse(%q) = %+v, %v; want %+v", s, got, err, n)
		}
	}
	// Numeric order (as the KCL compares, with BigInteger) equals Less order.
	sort.Slice(nums, func(i, j int) bool { return nums[i].Less(nums[j]) })
	for i := 1; i < len(nums); i++ {
		a, _ := new(big.Int).SetString(nums[i-1].String(), 10)
		b, _ := new(big.Int).SetString(nums[i].String(), 10)
		if a.Cmp(b) > 0 || (a.Cmp(b) == 0 && nums[i-1] != nums[i]) {
			t.Fatalf("order broken between %+v and %+v", nums[i-1], nums[i])
		}
		if nums[i-1].String() > nums[i].String() {
			t.Fatalf("string order differs from numeric order")
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := Number{Shard: 1, Offset: 2, Index: 3}.String()
	bad := []string{"", "0", "1", good[:38], good + "0", "49590338271490256608559692538361571095921575989136588898",
		"100000000000000000000000000000000000000", // top bit not set
		"340282366920938463463374607431768211455", // all ones: wrong version
	}
	for _, s := range bad {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Number{Shard: 7, Offset: 12345, Index: 9}.String())
	f.Add("49590338271490256608559692538361571095921575989136588898")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("Parse(%q) = %+v which formats as %q", s, n, n.String())
		}
	})
}

func TestAppendTextMatchesString(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 2000; i++ {
		n := Number{Shard: r.Uint32(), Offset: r.Uint64N(MaxOffset), Index: uint16(r.Uint32()), Epoch: uint16(r.Uint32())}
		b, err := n.AppendText([]byte("p"))
		if err != nil || string(b) != "p"+n.String() {
			t.Fatalf("AppendText(%+v) = %q, %v; String %q", n, b, err, n.String())
		}
	}
}
