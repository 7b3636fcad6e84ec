package hashkey

import (
	"fmt"
	"testing"
)

var sinkKey Key

// BenchmarkFromPartitionKey measures hashing one partition key (per record
// of a PutRecords call).
func BenchmarkFromPartitionKey(b *testing.B) {
	for _, v := range []struct {
		name   string
		format string
	}{{"short", "bench-%d"}, {"uuid", "%08d-1f2e-4d3c-8b7a-0123456789ab"}} {
		b.Run(v.name, func(b *testing.B) {
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf(v.format, i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkKey = FromPartitionKey(keys[i%len(keys)])
				i++
			}
		})
	}
}

var sinkStr string

// BenchmarkFormatUint128 measures formatting a 39-digit value.
func BenchmarkFormatUint128(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkStr = FormatUint128(0x8100000700000000, 0x0000123400090007)
	}
}
