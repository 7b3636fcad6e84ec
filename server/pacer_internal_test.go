package server

import (
	"github.com/shoalstream/shoal/internal/storage"
	"testing"
	"time"
)

func TestPacerDelay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := newPacer(1000, t0)
	if d := p.delay(t0, 600); d != 0 {
		t.Fatalf("within the burst: delay %v", d)
	}
	// 400 left; 900 more puts it 500 in debt: half a second at 1000 B/s.
	if d := p.delay(t0, 900); d != 500*time.Millisecond {
		t.Fatalf("delay %v, want 500ms", d)
	}
	// A second later the debt is paid and 500 bytes are back.
	if d := p.delay(t0.Add(time.Second), 500); d != 0 {
		t.Fatalf("after refill: delay %v", d)
	}
	// The bucket holds at most one second's worth.
	if d := p.delay(t0.Add(time.Hour), 1500); d != 500*time.Millisecond {
		t.Fatalf("after a long idle: delay %v, want 500ms", d)
	}
}

func TestContinuationRoundTrip(t *testing.T) {
	for _, pos := range []struct {
		off uint64
		idx uint16
	}{{0, 0}, {0, 3}, {22, 0}, {4096, 0}, {4096, 7}} {
		p := continuation(positionOf(pos.off, pos.idx))
		got := after(p)
		if p == beforeFirst {
			got = positionOf(0, 0) // startPosition's special case
		}
		if got != positionOf(pos.off, pos.idx) {
			t.Fatalf("after(continuation(%d:%d)) = %v", pos.off, pos.idx, got)
		}
	}
}

func positionOf(off uint64, idx uint16) storage.Position {
	return storage.Position{Offset: off, Index: idx}
}
