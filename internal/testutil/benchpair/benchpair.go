// Package benchpair runs paired benchmarks: two variants of one operation
// called in alternating order in the same loop, so that the machine's
// drifting load falls on both alike, with the cost of the second reported
// as a share of the first's time.
package benchpair

import (
	"testing"
	"time"
)

// Alternate resets b's timer and runs b.N rounds; in each it calls call(0)
// and call(1), side 0 first in even rounds and side 1 first in odd ones.
func Alternate(b *testing.B, call func(side int)) {
	b.ResetTimer()
	for i := range b.N {
		first := i % 2
		call(first)
		call(1 - first)
	}
}

// Time runs base and other b.N times each, alternating as Alternate does,
// fails b at the first error, and returns the time spent in each
// (spent[0] in base, spent[1] in other).
func Time(b *testing.B, base, other func() error) (spent [2]time.Duration) {
	calls := [2]func() error{base, other}
	Alternate(b, func(side int) {
		t0 := time.Now()
		if err := calls[side](); err != nil {
			b.Fatal(err)
		}
		spent[side] += time.Since(t0)
	})
	return spent
}

// Report reports the cost of side 1 over side 0 as a percentage
// (100 × (spent[1]/spent[0] − 1)) in the unit costUnit, and each side's
// microseconds per round in baseUnit and otherUnit.
func Report(b *testing.B, spent [2]time.Duration, costUnit, baseUnit, otherUnit string) {
	b.ReportMetric(100*(float64(spent[1])/float64(spent[0])-1), costUnit)
	b.ReportMetric(float64(spent[0].Microseconds())/float64(b.N), baseUnit)
	b.ReportMetric(float64(spent[1].Microseconds())/float64(b.N), otherUnit)
}
