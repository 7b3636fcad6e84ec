package storage

import (
	"fmt"
	"testing"
	"time"
)

func benchRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		data := make([]byte, 100)
		for j := range data {
			data[j] = byte(i + j)
		}
		recs[i] = Record{PartitionKey: fmt.Sprintf("partition-key-%04d", i), Data: data}
	}
	return recs
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		for _, batch := range []int{1, 125} {
			b.Run(fmt.Sprintf("fsync=%s/batch=%d", mode, batch), func(b *testing.B) {
				l := mustOpen(b, b.TempDir(), Options{Fsync: mode})
				defer mustClose(b, l)
				recs := benchRecords(batch)
				b.SetBytes(int64(batch * 100))
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					if _, _, err := l.Append(recs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	for _, batch := range []int{1, 125} {
		b.Run(fmt.Sprintf("fsync=always/batch=%d", batch), func(b *testing.B) {
			l := mustOpen(b, b.TempDir(), Options{})
			defer mustClose(b, l)
			recs := benchRecords(batch)
			b.SetBytes(int64(batch * 100))
			b.ReportAllocs()
			b.SetParallelism(16) // 16 goroutines per CPU
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Append(recs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "records/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	const batch, batches = 125, 400
	l := mustOpen(b, b.TempDir(), Options{Fsync: FsyncNever, SegmentBytes: 1 << 20})
	defer mustClose(b, l)
	recs := benchRecords(batch)
	for i := 0; i < batches; i++ {
		if _, _, err := l.Append(recs); err != nil {
			b.Fatal(err)
		}
	}
	for _, limit := range []int{125, 10000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(limit * 100))
			pos := Position{}
			n := 0
			start := time.Now()
			for b.Loop() {
				es, next, err := l.Read(pos, limit, 0)
				if err != nil {
					b.Fatal(err)
				}
				if len(es) == 0 {
					pos = Position{}
					continue
				}
				n += len(es)
				pos = next
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkOpen measures recovery: scanning and validating a 64 MiB log.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	l := mustOpen(b, dir, Options{Fsync: FsyncNever, SegmentBytes: 16 << 20})
	recs := benchRecords(125)
	for l.End().Offset < 64<<20 { // FsyncNever: End is everything written
		if _, _, err := l.Append(recs); err != nil {
			b.Fatal(err)
		}
	}
	size := int64(l.End().Offset)
	mustClose(b, l)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		l, err := Open(dir, Options{Fsync: FsyncNever})
		if err != nil {
			b.Fatal(err)
		}
		mustClose(b, l)
	}
}
