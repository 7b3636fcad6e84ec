package producer

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// overload puts 1 KB records from 16 goroutines for d to a producer whose
// server is down (its port refuses connections), with MaxBufferedBytes =
// limit, and returns the peak heap growth and the peak BufferedBytes seen.
func overload(tb testing.TB, limit int64, d time.Duration) (peakHeap, peakLive uint64, peakBuffered int64, puts int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := servertest.Client("http://" + addr)
	p, err := newProducer(c, Config{
		StreamName: "down", MaxBufferedBytes: limit, MaxBufferedRecords: 1 << 30, RecordTTL: time.Minute,
		MaxBackoff: 200 * time.Millisecond, Logger: testLogger(tb),
	}, testHooks{initialMap: evenShards(4, 0)})
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	baseLive := live[0].Value.Uint64()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				data := make([]byte, 1000) // a fresh buffer per record, as an application would
				if _, err := p.Put(ctx, fmt.Sprintf("k%d-%d", w, i%100), data); err == nil {
					n.Add(1)
				}
				cancel()
			}
		})
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base.HeapAlloc {
			peakHeap = max(peakHeap, ms.HeapAlloc-base.HeapAlloc)
		}
		metrics.Read(live)
		if v := live[0].Value.Uint64(); v > baseLive {
			peakLive = max(peakLive, v-baseLive)
		}
		peakBuffered = max(peakBuffered, p.BufferedBytes())
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = p.Close(ctx) // abandons everything: the server never came back
	return peakHeap, peakLive, peakBuffered, n.Load()
}

// TestMemoryBoundUnderOverload checks that a producer whose server is down
// holds at most MaxBufferedBytes of records, and that its heap stays within
// a small multiple of that: the data is held once by the caller's slices
// and once in the aggregates, Pendings and request encoding come on top,
// and the garbage collector lets the heap grow past the live data.
func TestMemoryBoundUnderOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2s")
	}
	const limit = 16 << 20
	heap, live, buffered, puts := overload(t, limit, 2*time.Second)
	t.Logf("MaxBufferedBytes %d MiB: peak BufferedBytes %.1f MiB, peak heap growth %.1f MiB (live after GC %.1f MiB), %d records accepted",
		limit>>20, float64(buffered)/(1<<20), float64(heap)/(1<<20), float64(live)/(1<<20), puts)
	if buffered > limit {
		t.Errorf("BufferedBytes reached %d, above MaxBufferedBytes %d", buffered, limit)
	}
	// The live heap (as of the last collection) must stay near twice the
	// limit: data in the callers' slices and again in the aggregates.
	if live > 3*limit+8<<20 {
		t.Errorf("live heap grew by %d MiB with MaxBufferedBytes %d MiB", live>>20, limit>>20)
	}
	if puts*1000 < limit/2 {
		t.Errorf("only %d records accepted: the buffer never filled", puts)
	}
}

// BenchmarkOverloadMemory reports the peak heap growth of a producer whose
// server is down, for MaxBufferedBytes of 64 MiB (1 KB records, 16 writers
// for 5 s).
func BenchmarkOverloadMemory(b *testing.B) {
	for range b.N {
		heap, live, buffered, _ := overload(b, 64<<20, 5*time.Second)
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(live)/(1<<20), "peak-live-heap-MiB")
		b.ReportMetric(float64(buffered)/(1<<20), "peak-buffered-MiB")
	}
}
