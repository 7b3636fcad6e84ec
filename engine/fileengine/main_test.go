package fileengine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/testutil/dirtest"
)

// TestMain checks that Close stops every goroutine the engine starts.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClock is a settable clock of arrival times.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *testClock) Millis() int64 { return c.Now().UnixMilli() }

// openEngine opens an engine on cfg (in a fresh directory if cfg.Dir is
// empty) and closes it when the test ends.
func openEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	e, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// closeEngine closes e and reports a failure as a test error (it is often
// deferred).
func closeEngine(t testing.TB, e *Engine) {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// reopen closes e and opens a new engine with the same configuration.
func reopen(t testing.TB, e *Engine) *Engine {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openEngine(t, e.cfg)
}

func lid(stream string, shard uint32) engine.LogID { return engine.LogID{Stream: stream, Shard: shard} }

// makeRecs returns n records whose keys and data derive from tag.
func makeRecs(tag string, n int) []engine.Record {
	out := make([]engine.Record, n)
	for i := range out {
		out[i] = engine.Record{PartitionKey: fmt.Sprintf("%s-k%d", tag, i), Data: []byte(fmt.Sprintf("%s-data-%d-%s", tag, i, bytes.Repeat([]byte{'x'}, i%7)))}
	}
	return out
}

// appended is a record as appended, with its position and arrival.
type appended struct {
	pos engine.Position
	ms  int64
	rec engine.Record
}

func appendT(t testing.TB, l engine.Log, recs []engine.Record) []appended {
	t.Helper()
	first, ms, err := l.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	out := make([]appended, len(recs))
	for i, r := range recs {
		out[i] = appended{engine.Position{Offset: first.Offset, Index: first.Index + uint16(i)}, ms, r}
	}
	return out
}

// readAll reads the whole log in reads of at most n records.
func readAll(t testing.TB, l engine.Log, n int) []engine.Entry {
	t.Helper()
	ctx := context.Background()
	in, err := l.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	var all []engine.Entry
	from := in.Oldest
	for {
		es, next, err := l.Read(ctx, from, n, 0)
		if err != nil {
			t.Fatalf("Read(%v): %v", from, err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
		from = next
	}
}

func checkEntries(t testing.TB, got []engine.Entry, want []appended) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Pos != w.pos || g.ArrivalMillis != w.ms || g.PartitionKey != w.rec.PartitionKey || !bytes.Equal(g.Data, w.rec.Data) {
			t.Fatalf("entry %d = {%v %d %q %q}, want {%v %d %q %q}", i, g.Pos, g.ArrivalMillis, g.PartitionKey, g.Data, w.pos, w.ms, w.rec.PartitionKey, w.rec.Data)
		}
	}
}

// copyDir copies the tree src to dst, failing the test on an error.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := dirtest.Copy(src, dst); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// countFDs returns the number of open file descriptors of the process, or
// -1 where /proc/self/fd is missing.
func countFDs() int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(des)
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
