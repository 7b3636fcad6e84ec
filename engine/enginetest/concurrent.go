package enginetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoalstream/shoal/engine"
)

var concurrentTests = []test{
	{name: "Appenders", fn: testConcurrentAppenders},
	{name: "TailingReader", fn: testTailingReader},
}

// Concurrent appenders on one log: every record is stored once, at the
// position its Append returned, in an order consistent with each
// appender's own.
func testConcurrentAppenders(t *testing.T, x *env) {
	l := x.newLog()
	l2 := x.open(logID(0))
	const writers, batches = 8, 200
	results := make([][]stored, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := l
			if g%2 == 1 {
				h = l2 // half of them through another handle
			}
			for i := range batches {
				rs := recs(fmt.Sprintf("w%d-b%d", g, i), 1+(g+i)%3, (g*7+i)%50)
				first, ms, err := h.Append(x.ctx, rs)
				if err != nil {
					errs <- err
					return
				}
				for j, r := range rs {
					results[g] = append(results[g], stored{pos: at(first, j), ms: ms, rec: r})
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	var all []stored
	for g, rs := range results {
		for i := 1; i < len(rs); i++ {
			if !rs[i-1].pos.Less(rs[i].pos) {
				t.Fatalf("writer %d: record at %v after one at %v", g, rs[i].pos, rs[i-1].pos)
			}
		}
		all = append(all, rs...)
	}
	sortStored(all)
	for i := 1; i < len(all); i++ {
		if all[i].pos == all[i-1].pos {
			t.Fatalf("two records at %v", all[i].pos)
		}
	}
	checkEntries(t, x.readAll(l, engine.Position{}, 97, 4000), all)
}

// A reader that takes Changed before each read and waits on it when it
// has read everything sees every record appended concurrently, once and in
// order.
func testTailingReader(t *testing.T, x *env) {
	l := x.newLog()
	reader := x.open(logID(0))
	const batches = 300
	total := 0
	for i := range batches {
		total += 1 + i%2
	}
	done := make(chan error, 1)
	var got []engine.Entry
	go func() {
		done <- func() error {
			var from engine.Position
			timer := time.NewTimer(tailTimeout)
			defer timer.Stop()
			for {
				ch := reader.Changed()
				es, next, err := reader.Read(x.ctx, from, 10, bigRead)
				if err != nil {
					return err
				}
				if len(es) > 0 {
					got = append(got, es...)
					from = next
					if len(got) >= total {
						return nil
					}
					continue
				}
				select {
				case <-ch:
				case <-timer.C:
					return errors.New("no wakeup from Changed: the reader waited for records appended earlier")
				}
			}
		}()
	}()
	var want []stored
	for i := range batches {
		want = append(want, x.app(l, recs(fmt.Sprint("b", i), 1+i%2, 8))...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, want)
}
