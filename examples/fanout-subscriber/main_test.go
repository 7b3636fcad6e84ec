package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

// recordLine is how the example prints a record an application received.
var recordLine = regexp.MustCompile(`^(\S+) +(shardId-\d+) #(\d+) (\S+) value=(\d+) behind=(\d+)ms latency=\S+( duplicate)?$`)

// received is one record line.
type received struct {
	app, shard, key string
	n, value        int
	dup             bool
}

func parseRecords(out string) []received {
	var recs []received
	for line := range strings.Lines(out) {
		m := recordLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[3])
		v, _ := strconv.Atoi(m[5])
		recs = append(recs, received{app: m[1], shard: m[2], n: n, key: m[4], value: v, dup: m[7] != ""})
	}
	return recs
}

// summaryLine is an application's line of the summary.
var summaryLine = regexp.MustCompile(`(?m)^  (\S+): +received (\d+) of (\d+), duplicates (\d+), other records (\d+),`)

// summaries returns app -> [received, produced, duplicates, other].
func summaries(t *testing.T, out string) map[string][4]int {
	t.Helper()
	got := map[string][4]int{}
	for _, m := range summaryLine.FindAllStringSubmatch(out, -1) {
		var v [4]int
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+2])
		}
		got[m[1]] = v
	}
	return got
}

func testConfig(t *testing.T) (config, *pgxpool.Pool, string) {
	t.Helper()
	pool, schema := pgtest.New(t)
	return config{
		DatabaseURL: pgtest.URL(),
		Schema:      schema,
		Table:       "fanout_metrics_leases",
		Stream:      "fanout-test",
		Shards:      2,
		Records:     60,
		Rate:        200,
		Keys:        3,
		MaxBuffered: 20 * time.Millisecond,
		AuditName:   "audit-t",
		MetricsApp:  "metrics-t",
		Timeout:     60 * time.Second,
	}, pool, schema
}

// TestBothApplicationsReceiveEveryRecord runs the program with a small -n
// and the metrics application held still until the audit application has
// received every record, then slowed down; it checks from the output that
// the audit application did finish first (a stuck application does not
// hold the other back), that each application received every record once,
// that the metrics application's aggregates are right, that the stream
// lists exactly the two consumers, and that the metrics application left
// its checkpoints in PostgreSQL.
func TestBothApplicationsReceiveEveryRecord(t *testing.T) {
	cfg, pool, schema := testConfig(t)
	cfg.Slow, cfg.SlowDelay = slowMetrics, 5*time.Millisecond
	auditDone := fmt.Sprintf("%s: received all %d records", cfg.AuditName, cfg.Records)
	out := newSignalWriter(func(out string) bool { return strings.Contains(out, auditDone) })
	cfg.holdMetrics = out.ready
	if err := run(context.Background(), cfg, out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()

	// The audit application received everything while the metrics
	// application was stuck: not one metrics record line before its end.
	done := strings.Index(text, auditDone)
	if first := strings.Index(text, "\n"+cfg.MetricsApp+" shardId-"); done < 0 || first < done {
		t.Errorf("metrics record line at %d, audit's end at %d: want the audit application done first", first, done)
	}

	// Every record, once, to each application, with its key and value.
	count := map[string]map[int]int{cfg.AuditName: {}, cfg.MetricsApp: {}}
	for _, r := range parseRecords(text) {
		c, ok := count[r.app]
		if !ok {
			t.Errorf("record line of an unknown application %q", r.app)
			continue
		}
		c[r.n]++
		if r.dup {
			t.Errorf("%s: record %d marked duplicate on a clean run", r.app, r.n)
		}
		if r.key != keyOf(r.n, cfg.Keys) || r.value != valueOf(r.n) {
			t.Errorf("%s: record %d arrived as key %s value %d, want %s %d", r.app, r.n, r.key, r.value, keyOf(r.n, cfg.Keys), valueOf(r.n))
		}
	}
	for app, c := range count {
		for n := range cfg.Records {
			if c[n] != 1 {
				t.Errorf("%s received record %d %d times, want once", app, n, c[n])
			}
		}
		if len(c) != cfg.Records {
			t.Errorf("%s received %d distinct records, want %d", app, len(c), cfg.Records)
		}
	}

	// The summary agrees.
	sums := summaries(t, text)
	for _, app := range []string{cfg.AuditName, cfg.MetricsApp} {
		want := [4]int{cfg.Records, cfg.Records, 0, 0}
		if got, ok := sums[app]; !ok || got != want {
			t.Errorf("summary of %s: received/produced/duplicates/other = %v, want %v", app, got, want)
		}
	}

	// The metrics application's aggregates, from the records put.
	type agg struct{ count, sum, lo, hi int }
	wantAgg := map[string]*agg{}
	for n := range cfg.Records {
		k, v := keyOf(n, cfg.Keys), valueOf(n)
		a := wantAgg[k]
		if a == nil {
			a = &agg{lo: v, hi: v}
			wantAgg[k] = a
		}
		a.count++
		a.sum += v
		a.lo, a.hi = min(a.lo, v), max(a.hi, v)
	}
	for k, a := range wantAgg {
		want := fmt.Sprintf("  %s key %s: count %d sum %d min %d max %d mean ", cfg.MetricsApp, k, a.count, a.sum, a.lo, a.hi)
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The stream's consumers are the two applications', and no other.
	want := fmt.Sprintf("consumers of stream %s: %s (ACTIVE), %s (ACTIVE)\n", cfg.Stream, cfg.AuditName, cfg.MetricsApp)
	if !strings.Contains(text, want) {
		t.Errorf("output lacks %q", want)
	}

	// The metrics application checkpointed each shard and released its
	// lease; the audit application has none.
	store, err := checkpoint.NewPGStore(context.Background(), pool, checkpoint.PGConfig{Schema: schema, Table: cfg.Table})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }() // always nil
	leases, err := store.ListLeases(context.Background(), cfg.MetricsApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != cfg.Shards {
		t.Fatalf("%d leases of %s, want %d: %+v", len(leases), cfg.MetricsApp, cfg.Shards, leases)
	}
	for _, l := range leases {
		if l.Checkpoint.IsSentinel() || l.Checkpoint.SequenceNumber == "" {
			t.Errorf("%s: checkpoint %v, want a record's", l.ShardID, l.Checkpoint)
		}
		if l.Owner != "" {
			t.Errorf("%s still owned by %q after the run", l.ShardID, l.Owner)
		}
	}
	if leases, err := store.ListLeases(context.Background(), cfg.AuditName); err != nil || len(leases) != 0 {
		t.Errorf("audit application has leases %v (err %v), want none", leases, err)
	}
}

// signalWriter collects the output and closes ready the first time the
// output so far satisfies until.
type signalWriter struct {
	until func(out string) bool
	ready chan struct{}

	mu    sync.Mutex // guards the fields below
	buf   bytes.Buffer
	fired bool
}

func newSignalWriter(until func(out string) bool) *signalWriter {
	return &signalWriter{until: until, ready: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.fired && w.until(w.buf.String()) {
		w.fired = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestInterrupt runs the program without -n (until interrupted), cancels
// it as Ctrl-C would once both applications received records, and checks
// that it stops cleanly with a summary that matches what it printed.
func TestInterrupt(t *testing.T) {
	cfg, _, _ := testConfig(t)
	cfg.Records = 0
	cfg.Rate = 100
	const enough = 10
	w := newSignalWriter(func(out string) bool {
		c := map[string]int{}
		for _, r := range parseRecords(out) {
			c[r.app]++
		}
		return c[cfg.AuditName] >= enough && c[cfg.MetricsApp] >= enough
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- run(ctx, cfg, w) }()
	select {
	case <-w.ready:
	case err := <-ran:
		t.Fatalf("run returned before the interrupt: %v\noutput:\n%s", err, w.String())
	case <-time.After(45 * time.Second):
		cancel()
		<-ran //nolint:errcheck // waits for run to end; the time-out is the failure to report (`_ =` trips staticcheck S1005)
		t.Fatalf("applications did not receive records\noutput:\n%s", w.String())
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run after interrupt: %v\noutput:\n%s", err, w.String())
	}
	text := w.String()
	lines := map[string]map[int]int{cfg.AuditName: {}, cfg.MetricsApp: {}}
	for _, r := range parseRecords(text) {
		lines[r.app][r.n]++
	}
	sums := summaries(t, text)
	for app, seen := range lines {
		got, ok := sums[app]
		if !ok {
			t.Fatalf("no summary line for %s:\n%s", app, text)
		}
		if got[0] != len(seen) || got[0] < enough {
			t.Errorf("%s: summary says %d received, it printed %d distinct records (want >= %d)", app, got[0], len(seen), enough)
		}
		if got[0] > got[1] {
			t.Errorf("%s: received %d of %d produced", app, got[0], got[1])
		}
		for n, c := range seen {
			if c != 1 {
				t.Errorf("%s: record %d printed %d times", app, n, c)
			}
		}
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://example@127.0.0.1:5432/x")
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-n", "7", "-slow", "audit", "-slow-delay", "3ms", "-audit-consumer", "a", "-metrics-app", "m"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Records != 7 || cfg.Slow != slowAudit || cfg.SlowDelay != 3*time.Millisecond || cfg.AuditName != "a" || cfg.MetricsApp != "m" {
		t.Errorf("flags not applied: %+v", cfg)
	}
	if cfg.DatabaseURL != "postgres://example@127.0.0.1:5432/x" {
		t.Errorf("DatabaseURL %q, want DATABASE_URL's value", cfg.DatabaseURL)
	}
	for _, bad := range [][]string{
		{"-n", "-1"},
		{"-slow", "both"},
		{"-audit-consumer", "x", "-metrics-app", "x"},
		{"-keys", "0"},
	} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p := payload{Run: "0a1b2c3d", N: 42, Value: valueOf(42), Put: time.Unix(1700000000, 123456789)}
	got, ok := decodePayload(p.encode())
	if !ok || got.Run != p.Run || got.N != p.N || got.Value != p.Value || !got.Put.Equal(p.Put) {
		t.Errorf("decode(encode(%+v)) = %+v, %v", p, got, ok)
	}
	for _, bad := range []string{"", "hello", "run x n y value 1 put 2", "run x n 1 value 1 put"} {
		if _, ok := decodePayload([]byte(bad)); ok {
			t.Errorf("decoded %q", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(ds, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != -1 {
		t.Errorf("percentile of nothing = %v, want -1", got)
	}
}
