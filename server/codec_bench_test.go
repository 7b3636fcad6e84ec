package server

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/shoalstream/shoal/internal/seqnum"
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

// reportPerRecord adds ns/record and allocs/record to a benchmark whose
// every op handles n records. Call it after the loop.
func reportPerRecord(b *testing.B, n int, allocsBefore uint64) {
	b.Helper()
	ops := float64(b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/ops/float64(n), "ns/record")
	b.ReportMetric(float64(mallocs()-allocsBefore)/ops/float64(n), "allocs/record")
}

// BenchmarkDecodePutRecords measures decoding a 500-record PutRecords body,
// the server's hottest path.
func BenchmarkDecodePutRecords(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("500x%dB", size), func(b *testing.B) {
			body := putRecordsBody(b, 500, size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			m := mallocs()
			for b.Loop() {
				var in wire.PutRecordsInput
				if err := (jsonCodec{}).decode(body, &in); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, 500, m)
		})
	}
}

// BenchmarkEncodePutRecords measures encoding a 500-record PutRecords
// response, sequence numbers formatted included.
func BenchmarkEncodePutRecords(b *testing.B) {
	buf := getBuf()
	b.ReportAllocs()
	m := mallocs()
	for b.Loop() {
		out := &wire.PutRecordsOutput{Records: make([]wire.PutRecordsResultEntry, 500)}
		for i := range out.Records {
			out.Records[i] = wire.PutRecordsResultEntry{
				ShardID:        "shardId-000000000003",
				SequenceNumber: seqnum.Number{Shard: 3, Offset: 1 << 30, Index: uint16(i), Epoch: 0xbeef}.String(),
			}
		}
		buf.Reset()
		if err := (jsonCodec{}).encode(buf, out); err != nil {
			b.Fatal(err)
		}
	}
	reportPerRecord(b, 500, m)
}

// BenchmarkEncodeGetRecords measures encoding a GetRecords response of
// 10,000 records of 100 bytes.
func BenchmarkEncodeGetRecords(b *testing.B) {
	out := &wire.GetRecordsOutput{}
	for i := 0; i < 10000; i++ {
		out.Records = append(out.Records, wire.Record{SequenceNumber: "170141183460469231731687303715884105728", ApproximateArrivalTimestamp: 1762440000123, Data: make([]byte, 100), PartitionKey: "bench-1234"})
	}
	b.ReportAllocs()
	m := mallocs()
	for b.Loop() {
		if err := (jsonCodec{}).encode(io.Discard, out); err != nil {
			b.Fatal(err)
		}
	}
	reportPerRecord(b, 10000, m)
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}
