package consumer

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/shoalstream/shoal/checkpoint"
)

// leasesOwned builds n leases owned as owners says (owner per lease; "" for
// none, a trailing "!" for an expired lease).
func leasesOwned(owners ...string) []checkpoint.Lease {
	out := make([]checkpoint.Lease, len(owners))
	for i, o := range owners {
		l := checkpoint.Lease{ShardID: fmt.Sprintf("shardId-%012d", i), Owner: o}
		if n := len(o); n > 0 && o[n-1] == '!' {
			l.Owner, l.Expired = o[:n-1], true
		}
		out[i] = l
	}
	return out
}

func TestPlanBalance(t *testing.T) {
	tests := []struct {
		name      string
		owners    []string
		held      int // the first `held` leases owned by "me" are held
		maxLeases int
		maxSteal  int
		wantTake  int
		wantSteal int
		stealFrom string
		target    int
	}{
		{name: "empty", owners: nil},
		{name: "alone takes all", owners: []string{"", "", "", ""}, wantTake: 4, target: 4},
		{name: "takes expired", owners: []string{"a!", "a!", "", ""}, wantTake: 4, target: 4},
		{name: "share with live owner", owners: []string{"a", "a", "", ""}, wantTake: 2, target: 2},
		{name: "at target takes nothing", owners: []string{"me", "me", "a", "a"}, held: 2, target: 2},
		{name: "steal from overloaded", owners: []string{"a", "a", "a", "a"}, maxSteal: 1, wantSteal: 1, stealFrom: "a", target: 2},
		{name: "steal bounded by maxSteal", owners: []string{"a", "a", "a", "a", "a", "a"}, maxSteal: 2, wantSteal: 2, stealFrom: "a", target: 3},
		{name: "steal bounded by excess", owners: []string{"a", "a", "a", "a", "b", "b", "b", "b"}, maxSteal: 5, wantSteal: 1, stealFrom: "a", target: 3},
		{name: "no steal when disabled", owners: []string{"a", "a", "a", "a"}, maxSteal: -1, target: 2},
		// 8 leases, 3 workers: 3/3/2 is balanced; the one with 2 must not
		// steal (the others are at target and it needs only one).
		{name: "3-3-2 stable", owners: []string{"me", "me", "a", "a", "a", "b", "b", "b"}, held: 2, maxSteal: 1, target: 3},
		{name: "at target needs two steals one", owners: []string{"me", "a", "a", "a", "b", "b", "b", "c", "c"}, held: 1, maxSteal: 1, wantSteal: 1, stealFrom: "a", target: 3},
		{name: "max leases caps target", owners: []string{"", "", "", "", "", ""}, maxLeases: 2, wantTake: 2, target: 2},
		{name: "prefers available over stealing", owners: []string{"a", "a", "a", ""}, maxSteal: 1, wantTake: 1, target: 2},
		{name: "own lease from a previous run", owners: []string{"me", "me"}, wantTake: 2, target: 2},
		{name: "more workers than leases", owners: []string{"a", "b", ""}, wantTake: 1, target: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leases := leasesOwned(tc.owners...)
			held := map[string]bool{}
			for i := 0; i < tc.held; i++ {
				held[leases[i].ShardID] = true
			}
			p := planBalance(balanceInput{self: "me", active: leases, held: held, maxLeases: tc.maxLeases, maxSteal: tc.maxSteal}, rand.New(rand.NewPCG(1, 2)))
			if len(p.take) != tc.wantTake || len(p.steal) != tc.wantSteal {
				t.Fatalf("take %d steal %d, want %d and %d", len(p.take), len(p.steal), tc.wantTake, tc.wantSteal)
			}
			if p.target != tc.target {
				t.Errorf("target %d, want %d", p.target, tc.target)
			}
			for _, l := range p.take {
				if !l.Available() && l.Owner != "me" {
					t.Errorf("takes %s owned by %s", l.ShardID, l.Owner)
				}
				if held[l.ShardID] {
					t.Errorf("takes %s it holds", l.ShardID)
				}
			}
			for _, l := range p.steal {
				if l.Owner != tc.stealFrom {
					t.Errorf("steals %s from %q, want from %q", l.ShardID, l.Owner, tc.stealFrom)
				}
			}
		})
	}
}

// TestPlanBalanceConverges simulates rounds of workers joining and
// leaving, applying each plan, and checks that the shares become even
// (max - min <= 1) within a bounded number of rounds and then stay.
func TestPlanBalanceConverges(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ leases, workers int }{{8, 3}, {8, 2}, {16, 5}, {3, 5}, {100, 7}} {
		t.Run(fmt.Sprintf("%d leases %d workers", tc.leases, tc.workers), func(t *testing.T) {
			owners := make([]string, tc.leases)
			for i := range owners {
				owners[i] = "w0" // one worker took everything first
			}
			workers := make([]string, tc.workers)
			for i := range workers {
				workers[i] = fmt.Sprintf("w%d", i)
			}
			stableRounds := 0
			for round := 0; round < 200; round++ {
				for _, w := range workers {
					leases := leasesOwned(owners...)
					held := map[string]bool{}
					for _, l := range leases {
						if l.Owner == w {
							held[l.ShardID] = true
						}
					}
					p := planBalance(balanceInput{self: w, active: leases, held: held, maxSteal: 1}, rnd)
					for _, l := range append(p.take, p.steal...) {
						var i int
						if _, err := fmt.Sscanf(l.ShardID, "shardId-%d", &i); err != nil {
							t.Fatalf("shard ID %q: %v", l.ShardID, err)
						}
						owners[i] = w
					}
				}
				counts := map[string]int{}
				for _, o := range owners {
					counts[o]++
				}
				var cs []int
				for _, w := range workers {
					cs = append(cs, counts[w])
				}
				sort.Ints(cs)
				even := cs[len(cs)-1]-cs[0] <= 1 || (tc.workers > tc.leases && cs[len(cs)-1] == 1)
				if even {
					stableRounds++
				} else if stableRounds > 0 {
					t.Fatalf("round %d: balance lost again: %v", round, cs)
				}
				if stableRounds == 5 {
					t.Logf("balanced after %d rounds: %v", round-4, cs)
					return
				}
			}
			t.Fatalf("not balanced after 200 rounds: %v", owners)
		})
	}
}

// TestPlanBalanceHandoff: hand-off requests in the snapshot. A lease on its
// way to a worker counts for that worker; a lease handed over to this
// worker is taken whatever the target; a lease whose owner let this
// worker's request lapse is the one stolen.
func TestPlanBalanceHandoff(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	pending := func(l checkpoint.Lease, to string, lapsed bool) checkpoint.Lease {
		l.HandoffTo, l.HandoffExpired = to, lapsed
		return l
	}
	plan := func(leases []checkpoint.Lease, held ...int) balancePlan {
		h := map[string]bool{}
		for _, i := range held {
			h[leases[i].ShardID] = true
		}
		return planBalance(balanceInput{self: "me", active: leases, held: h, maxSteal: 2}, rnd)
	}

	// a holds 4; "me" asked for two of them: it counts them as its own
	// and asks for nothing more (target 2).
	ls := leasesOwned("a", "a", "a", "a")
	ls[0], ls[1] = pending(ls[0], "me", false), pending(ls[1], "me", false)
	if p := plan(ls); len(p.take)+len(p.steal) != 0 || p.target != 2 || p.workers != 2 {
		t.Errorf("with two requests pending: %+v", p)
	}
	// Another worker asked for one: three workers; it is not stolen again.
	ls = leasesOwned("a", "a", "a", "a", "a", "a")
	ls[0] = pending(ls[0], "b", false)
	p := plan(ls)
	if p.workers != 3 || p.target != 2 || len(p.steal) != 2 {
		t.Fatalf("with b's request pending: %+v", p)
	}
	for _, l := range p.steal {
		if l.ShardID == ls[0].ShardID {
			t.Errorf("steals %s, on its way to b", l.ShardID)
		}
	}
	// Handed over to "me" (owned, not held): taken even above target.
	ls = leasesOwned("me", "me", "me", "a")
	if p := plan(ls, 0, 1); len(p.take) != 1 || p.take[0].ShardID != ls[2].ShardID {
		t.Errorf("a lease handed over: %+v", p)
	}
	// A request of "me" lapsed: that lease is stolen, not another.
	ls = leasesOwned("a", "a", "a", "a")
	ls[3] = pending(ls[3], "me", true)
	if p := plan(ls); len(p.steal) != 1 || p.steal[0].ShardID != ls[3].ShardID {
		t.Errorf("after a lapsed request: %+v", p)
	}
}
