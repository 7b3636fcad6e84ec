package producer

import (
	"context"
	"errors"
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

// overloadWriters is the number of goroutines overload puts from.
const overloadWriters = 16

// overload puts 1 KB records from overloadWriters goroutines to a
// producer whose server is down (its port refuses connections), with
// MaxBufferedBytes = limit, and returns the peak heap growth, the peak
// BufferedBytes seen while the writers ran, and BufferedBytes once they
// stopped. The run ends on events, not after a time: each goroutine stops
// once its Put has found the buffer full (and given up after 50ms of
// waiting for room) fullRounds times. Nothing drains the buffer (RecordTTL
// is longer than any run), so every goroutine gets there.
func overload(tb testing.TB, limit int64, fullRounds int) (peakHeap, peakLive uint64, peakBuffered, settled, puts int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	c := servertest.Client("http://" + addr)
	p, err := newProducer(c, Config{
		StreamName: "down", MaxBufferedBytes: limit, MaxBufferedRecords: 1 << 30, RecordTTL: time.Hour,
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
	sample := func() {
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
	}

	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range overloadWriters {
		wg.Go(func() {
			full := 0
			for i := 0; full < fullRounds; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				data := make([]byte, 1000) // a fresh buffer per record, as an application would
				_, err := p.Put(ctx, fmt.Sprintf("k%d-%d", w, i%100), data)
				cancel()
				switch {
				case err == nil:
					n.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					full++ // Put waits for room only when the buffer is full
				default:
					tb.Errorf("put: %v", err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Millisecond) // how often to sample, not a wait
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
		}
		sample()
	}
	settled = p.BufferedBytes()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = p.Close(ctx) // abandons everything: the server never came back
	return peakHeap, peakLive, peakBuffered, settled, n.Load()
}

// TestMemoryBoundUnderOverload checks that a producer whose server is down
// holds at most MaxBufferedBytes of records, and that its heap stays within
// a small multiple of that: the data is held once by the caller's slices
// and once in the aggregates, Pendings and request encoding come on top,
// and the garbage collector lets the heap grow past the live data.
func TestMemoryBoundUnderOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a second")
	}
	const limit = 16 << 20
	const size = 1000 // overload's record data
	heap, live, buffered, settled, puts := overload(t, limit, 20)
	t.Logf("MaxBufferedBytes %d MiB: peak BufferedBytes %.1f MiB (%d at the end), peak heap growth %.1f MiB (live after GC %.1f MiB), %d records accepted",
		limit>>20, float64(buffered)/(1<<20), settled, float64(heap)/(1<<20), float64(live)/(1<<20), puts)
	if settled > limit {
		t.Errorf("BufferedBytes is %d, above MaxBufferedBytes %d", settled, limit)
	}
	// While Puts race for the last room, each may count its record for a
	// moment before it finds it does not fit and takes it back.
	if buffered > limit+overloadWriters*size {
		t.Errorf("BufferedBytes reached %d, above MaxBufferedBytes %d plus one record per writer", buffered, limit)
	}
	// The live heap (as of the last collection) must stay near twice the
	// limit: data in the callers' slices and again in the aggregates.
	if live > 3*limit+8<<20 {
		t.Errorf("live heap grew by %d MiB with MaxBufferedBytes %d MiB", live>>20, limit>>20)
	}
	// Every writer found the buffer full, and nothing drains it: it holds
	// more than the limit less one record (of 1000 bytes and a short key).
	if settled <= limit-2*size {
		t.Errorf("%d records accepted, BufferedBytes %d at the end: the buffer never filled", puts, settled)
	}
}

// BenchmarkOverloadMemory reports the peak heap growth of a producer whose
// server is down, for MaxBufferedBytes of 64 MiB (1 KB records, 16 writers,
// each until its Put has found the buffer full 100 times: 5s of waiting).
func BenchmarkOverloadMemory(b *testing.B) {
	for range b.N {
		heap, live, buffered, _, _ := overload(b, 64<<20, 100)
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(live)/(1<<20), "peak-live-heap-MiB")
		b.ReportMetric(float64(buffered)/(1<<20), "peak-buffered-MiB")
	}
}
