package memengine_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/memengine"
)

func benchRecords(n, size int) []engine.Record {
	rs := make([]engine.Record, n)
	for i := range rs {
		rs[i] = engine.Record{PartitionKey: fmt.Sprint("key-", i), Data: make([]byte, size)}
	}
	return rs
}

// BenchmarkAppend appends batches of 1 and 100 records of 100 bytes, from
// one goroutine and from GOMAXPROCS goroutines on one log. Every 1024
// appends it trims the log, as retention would, so that the benchmark
// measures appends rather than a heap growing without end.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		rs := benchRecords(n, 100)
		bytes := int64(n * (100 + len(rs[0].PartitionKey)))
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			l := benchLog(b)
			b.SetBytes(bytes)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, _, err := l.Append(b.Context(), rs); err != nil {
					b.Fatal(err)
				}
				if i++; i%1024 == 0 {
					trimAll(b, l)
				}
			}
		})
		b.Run(fmt.Sprintf("records=%d/parallel", n), func(b *testing.B) {
			l := benchLog(b)
			b.SetBytes(bytes)
			b.ReportAllocs()
			var count atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Append(b.Context(), rs); err != nil {
						b.Error(err)
						return
					}
					if count.Add(1)%1024 == 0 {
						trimAll(b, l)
					}
				}
			})
		})
	}
}

// BenchmarkRead reads 100 records of 100 bytes at a time from a log of
// 1000 batches of 10 records.
func BenchmarkRead(b *testing.B) {
	l := benchLog(b)
	rs := benchRecords(10, 100)
	for range 1000 {
		if _, _, err := l.Append(b.Context(), rs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(100 * 106)
	b.ReportAllocs()
	var from engine.Position
	for b.Loop() {
		es, next, err := l.Read(b.Context(), from, 100, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) == 0 {
			next = engine.Position{}
		}
		from = next
	}
}

// trimAll drops every batch of l.
func trimAll(b *testing.B, l engine.Log) {
	if _, err := l.TrimBefore(b.Context(), time.Now().UnixMilli()+1); err != nil {
		b.Error(err)
	}
}

func benchLog(b *testing.B) engine.Log {
	e := memengine.New(memengine.Config{})
	b.Cleanup(func() {
		if err := e.Close(); err != nil {
			b.Error(err)
		}
	})
	l, err := e.CreateLog(b.Context(), engine.LogID{Stream: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return l
}
