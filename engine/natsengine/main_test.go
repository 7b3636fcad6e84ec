package natsengine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/internal/natstest"
)

// The package's tests share one 3-node cluster, started on first use and
// stopped after the last test; each test uses its own Prefix.
var (
	sharedTB      = &mainTB{}
	clusterOnce   sync.Once
	sharedCluster *natstest.Cluster
	adminConn     *nats.Conn
	adminJS       jetstream.JetStream
)

// TestMain runs the tests, stops the shared cluster and then fails the
// package if any goroutine outlives them (goleak.VerifyTestMain cannot
// stop the cluster before its check).
func TestMain(m *testing.M) {
	code := m.Run()
	sharedTB.runCleanups()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testCluster returns the shared cluster, starting it on first use.
func testCluster() *natstest.Cluster {
	clusterOnce.Do(func() {
		sharedCluster = natstest.StartCluster(sharedTB, 3, natstest.Options{})
		nc, err := nats.Connect(sharedCluster.URLs())
		if err != nil {
			panic(err)
		}
		adminConn = nc
		sharedTB.Cleanup(nc.Close)
		if adminJS, err = jetstream.New(nc); err != nil {
			panic(err)
		}
	})
	return sharedCluster
}

// mainTB is the testing.TB of the shared cluster, which outlives every
// test: TestMain runs its cleanups. It implements what natstest uses; a
// failure panics (it happens outside any one test).
type mainTB struct {
	testing.TB // nil: the methods natstest does not use
	mu         sync.Mutex
	cleanups   []func()
}

func (m *mainTB) Helper() {}

func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}

func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "natsengine-test")
	if err != nil {
		panic(err)
	}
	m.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (m *mainTB) Fatal(args ...any) { panic("natstest: " + fmt.Sprint(args...)) }
func (m *mainTB) Fatalf(format string, args ...any) {
	panic("natstest: " + fmt.Sprintf(format, args...))
}
func (m *mainTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (m *mainTB) runCleanups() {
	m.mu.Lock()
	cs := m.cleanups
	m.cleanups = nil
	m.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

var prefixSeq atomic.Int64

// newPrefix returns a prefix no other test uses, and removes its streams
// and bucket from the shared cluster when t ends.
func newPrefix(t testing.TB) string {
	testCluster()
	p := fmt.Sprintf("T%d", prefixSeq.Add(1))
	t.Cleanup(func() { removePrefix(p) })
	return p
}

// removePrefix deletes every stream of prefix p, so that the shared
// cluster does not keep the raft groups of finished tests.
func removePrefix(p string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names := adminJS.StreamNames(ctx)
	var del []string
	for n := range names.Name() {
		if strings.HasPrefix(n, p+"_") || n == "KV_"+p+"_META" {
			del = append(del, n)
		}
	}
	for _, n := range del {
		_ = adminJS.DeleteStream(ctx, n)
	}
}

// openTest opens an engine on the shared cluster (all its nodes unless
// cfg.URL names some; a new prefix unless cfg has one) and closes it when t
// ends.
func openTest(t testing.TB, cfg Config) *Engine {
	t.Helper()
	c := testCluster()
	if cfg.Prefix == "" {
		cfg.Prefix = newPrefix(t)
	}
	if cfg.URL == "" {
		cfg.URL = c.URLs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}
