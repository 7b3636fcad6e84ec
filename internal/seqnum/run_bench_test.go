package seqnum

import (
	"testing"

	"github.com/shoalstream/shoal/internal/testutil/benchpair"
)

// BenchmarkAppendRunPaired formats the 500 consecutive sequence numbers of
// one PutRecords batch into one buffer, each with AppendText (a 128-bit
// division each) and with AppendRun (a copy and a short decimal addition
// each), alternating in one loop; ns/record per side.
func BenchmarkAppendRunPaired(b *testing.B) {
	n := Number{Shard: 3, Offset: 123456789, Index: 0, Epoch: 0xbeef}
	var each, run []byte
	b.ReportAllocs()
	spent := benchpair.Time(b, func() error {
		each = each[:0]
		for i := range 500 {
			m := n
			m.Index += uint16(i)
			each, _ = m.AppendText(each)
		}
		return nil
	}, func() error {
		run = AppendRun(run[:0], n, 500)
		return nil
	})
	if string(each) != string(run) {
		b.Fatal("AppendRun and AppendText differ")
	}
	benchpair.Report(b, spent, "run-vs-each-%", "each-us/op", "run-us/op")
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N)/500, "each-ns/record")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N)/500, "run-ns/record")
}
