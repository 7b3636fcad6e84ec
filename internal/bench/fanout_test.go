package bench

import (
	"context"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"
)

func benchRecord(put time.Time, idx int) []byte {
	b := make([]byte, fanoutHeader+4)
	binary.BigEndian.PutUint64(b, uint64(put.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(idx))
	return b
}

func TestReceiptsCounts(t *testing.T) {
	r := newReceipts(2, 4)
	put := time.Unix(100, 0)
	for _, idx := range []int{0, 1, 1, 2, 3} {
		r.got(0, benchRecord(put, idx), put.Add(5*time.Millisecond))
	}
	r.got(1, benchRecord(put, 0), put.Add(7*time.Millisecond))
	r.got(1, benchRecord(put, 9), put) // out of range: ignored
	r.got(1, []byte("short"), put)     // not a bench record: ignored
	if d, dup := r.counts(0, 4); d != 4 || dup != 1 {
		t.Errorf("consumer 0: delivered %d dup %d, want 4 and 1", d, dup)
	}
	if d, dup := r.counts(1, 4); d != 1 || dup != 0 {
		t.Errorf("consumer 1: delivered %d dup %d, want 1 and 0", d, dup)
	}
	if r.complete(4) {
		t.Error("complete with consumer 1 missing 3 records")
	}
	if !r.complete(1) {
		t.Error("not complete for the first record, which both got")
	}
	lat := r.latencies()
	if len(lat) != 5 { // first deliveries only: 4 + 1
		t.Fatalf("%d latencies, want 5", len(lat))
	}
	if lat[0] != 5*time.Millisecond || lat[4] != 7*time.Millisecond {
		t.Errorf("latencies %v", lat)
	}
}

func TestFanoutFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-consumers", "0"}, {"-consumers", "21"}, {"-rate", "0"}, {"-size", "8"}, {"-mode", "poll"}, {"-duration", "0"},
	} {
		err := runFanout(context.Background(), args, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "bench: -") {
			t.Errorf("%v: %v, want a flag error", args, err)
		}
	}
}
