package seqnum

import "testing"

var sinkStr string

// BenchmarkString measures formatting one sequence number (one per record of
// a PutRecords response).
func BenchmarkString(b *testing.B) {
	n := Number{Shard: 3, Offset: 123456789, Index: 42, Epoch: 0xbeef}
	b.ReportAllocs()
	for b.Loop() {
		sinkStr = n.String()
		n.Index++
	}
}

var sinkBuf []byte

// BenchmarkAppendText measures appending one sequence number to a buffer.
func BenchmarkAppendText(b *testing.B) {
	n := Number{Shard: 3, Offset: 123456789, Index: 42, Epoch: 0xbeef}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = n.AppendText(buf[:0])
		n.Index++
	}
	sinkBuf = buf
}

// BenchmarkParse measures parsing one sequence number.
func BenchmarkParse(b *testing.B) {
	s := Number{Shard: 3, Offset: 123456789, Index: 42, Epoch: 0xbeef}.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}
