package consumer

import (
	"math/rand/v2"
	"slices"

	"github.com/shoalstream/shoal/checkpoint"
)

// balanceInput is what one lease-taking round decides from.
type balanceInput struct {
	self string
	// active are the leases to be processed: not at SHARD_END, parents
	// done (see parentsPending), as read by ListLeases.
	active []checkpoint.Lease
	// held are the shards this worker processes now.
	held map[string]bool
	// maxLeases caps the leases of one worker; 0 means no cap.
	maxLeases int
	// maxSteal bounds the leases stolen in one round; <= 0 disables
	// stealing.
	maxSteal int
}

// balancePlan is what the round does: take the leases in take (handed
// over to this worker, or available), else steal (or ask for) those in
// steal.
type balancePlan struct {
	take, steal []checkpoint.Lease
	// workers is the number of workers counted (those owning a lease that
	// did not expire, and self); target is each one's fair share.
	workers, target int
}

// planBalance computes the leases to take, as the KCL 2.x
// DynamoDBLeaseTaker.computeLeasesToTake does:
//
//   - Workers are the owners of leases that have not expired, plus self.
//     A worker that holds nothing is invisible to the others; it is the one
//     that acts.
//   - The target is ceil(active leases / workers), capped by maxLeases.
//   - A worker below target takes available leases (unowned or expired),
//     chosen at random, up to target.
//   - If none is available, it steals from the most loaded worker: if that
//     worker is above target, min(needed, its excess, maxSteal) leases; if
//     it is at target and this worker needs more than one, one lease. So
//     workers at target and target-1 leave each other alone, and rounds
//     converge on an even share without oscillating.
//
// With graceful hand-off (checkpoint.HandoffStore), a "steal" is first a
// request to the owner, and planBalance also counts the requests:
//
//   - A lease with a pending request counts for the worker that asked (it
//     is on its way there), and is no candidate for another steal.
//   - A lease this worker owns but does not hold (handed over to it, or
//     held by it before a restart under the same ID) is taken, whatever the
//     target, up to maxLeases.
//   - Leases whose owner let this worker's request lapse are stolen first
//     (the worker then takes them by force, as without hand-off).
//
// Taking an owned lease (a steal) or an available one is fenced by the
// lease counter in the Store, so two workers acting on the same snapshot
// cannot both get a lease.
func planBalance(in balanceInput, rnd *rand.Rand) balancePlan {
	counts := map[string]int{in.self: 0}
	byOwner := map[string][]checkpoint.Lease{}
	var available, handed, lapsed []checkpoint.Lease
	for _, l := range in.active {
		live := l.Owner != "" && !l.Expired
		switch {
		case live && l.HandoffPending() && l.HandoffTo != l.Owner:
			// On its way to the worker that asked for it (maybe self).
			counts[l.HandoffTo]++
		case in.held[l.ShardID] && (l.Owner == in.self || l.Owner == "" || l.Expired):
			// Ours (the snapshot may predate our take).
			counts[in.self]++
		case live && l.Owner == in.self:
			// Ours, but not held: handed over to us, or held before a
			// restart under the same worker ID.
			handed = append(handed, l)
			counts[in.self]++
		case l.Available():
			// Unowned or expired.
			available = append(available, l)
		default:
			counts[l.Owner]++
			byOwner[l.Owner] = append(byOwner[l.Owner], l)
			if l.HandoffTo == in.self {
				lapsed = append(lapsed, l)
			}
		}
	}
	p := balancePlan{workers: len(counts)}
	n := len(in.active)
	if n == 0 {
		return p
	}
	p.target = (n + p.workers - 1) / p.workers
	if in.maxLeases > 0 && p.target > in.maxLeases {
		p.target = in.maxLeases
	}
	if over := counts[in.self] - in.maxLeases; in.maxLeases > 0 && over > 0 {
		handed = handed[:max(len(handed)-over, 0)]
	}
	p.take = handed
	needed := p.target - counts[in.self]
	if needed <= 0 {
		return p
	}
	if len(available) > 0 {
		rnd.Shuffle(len(available), func(i, j int) { available[i], available[j] = available[j], available[i] })
		p.take = append(p.take, available[:min(needed, len(available))]...)
		return p
	}
	if in.maxSteal <= 0 {
		return p
	}
	if len(lapsed) > 0 {
		p.steal = lapsed[:min(needed, in.maxSteal, len(lapsed))]
		return p
	}
	// The most loaded other worker; ties go to the smallest ID, so that
	// the choice is deterministic given the snapshot.
	victim, most := "", 0
	for w, c := range counts {
		if w == in.self {
			continue
		}
		if c > most || (c == most && w < victim) {
			victim, most = w, c
		}
	}
	steal := 0
	switch {
	case most > p.target:
		steal = min(needed, most-p.target, in.maxSteal)
	case most == p.target && needed > 1:
		steal = 1
	}
	if steal == 0 {
		return p
	}
	cands := slices.Clone(byOwner[victim])
	rnd.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	p.steal = cands[:min(steal, len(cands))]
	return p
}
