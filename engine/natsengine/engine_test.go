package natsengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// waitClosed fails the test unless ch is closed within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: Changed channel still open after %v", what, d)
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

// readAll reads l from the start in reads of at most n records.
func readAll(t *testing.T, l engine.Log, n int) []engine.Entry {
	t.Helper()
	var all []engine.Entry
	var from engine.Position
	for {
		es, next, err := l.Read(t.Context(), from, n, 0)
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

func rec(key string, n int) []engine.Record {
	return []engine.Record{{PartitionKey: key, Data: bytes.Repeat([]byte{'x'}, n)}}
}

var lid = engine.LogID{Stream: "0123abcd", Shard: 7}

// newLog opens an engine with cfg (see openTest) and creates log lid in it.
func newLog(t *testing.T, cfg Config) (*Engine, engine.Log) {
	t.Helper()
	e := openTest(t, cfg)
	l, err := e.CreateLog(t.Context(), lid)
	if err != nil {
		t.Fatal(err)
	}
	return e, l
}

// twoEngines opens two engines with cfg on one prefix (cfg's, or a new one),
// creates log lid through the first and opens it through the second.
func twoEngines(t *testing.T, cfg Config) (e1, e2 *Engine, l1, l2 engine.Log) {
	t.Helper()
	e1, l1 = newLog(t, cfg)
	cfg.Prefix = e1.cfg.Prefix
	e2 = openTest(t, cfg)
	l2, err := e2.OpenLog(t.Context(), lid)
	if err != nil {
		t.Fatal(err)
	}
	return e1, e2, l1, l2
}

// mustAppend appends recs to l and returns their position; an error fails
// the test.
func mustAppend(t *testing.T, l engine.Log, recs []engine.Record) engine.Position {
	t.Helper()
	p, _, err := l.Append(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// streamLeader returns the node of the shared cluster that leads the
// JetStream stream of log id.
func streamLeader(t *testing.T, e *Engine, id engine.LogID) int {
	t.Helper()
	s, err := adminJS.Stream(t.Context(), e.streamName(id))
	if err != nil {
		t.Fatal(err)
	}
	leader := testCluster().NodeByName(s.CachedInfo().Cluster.Leader)
	if leader < 0 {
		t.Fatalf("stream leader %q is not a node of the cluster: %+v", s.CachedInfo().Cluster.Leader, s.CachedInfo().Cluster)
	}
	return leader
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"2.12.3", "2.12.3", true},
		{"2.12.4", "2.12.3", true},
		{"2.13.0", "2.12.3", true},
		{"3.0.0", "2.12.3", true},
		{"v2.15.3", "2.12.3", true},
		{"2.15.3+build.7", "2.12.3", true},
		{"2.12.2", "2.12.3", false},
		{"2.11.9", "2.12.3", false},
		{"1.99.99", "2.12.3", false},
		{"2.9.10", "2.12.3", false},
		{"2.12.3-RC.1", "2.12.3", false},
		{"2.12.4-beta", "2.12.3", true},
		{"2.12.3-RC.2", "2.12.3-RC.1", true},
		{"", "2.12.3", false},
		{"2.12", "2.12.3", false},
		{"two.12.3", "2.12.3", false},
	} {
		if got := versionAtLeast(c.have, c.want); got != c.ok {
			t.Errorf("versionAtLeast(%q, %q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}

// Open refuses a server older than the minimum, with a clear error, and
// leaves no connection behind.
func TestOpenRefusesOldServer(t *testing.T) {
	c := testCluster()
	old := minServerVersion
	minServerVersion = "99.0.0"
	defer func() { minServerVersion = old }()
	e, err := Open(t.Context(), Config{URL: c.URLs(), Prefix: newPrefix(t)})
	if err == nil {
		_ = e.Close()
		t.Fatal("Open accepted a server older than the minimum")
	}
	if !strings.Contains(err.Error(), "older than 99.0.0") {
		t.Fatalf("Open: %v; want an error naming the minimum version", err)
	}
}

// Open fails at once, without retrying, when NATS is unreachable.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	start := time.Now()
	if _, err := Open(t.Context(), Config{URL: "nats://" + addr}); err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open of an unreachable server took %v", d)
	}
}

// Config validation.
func TestOpenInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{{Prefix: "a.b"}, {Prefix: "a-b"}, {Replicas: 7}} {
		if _, err := Open(t.Context(), cfg); err == nil {
			t.Fatalf("Open(%+v) succeeded", cfg)
		}
	}
	if err := checkLogID(engine.LogID{Stream: "a.b"}); err == nil {
		t.Fatal("checkLogID accepted a stream id with a dot")
	}
}

// Names and subjects round-trip through parseStreamName; streams of
// other prefixes are not taken for logs.
func TestStreamNames(t *testing.T) {
	e := &Engine{cfg: Config{Prefix: "AB_1"}, subjPre: "ab_1"}
	for _, id := range []engine.LogID{{Stream: "f00d", Shard: 0}, {Stream: "x_y-z", Shard: 4294967295}} {
		got, ok := e.parseStreamName(e.streamName(id))
		if !ok || got != id {
			t.Fatalf("parseStreamName(%q) = %v, %v; want %v", e.streamName(id), got, ok, id)
		}
	}
	for _, n := range []string{"AB_1_x", "AB_1__3", "AB_1_x_03", "AB_1_x_-1", "AB_x_1", "KV_AB_1_META", "AB_1_a.b_1"} {
		if id, ok := e.parseStreamName(n); ok {
			t.Fatalf("parseStreamName(%q) = %v, want not a log", n, id)
		}
	}
	if got := e.dataSubject(engine.LogID{Stream: "f00d", Shard: 2}); got != "ab_1.d.f00d.2" {
		t.Fatalf("dataSubject = %q", got)
	}
}

// CreateLog records the Kinesis labels and the log id in the stream's
// metadata, and makes an R3 stream with the mapping's settings.
func TestCreateLogMetadata(t *testing.T) {
	e := openTest(t, Config{})
	ctx := engine.WithLabels(t.Context(), engine.Labels{StreamName: "orders", ShardID: "shardId-000000000007"})
	if _, err := e.CreateLog(ctx, lid); err != nil {
		t.Fatal(err)
	}
	s, err := adminJS.Stream(t.Context(), e.streamName(lid))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	md := cfg.Metadata
	if md[metaKinesisStream] != "orders" || md[metaKinesisShard] != "shardId-000000000007" || md[metaLog] != lid.String() {
		t.Fatalf("stream metadata = %v", md)
	}
	if cfg.Replicas != 3 || !cfg.AllowDirect || !cfg.DenyDelete || cfg.Discard != jetstream.DiscardOld || cfg.MaxAge != 0 ||
		cfg.Duplicates != 2*time.Minute || cfg.Storage != jetstream.FileStorage || cfg.Subjects[0] != e.dataSubject(lid) {
		t.Fatalf("stream config = %+v", cfg)
	}
	if _, err := e.CreateLog(t.Context(), lid); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("second CreateLog: %v, want ErrExists", err)
	}
}

// A 5 MiB batch, a PutRecords maximum, fits in one message; one larger than
// the servers' max_payload (8MB here) fails with ErrInvalidBatch before
// anything is sent.
func TestMaxPayload(t *testing.T) {
	e, l := newLog(t, Config{})
	big := make([]engine.Record, 5)
	for i := range big {
		big[i] = engine.Record{PartitionKey: fmt.Sprint("k", i), Data: bytes.Repeat([]byte{byte(i)}, 1<<20)}
	}
	if _, _, err := l.Append(t.Context(), big); err != nil {
		t.Fatalf("Append of 5 MiB: %v", err)
	}
	_, _, err := l.Append(t.Context(), rec("huge", int(e.Conn().MaxPayload())))
	if !errors.Is(err, engine.ErrInvalidBatch) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("Append over max_payload: %v, want ErrInvalidBatch naming max_payload", err)
	}
	es := readAll(t, l, 10)
	if len(es) != 5 || !bytes.Equal(es[4].Data, big[4].Data) {
		t.Fatalf("read %d entries after the appends", len(es))
	}
}

// A message that fails its checksum is reported as ErrCorrupt.
func TestReadCorrupt(t *testing.T) {
	e, l := newLog(t, Config{})
	mustAppend(t, l, rec("good", 10))
	bad := storage.EncodeBatch(rec("bad", 10), 1)
	bad[len(bad)-1] ^= 0xff
	if _, err := adminJS.Publish(t.Context(), e.dataSubject(lid), bad); err != nil {
		t.Fatal(err)
	}
	_, _, err := l.Read(t.Context(), engine.Position{}, 10, 0)
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("Read over a corrupt batch: %v, want ErrCorrupt", err)
	}
	if es, _, err := l.Read(t.Context(), engine.Position{}, 1, 0); err != nil || len(es) != 1 {
		t.Fatalf("Read of the good batch before it = %v, %v", es, err)
	}
}

// Two engines on one prefix share logs and catalog: an append through one
// wakes the other's Changed by its notice (the poll is off), and the
// other reads it at once.
func TestNoticeWakesOtherEngine(t *testing.T) {
	_, _, l1, l2 := twoEngines(t, Config{PollInterval: time.Hour})
	for i := range 20 {
		ch := l1.Changed()
		if isClosed(ch) {
			t.Fatalf("round %d: Changed closed before the other engine's append", i)
		}
		p, _, err := l2.Append(t.Context(), rec(fmt.Sprint("k", i), 8))
		if err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ch, 10*time.Second, "append through another engine")
		es, _, err := l1.Read(t.Context(), p, 10, 0)
		if err != nil || len(es) != 1 || es[0].PartitionKey != fmt.Sprint("k", i) {
			t.Fatalf("round %d: read after the wakeup = %v, %v", i, es, err)
		}
	}
}

// Without notices (a batch published by something else), the poll wakes
// waiters.
func TestPollWakes(t *testing.T) {
	e, l := newLog(t, Config{PollInterval: 20 * time.Millisecond})
	ch := l.Changed()
	if _, err := adminJS.Publish(t.Context(), e.dataSubject(lid), storage.EncodeBatch(rec("raw", 4), 5)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, 10*time.Second, "publish without a notice")
	es, _, err := l.Read(t.Context(), engine.Position{}, 10, 0)
	if err != nil || len(es) != 1 || es[0].PartitionKey != "raw" || es[0].ArrivalMillis != 5 {
		t.Fatalf("read = %v, %v", es, err)
	}
}

// A seal through one engine fails appends through another with ErrSealed
// and wakes its waiters; a deletion through one closes the other's handles.
func TestSealAndDeleteAcrossEngines(t *testing.T) {
	e1, e2, l1, l2 := twoEngines(t, Config{})
	mustAppend(t, l2, rec("a", 1))
	ch := l2.Changed()
	end, err := l1.Seal(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if end != (engine.Position{Offset: 2}) {
		t.Fatalf("Seal = %v, want 2:0", end)
	}
	_, _, err = l2.Append(t.Context(), rec("b", 1))
	if !errors.Is(err, engine.ErrSealed) {
		t.Fatalf("Append through the other engine after Seal: %v, want ErrSealed", err)
	}
	waitClosed(t, ch, 10*time.Second, "seal through another engine")
	if err := l2.Unseal(t.Context()); !errors.Is(err, engine.ErrIrreversible) {
		t.Fatalf("Unseal: %v, want ErrIrreversible", err)
	}
	if end2, err := l2.Seal(t.Context()); err != nil || end2 != end {
		t.Fatalf("Seal through the other engine = %v, %v; want %v", end2, err, end)
	}
	// Deleting the sealed log through one engine closes the other's.
	ch = l1.Changed()
	if err := e2.DeleteLog(t.Context(), lid); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, 10*time.Second, "deletion through another engine")
	if _, err := l1.Info(t.Context()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Info after the other engine deleted the log: %v, want ErrClosed", err)
	}
	if ids, err := e1.Logs(t.Context()); err != nil || len(ids) != 0 {
		t.Fatalf("Logs after deleting the only log = %v, %v", ids, err)
	}
}

// The catalog watch of one engine sees the changes of another; "" never
// stands for a real name; the channel closes when ctx ends and when the
// engine closes.
func TestCatalogWatch(t *testing.T) {
	e1 := openTest(t, Config{})
	e2 := openTest(t, Config{Prefix: e1.cfg.Prefix})
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := e1.WatchCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		for {
			select {
			case name, ok := <-ch:
				if !ok {
					t.Fatal("watch channel closed")
				}
				if name != "" {
					return name
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no change seen by the watch within 10s")
			}
		}
	}
	c2 := e2.Catalog()
	v, err := c2.PutStream(t.Context(), engine.StreamMeta{Name: "a.b/c", ID: "1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "a.b/c" {
		t.Fatalf("watch saw %q, want a.b/c", got)
	}
	if err := c2.DeleteStream(t.Context(), "a.b/c", v); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "a.b/c" {
		t.Fatalf("watch saw %q after the delete, want a.b/c", got)
	}
	if _, err := e1.Catalog().PutAccount(t.Context(), engine.AccountMeta{Secret: "00"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.PutStream(t.Context(), engine.StreamMeta{Name: "other", ID: "2"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "other" {
		t.Fatalf("watch saw %q, want other (the account is not a stream)", got)
	}
	cancel()
	for range ch { // drains until closed
	}
	ch2, err := e1.WatchCatalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch2 {
	}
	if _, err := e1.WatchCatalog(t.Context()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("WatchCatalog after Close: %v, want ErrClosed", err)
	}
}

// A receiver that does not keep up gets "" (compare everything) instead of
// holding the engine up.
func TestCatalogWatchSlowReceiver(t *testing.T) {
	e := openTest(t, Config{})
	ch, err := e.WatchCatalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const n = 100 // more than the channel holds
	for i := range n {
		if _, err := e.Catalog().PutStream(t.Context(), engine.StreamMeta{Name: fmt.Sprint("s", i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Once the receiver reads, it gets names and then "".
	sawEmpty := false
	for !sawEmpty {
		select {
		case name := <-ch:
			sawEmpty = name == ""
		case <-time.After(10 * time.Second):
			t.Fatal("no resync marker after the receiver fell behind")
		}
	}
}

// An ambiguous catalog write: a PutStream whose reply is lost is sent again
// with the same Nats-Msg-Id and answered as a duplicate, so it succeeds
// once, with its revision.
func TestCatalogWriteDeduplicated(t *testing.T) {
	e := openTest(t, Config{})
	c := e.cat
	data := []byte(`{"name":"s","id":"x","created":0,"status":"","mode":"","retentionHours":0,"maxRecordKiB":0,"distribution":"","shards":null}`)
	msg := &nats.Msg{Subject: c.pre + streamKey("s"), Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.MsgIDHeader, "fixed-id")
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	a1, _, err := e.publish(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := e.publish(t.Context(), msg) // the resend of a lost reply
	if err != nil || !a2.Duplicate || a2.Seq != a1.Seq {
		t.Fatalf("resend = %+v, %v; want a duplicate of %d", a2, err, a1.Seq)
	}
	m, v, err := c.Stream(t.Context(), "s")
	if err != nil || v != a1.Seq || m.ID != "x" {
		t.Fatalf("Stream = %+v, %d, %v", m, v, err)
	}
}

// Rounds of appends racing Seal on fresh logs (the conformance suite runs
// one round, its log staying sealed): successful appends lie before the end
// Seal returns, the others fail with ErrSealed.
func TestSealRacingAppends(t *testing.T) {
	e := openTest(t, Config{})
	for round := range 5 {
		id := engine.LogID{Stream: "race", Shard: uint32(round)}
		l, err := e.CreateLog(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ok      []engine.Position
			started = make(chan struct{}, 64)
		)
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					p, _, err := l.Append(t.Context(), rec(fmt.Sprintf("g%d-%d", g, i), 16))
					select {
					case started <- struct{}{}:
					default:
					}
					if errors.Is(err, engine.ErrSealed) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ok = append(ok, p)
					mu.Unlock()
				}
			}()
		}
		for range 16 {
			<-started
		}
		end, err := l.Seal(t.Context())
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Append: %v", round, err)
		}
		if err != nil {
			t.Fatalf("round %d: Seal: %v", round, err)
		}
		for _, p := range ok {
			if !p.Less(end) {
				t.Fatalf("round %d: an acknowledged append at %v is not before the sealed end %v", round, p, end)
			}
		}
		if es := readAll(t, l, 1000); len(es) != len(ok) {
			t.Fatalf("round %d: read %d records, %d appends succeeded", round, len(es), len(ok))
		}
		if in, err := l.Info(t.Context()); err != nil || in.End != end {
			t.Fatalf("round %d: Info after Seal = %+v, %v; want End %v", round, in, err, end)
		}
	}
}

// Killing the leader of a log's stream while appends run: every append
// that returned nil is read back at its position, exactly once, and no
// record is stored twice (the resends with the same Nats-Msg-Id are
// deduplicated).
func TestLeaderKill(t *testing.T) {
	c := testCluster()
	e, l := newLog(t, Config{})
	leader := streamLeader(t, e, lid)
	t.Cleanup(func() {
		if !c.Running(leader) {
			c.Start(leader)
		}
		c.WaitReady(time.Minute)
	})

	type result struct {
		key string
		pos engine.Position
		err error
	}
	results := make(chan result, 1<<16)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("g%d-%d", g, i)
				p, _, err := l.Append(ctx, rec(key, 32))
				results <- result{key, p, err}
			}
		}()
	}
	var all []result
	okCount := func(n int) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for got := 0; got < n; {
			select {
			case r := <-results:
				all = append(all, r)
				if r.err == nil {
					got++
				}
			case <-timeout:
				t.Fatalf("only %d of %d appends succeeded within 60s", got, n)
			}
		}
	}
	okCount(50)
	c.Kill(leader)
	killedAt := len(all)
	okCount(100) // these need the new leader
	stop()
	wg.Wait()
	close(results)
	for r := range results {
		all = append(all, r)
	}
	c.Start(leader)
	c.WaitReady(time.Minute)

	failed := 0
	for _, r := range all {
		if r.err != nil {
			failed++
		}
	}
	// Resends happen when a send finds no leader or times out; a quick
	// election with the connection's reconnect buffer may need none.
	t.Logf("%d appends, %d before the kill, %d failed; %d resends", len(all), killedAt, failed, e.resends.Load())

	got := map[string][]engine.Position{}
	for _, en := range readAll(t, l, 500) {
		got[en.PartitionKey] = append(got[en.PartitionKey], en.Pos)
	}
	for _, r := range all {
		ps := got[r.key]
		if len(ps) > 1 {
			t.Fatalf("record %s stored %d times, at %v", r.key, len(ps), ps)
		}
		if r.err == nil && (len(ps) != 1 || ps[0] != r.pos) {
			t.Fatalf("acknowledged record %s at %v: read at %v", r.key, r.pos, ps)
		}
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Logf("failed append %s (stored %d times): %v", r.key, len(ps), r.err)
		}
	}
}

// Close stops the engine's goroutines and fails handles and the catalog
// with ErrClosed; an in-flight wait on Changed wakes.
func TestCloseWakes(t *testing.T) {
	e, l := newLog(t, Config{})
	ch := l.Changed()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	waitClosed(t, ch, 10*time.Second, "engine close")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30s")
	}
	if _, _, err := l.Append(t.Context(), rec("x", 1)); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

// A process reads its own writes although the replica nearest to it (a
// follower, which serves Direct Gets once it has caught up) lags the
// leader: what the follower lacks comes from the leader.
func TestReadOwnWritesOnLaggingFollower(t *testing.T) {
	c := testCluster()
	e1, _ := newLog(t, Config{})
	leader := streamLeader(t, e1, lid)
	follower := c.Nodes[(leader+1)%len(c.Nodes)]
	e2 := openTest(t, Config{Prefix: e1.cfg.Prefix, URL: follower.URL()})
	l2, err := e2.OpenLog(t.Context(), lid)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the follower answers Direct Gets and is seen to lag: a
	// Direct Get of a just-acknowledged message finds nothing.
	wait.Eventually(t, 60*time.Second, func() error {
		p, _, err := l2.Append(t.Context(), rec("probe", 1))
		if err != nil {
			return err
		}
		msgs, _, err := e2.directBatch(t.Context(), e2.streamName(lid), e2.dataSubject(lid), p.Offset, 1, 1<<20)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			return errors.New("the Direct Get found the message just written")
		}
		return nil
	})
	before := e2.fallbacks.Load()
	for i := range 200 {
		key := fmt.Sprint("k", i)
		p, _, err := l2.Append(t.Context(), rec(key, 8))
		if err != nil {
			t.Fatal(err)
		}
		es, _, err := l2.Read(t.Context(), p, 10, 0)
		if err != nil || len(es) != 1 || es[0].PartitionKey != key || es[0].Pos != p {
			t.Fatalf("read of own write %d at %v = %v, %v", i, p, es, err)
		}
	}
	if e2.fallbacks.Load() == before {
		t.Fatal("no read needed the leader: the test did not exercise a lagging follower")
	}
	t.Logf("%d of 200 reads went to the leader for a message the follower lacked", e2.fallbacks.Load()-before)
}

// Appends whose ack comes later than the publish timeout are sent again
// with the same Nats-Msg-Id: each is stored once, at the position Append
// returned.
func TestAppendResendsDeduplicated(t *testing.T) {
	e, l := newLog(t, Config{})
	// Set after Open, whose API calls need the normal timeout. Nothing
	// else reads it: no Changed channel is taken, so the poller is idle.
	e.cfg.RequestTimeout = time.Millisecond
	acked := map[string]engine.Position{}
	for i := range 50 {
		key := fmt.Sprint("k", i)
		p, _, err := l.Append(t.Context(), rec(key, 8))
		if err != nil {
			continue // the budget (4 ms) may run out: the outcome is unknown
		}
		acked[key] = p
	}
	if e.resends.Load() == 0 {
		t.Fatal("no append was sent twice")
	}
	e.cfg.RequestTimeout = DefaultRequestTimeout
	seen := map[string]int{}
	for _, en := range readAll(t, l, 100) {
		seen[en.PartitionKey]++
		if p, ok := acked[en.PartitionKey]; ok && p != en.Pos {
			t.Fatalf("%s acknowledged at %v, read at %v", en.PartitionKey, p, en.Pos)
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s stored %d times", k, n)
		}
	}
	for k := range acked {
		if seen[k] != 1 {
			t.Fatalf("acknowledged %s not read back", k)
		}
	}
	t.Logf("%d of 50 acknowledged, %d resends", len(acked), e.resends.Load())
}

// Catalog writes whose ack comes later than the publish timeout are sent
// again with the same Nats-Msg-Id: a chain of compare-and-set updates
// succeeds, each returning the revision it stored.
func TestCatalogWriteResends(t *testing.T) {
	e := openTest(t, Config{})
	c := e.Catalog()
	e.cfg.RequestTimeout = time.Millisecond // see TestAppendResendsDeduplicated
	m := engine.StreamMeta{Name: "s", ID: "1"}
	var v uint64
	var err error
	for i := range 20 {
		m.NextIndex = uint32(i)
		if v, err = c.PutStream(t.Context(), m, v); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	resends := e.resends.Load()
	e.cfg.RequestTimeout = DefaultRequestTimeout
	if resends == 0 {
		t.Fatal("no write was sent twice")
	}
	got, gv, err := c.Stream(t.Context(), "s")
	if err != nil || gv != v || got.NextIndex != 19 {
		t.Fatalf("Stream = %+v, %d, %v; want NextIndex 19 at version %d", got, gv, err, v)
	}
}

// A log whose JetStream stream JetStream reports missing, with no deletion
// notice (as a cluster restarting answers for streams it has not recovered
// yet), is not declared deleted at once: its handle fails with an ordinary
// error, not ErrClosed, until the answer has held for missingGrace.
func TestMissingStreamNotDeletedAtOnce(t *testing.T) {
	e, l := newLog(t, Config{})
	mustAppend(t, l, rec("a", 1))
	// Remove the stream behind the engine's back: no notice.
	if err := e.js.DeleteStream(t.Context(), e.streamName(lid)); err != nil {
		t.Fatal(err)
	}
	_, err := l.Info(t.Context())
	if err == nil || errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Info right after the stream vanished: %v, want an error that is not ErrClosed", err)
	}
	// Once the answer has held for the grace period, the log is deleted.
	h := l.(*handle)
	h.ls.mu.Lock()
	h.ls.missingSince = time.Now().Add(-missingGrace)
	h.ls.mu.Unlock()
	if _, err := l.Info(t.Context()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Info after the grace period: %v, want ErrClosed", err)
	}
}
