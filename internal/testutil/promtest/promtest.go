// Package promtest checks and prints what a Prometheus registry gathers, for
// the tests and examples of the prommetrics packages.
package promtest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// Compare checks the named metrics of g against want, given in the text
// exposition format without HELP and TYPE lines (Compare adds them from g).
func Compare(t testing.TB, g prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		for _, n := range names {
			if f.GetName() != n {
				continue
			}
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", n, f.GetHelp(), n, strings.ToLower(f.GetType().String()))
			for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
				if line = strings.TrimSpace(line); strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ") {
					b.WriteString(line + "\n")
				}
			}
		}
	}
	if err := testutil.GatherAndCompare(g, strings.NewReader(b.String()), names...); err != nil {
		t.Error(err)
	}
}

// PrintNonZero prints, a line each, the series of g whose value is not
// zero: counters and gauges by their value, histograms as name_count by
// their count of observations, with the labels sorted. It panics if g
// fails to gather (it is for examples, which have no testing.T).
func PrintNonZero(g prometheus.Gatherer) {
	families, err := g.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			name := f.GetName()
			if s.GetHistogram() != nil {
				name += "_count"
			}
			if v := Value(s); v != 0 {
				fmt.Printf("%s{%s} %g\n", name, strings.Join(labels, ","), v)
			}
		}
	}
}

// GatherRepeatedly gathers g n times, as scrapes running beside the code
// under test do, and reports the first error to t.
func GatherRepeatedly(t testing.TB, g prometheus.Gatherer, n int) {
	t.Helper()
	for range n {
		if _, err := g.Gather(); err != nil {
			t.Error(err)
			return
		}
	}
}

// Series returns the series of the family name that g gathers (none if g
// has no such family).
func Series(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

// Value is the value of a counter or gauge series, or the count of
// observations of a histogram (0 for another kind).
func Value(s *dto.Metric) float64 {
	switch {
	case s.GetCounter() != nil:
		return s.GetCounter().GetValue()
	case s.GetGauge() != nil:
		return s.GetGauge().GetValue()
	case s.GetHistogram() != nil:
		return float64(s.GetHistogram().GetSampleCount())
	}
	return 0
}
