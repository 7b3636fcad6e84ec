package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

// recordLine is how the example prints a processed record.
var recordLine = regexp.MustCompile(`^(shardId-\d+) (\d+)/(\d+) key-(\d+): run ([0-9a-f]+) record (\d+)$`)

type printed struct {
	shard, seq  string
	sub         int64
	key, record int
	run         string
}

// parse returns the record lines of out, and the run id of its "produced"
// line.
func parse(t *testing.T, out string) ([]printed, string) {
	t.Helper()
	var recs []printed
	var runID string
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if m := recordLine.FindStringSubmatch(line); m != nil {
			sub, _ := strconv.ParseInt(m[3], 10, 64)
			key, _ := strconv.Atoi(m[4])
			rec, _ := strconv.Atoi(m[6])
			recs = append(recs, printed{shard: m[1], seq: m[2], sub: sub, key: key, run: m[5], record: rec})
			continue
		}
		if _, rest, ok := strings.Cut(line, "(run "); ok && strings.HasPrefix(line, "produced ") {
			runID, _, _ = strings.Cut(rest, ")")
		}
	}
	if runID == "" {
		t.Fatalf("no \"produced\" line in output:\n%s", out)
	}
	return recs, runID
}

// checkRun asserts that the output shows records 0..n-1 of its run exactly
// once each, and nothing of any other run.
func checkRun(t *testing.T, out string, n int) []printed {
	t.Helper()
	recs, runID := parse(t, out)
	count := map[int]int{}
	for _, r := range recs {
		if r.run != runID {
			t.Errorf("printed a record of run %s, want only run %s: %+v", r.run, runID, r)
			continue
		}
		if r.key != r.record {
			t.Errorf("record %d printed with key key-%d", r.record, r.key)
		}
		count[r.record]++
	}
	for i := range n {
		if count[i] != 1 {
			t.Errorf("record %d printed %d times, want once", i, count[i])
		}
	}
	if len(count) != n {
		t.Errorf("printed %d distinct records, want %d", len(count), n)
	}
	if want := "processed " + strconv.Itoa(n) + " records from 2 shards"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	return recs
}

func TestQuickstart(t *testing.T) {
	pool, schema := pgtest.New(t)
	dataDir := t.TempDir() // kept across the two runs, so the stream is too
	cfg := config{
		DataDir:     dataDir,
		DatabaseURL: pgtest.URL(),
		Schema:      schema,
		Table:       "quickstart_leases",
		Stream:      "quickstart",
		Shards:      2,
		Records:     40,
		Application: "quickstart-test",
		Timeout:     60 * time.Second,
	}
	ctx := context.Background()

	var out bytes.Buffer
	if err := run(ctx, cfg, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	recs := checkRun(t, out.String(), cfg.Records)

	// Each shard's checkpoint is the last record printed from it: the
	// worker checkpointed every batch and again at shutdown.
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: cfg.Table})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }() // always nil
	last := map[string]checkpoint.Checkpoint{}
	for _, r := range recs {
		cp := checkpoint.Checkpoint{SequenceNumber: r.seq, SubSequenceNumber: r.sub}
		if cur, ok := last[r.shard]; !ok || cp.Compare(cur) > 0 {
			last[r.shard] = cp
		}
	}
	leases, err := store.ListLeases(ctx, cfg.Application)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 2 {
		t.Fatalf("%d leases, want 2: %+v", len(leases), leases)
	}
	for _, l := range leases {
		if l.Checkpoint != last[l.ShardID] {
			t.Errorf("%s: checkpoint %v, want the last record printed, %v", l.ShardID, l.Checkpoint, last[l.ShardID])
		}
		if l.Owner != "" {
			t.Errorf("%s: still owned by %q after the run; the worker should release it", l.ShardID, l.Owner)
		}
	}

	// A second run on the same stream and lease table resumes after the
	// checkpoints: it prints its own records, none of the first run's.
	out.Reset()
	cfg.Records = 15
	if err := run(ctx, cfg, &out); err != nil {
		t.Fatalf("second run: %v\noutput:\n%s", err, out.String())
	}
	checkRun(t, out.String(), cfg.Records)
}

func TestFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://example@127.0.0.1:5432/x")
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-n", "7", "-schema", "s1", "-table", "t1", "-endpoint", "http://127.0.0.1:4567"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Records != 7 || cfg.Schema != "s1" || cfg.Table != "t1" || cfg.Endpoint != "http://127.0.0.1:4567" {
		t.Errorf("flags not applied: %+v", cfg)
	}
	if cfg.DatabaseURL != "postgres://example@127.0.0.1:5432/x" {
		t.Errorf("DatabaseURL %q, want DATABASE_URL's value", cfg.DatabaseURL)
	}
	if _, err := parseFlags([]string{"-n", "0"}, &stderr); err == nil {
		t.Error("-n 0 accepted")
	}
}
