package checkpoint_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/checkpoint"
)

func cp(seq string, sub int64) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: seq, SubSequenceNumber: sub}
}

func TestCheckpointValidate(t *testing.T) {
	for _, tc := range []struct {
		cp    checkpoint.Checkpoint
		valid bool
	}{
		{cp("0", 0), true},
		{cp("1", 7), true},
		{cp("49590338271490256608559692538361571095921575989136588898", 0), true},
		{cp("9"+strings.Repeat("0", 128), 0), true}, // 129 digits
		{cp(checkpoint.TrimHorizon, 0), true},
		{cp(checkpoint.Latest, 0), true},
		{cp(checkpoint.AtTimestamp, 0), true},
		{cp(checkpoint.ShardEnd, 0), true},
		{cp("", 0), false},
		{cp("9"+strings.Repeat("0", 129), 0), false}, // 130 digits
		{cp("01", 0), false},
		{cp("-1", 0), false},
		{cp("1e5", 0), false},
		{cp(" 1", 0), false},
		{cp("shard_end", 0), false},
		{cp("1", -1), false},
		{cp(checkpoint.ShardEnd, 1), false},
	} {
		err := tc.cp.Validate()
		if (err == nil) != tc.valid || (err != nil && !errors.Is(err, checkpoint.ErrInvalid)) {
			t.Errorf("Validate(%q/%d) = %v, want valid=%v", tc.cp.SequenceNumber, tc.cp.SubSequenceNumber, err, tc.valid)
		}
	}
}

func TestCheckpointCompare(t *testing.T) {
	ordered := []checkpoint.Checkpoint{
		cp(checkpoint.TrimHorizon, 0),
		cp("0", 0),
		cp("9", 0),
		cp("10", 0),
		cp("10", 1),
		cp("10", 2),
		cp("100", 0),
		cp("49"+strings.Repeat("0", 127), 0),
		cp(checkpoint.ShardEnd, 0),
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if got := cp(checkpoint.Latest, 0).Compare(cp(checkpoint.TrimHorizon, 0)); got != 0 {
		t.Errorf("initial positions compare %d, want 0", got)
	}
	// CompareSequenceNumbers agrees with big.Int on random numbers.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		a, b := randomDigits(rng), randomDigits(rng)
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		if got, want := checkpoint.CompareSequenceNumbers(a, b), x.Cmp(y); got != want {
			t.Fatalf("CompareSequenceNumbers(%s, %s) = %d, want %d", a, b, got, want)
		}
	}
}

func randomDigits(rng *rand.Rand) string {
	n := 1 + rng.IntN(40)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

func TestCheckpointPredicates(t *testing.T) {
	if c := cp(checkpoint.ShardEnd, 0); !c.IsSentinel() || c.IsInitial() || !c.IsShardEnd() {
		t.Errorf("SHARD_END predicates wrong")
	}
	if c := cp(checkpoint.Latest, 0); !c.IsSentinel() || !c.IsInitial() || c.IsShardEnd() {
		t.Errorf("LATEST predicates wrong")
	}
	if c := cp("5", 0); c.IsSentinel() || c.IsInitial() || c.IsShardEnd() {
		t.Errorf("sequence number predicates wrong")
	}
	if s := cp("5", 3).String(); s != "5/3" {
		t.Errorf("String() = %q", s)
	}
	if (checkpoint.Lease{Owner: "w", Expired: false}).Available() || !(checkpoint.Lease{}).Available() ||
		!(checkpoint.Lease{Owner: "w", Expired: true}).Available() {
		t.Errorf("Lease.Available wrong")
	}
}
