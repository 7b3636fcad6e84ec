package producer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalstream/shoal/server"
)

// checkDelivered asserts that every (writer, index) in 0..writers-1 x
// 0..perWriter-1 was read back exactly once with the right key and data.
func checkDelivered(t *testing.T, got readResult, writers, perWriter, size int, key func(w, i int) string) {
	t.Helper()
	seen := make([][]int8, writers)
	for w := range seen {
		seen[w] = make([]int8, perWriter)
	}
	bad := 0
	for _, r := range got.Records {
		w, i, ok := parsePayload(r.Data)
		if !ok || w >= writers || i >= perWriter {
			if bad < 5 {
				t.Errorf("unexpected record %q", r.Data[:min(len(r.Data), 40)])
			}
			bad++
			continue
		}
		if r.PartitionKey != key(w, i) || r.Data != string(payload(w, i, size)) {
			if bad < 5 {
				t.Errorf("record w%d i%d: key %q data mismatch", w, i, r.PartitionKey)
			}
			bad++
		}
		seen[w][i]++
	}
	missing, dup := 0, 0
	for w := range seen {
		for i, n := range seen[w] {
			switch {
			case n == 0:
				if missing < 5 {
					t.Errorf("record w%d i%d missing", w, i)
				}
				missing++
			case n > 1:
				if dup < 5 {
					t.Errorf("record w%d i%d read %d times", w, i, n)
				}
				dup++
			}
		}
	}
	if missing+dup+bad > 0 {
		t.Fatalf("%d missing, %d duplicated, %d bad of %d (dropped by the KCL filter: %d)", missing, dup, bad, writers*perWriter, got.Dropped)
	}
}

func TestSmoke(t *testing.T) {
	srv := startServer(t, server.Config{})
	c := srv.Client()
	createStream(t, c, "s", 4)
	p := newTestProducer(t, c, Config{StreamName: "s"})
	ctx := context.Background()
	const n = 2000
	pend := make([]*Pending, n)
	for i := range n {
		var err error
		pend[i], err = p.Put(ctx, fmt.Sprintf("k%d", i%37), payload(0, i, 50))
		if err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	for i, pd := range pend {
		res, ok := pd.Result()
		if !ok || res.Err != nil || res.SequenceNumber == "" {
			t.Fatalf("record %d: %+v %v", i, res, ok)
		}
	}
	got := readAll(t, c, "s")
	checkDelivered(t, got, 1, n, 50, func(w, i int) string { return fmt.Sprintf("k%d", i%37) })
}
