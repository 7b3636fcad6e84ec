package hashkey

import (
	"fmt"
	"testing"
)

var sinkKey Key

// BenchmarkFromPartitionKey measures hashing one partition key (per record
// of a PutRecords call).
func BenchmarkFromPartitionKey(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("bench-", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkKey = FromPartitionKey(keys[i%len(keys)])
		i++
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
