package audit

import (
	"io"
	"testing"
)

// benchRecord is a typical management record; its members are all set, so
// neither Write nor the writer goroutine changes it and it can be reused.
func benchRecord() *Record {
	r := fullRecord()
	r.EventID = "00000000-0000-4000-8000-000000000000"
	return r
}

// BenchmarkWrite measures Write, the cost a request pays. "queued": the
// queue has room (the benchmark empties it, timer stopped, whenever it
// fills; no record is dropped); "full": the writer goroutine is stuck and
// every Write drops. BenchmarkEncode measures the writer goroutine's side.
func BenchmarkWrite(b *testing.B) {
	r := benchRecord()
	b.Run("queued", func(b *testing.B) {
		w := newWriter(&streamTarget{w: io.Discard}, "bench", Options{}.withDefaults()) // no goroutine
		b.ReportAllocs()
		for range b.N {
			if len(w.queue) == cap(w.queue) {
				b.StopTimer()
				for len(w.queue) > 0 {
					<-w.queue
				}
				b.StartTimer()
			}
			w.Write(r)
		}
		if d := w.Stats().Dropped; d != 0 {
			b.Fatalf("%d dropped", d)
		}
	})
	b.Run("full", func(b *testing.B) {
		w, g := stuckWriter(r)
		b.ReportAllocs()
		for b.Loop() {
			w.Write(r)
		}
		b.StopTimer()
		close(g.release)
		_ = w.Close()
	})
}

// BenchmarkWriteParallel is Write from GOMAXPROCS goroutines, with a
// goroutine that only empties the queue; when that consumer falls behind,
// Writes drop (reported as dropped/op).
func BenchmarkWriteParallel(b *testing.B) {
	r := benchRecord()
	w := drainedWriter()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(r)
		}
	})
	b.StopTimer()
	reportDropped(b, w)
}

// drainedWriter is a Writer whose goroutine only empties the queue.
func drainedWriter() *Writer {
	w := newWriter(&streamTarget{w: io.Discard}, "bench", Options{}.withDefaults())
	go func() {
		defer close(w.done)
		for r := range w.queue {
			w.written.Add(1)
			_ = r
		}
	}()
	return w
}

// stuckWriter is a Writer whose queue (of one) is full.
func stuckWriter(r *Record) (*Writer, *gateWriter) {
	g := newGate()
	w := New(g, Options{Buffer: 1})
	w.Write(r)
	<-g.entered
	w.Write(r)
	return w, g
}

func reportDropped(b *testing.B, w *Writer) {
	_ = w.Close()
	s := w.Stats()
	b.ReportMetric(float64(s.Dropped)/float64(s.Written+s.Dropped), "dropped/op")
}

// BenchmarkEncode measures the writer goroutine's cost per record: encoding
// one line onto a batch (the throughput limit of a Writer).
func BenchmarkEncode(b *testing.B) {
	w := newWriter(&streamTarget{w: io.Discard}, "bench", Options{}.withDefaults())
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		w.add(r)
		if len(w.batch) >= batchBytes {
			w.flush()
		}
	}
	b.SetBytes(int64(len(encodeLine(b, r))))
}
