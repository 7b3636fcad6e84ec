package server

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/shoalstream/shoal/internal/wire"
)

// putRecordsBody encodes a PutRecords request of n records of size bytes.
func putRecordsBody(tb testing.TB, n, size int) []byte {
	r := rand.New(rand.NewPCG(1, 1))
	name := "bench"
	in := wire.PutRecordsInput{StreamRef: wire.StreamRef{StreamName: &name}}
	for i := 0; i < n; i++ {
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(r.IntN(256))
		}
		k := fmt.Sprint("bench-", r.IntN(10000))
		in.Records = append(in.Records, wire.PutRecordsRequestEntry{Data: d, PartitionKey: &k})
	}
	buf := getBuf()
	if err := (jsonCodec{}).encode(buf, &in); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// BenchmarkDecodePutRecords measures decoding a 500 x 1 KiB PutRecords body,
// the server's hottest path.
func BenchmarkDecodePutRecords(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("500x%dB", size), func(b *testing.B) {
			body := putRecordsBody(b, 500, size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var in wire.PutRecordsInput
				if err := (jsonCodec{}).decode(body, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeGetRecords measures encoding a GetRecords response of
// 10,000 records of 100 bytes.
func BenchmarkEncodeGetRecords(b *testing.B) {
	out := &wire.GetRecordsOutput{}
	for i := 0; i < 10000; i++ {
		out.Records = append(out.Records, wire.Record{SequenceNumber: "170141183460469231731687303715884105728", ApproximateArrivalTimestamp: 1762440000123, Data: make([]byte, 100), PartitionKey: "bench-1234"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := (jsonCodec{}).encode(io.Discard, out); err != nil {
			b.Fatal(err)
		}
	}
}
