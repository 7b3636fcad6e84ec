package fileengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

func sampleStream(name string) engine.StreamMeta {
	w := int32(4)
	return engine.StreamMeta{
		Name: name, ID: name + "-id", Created: 1700000000000, Status: "ACTIVE", Mode: "PROVISIONED",
		RetentionHours: 24, Tags: map[string]string{"team": "a"}, MaxRecordKiB: 1024, WarmMiBps: &w,
		Distribution: "USER_PARTITION_KEY", Metrics: []string{"IncomingBytes"}, NextIndex: 2, ScaleTimes: []int64{5},
		Shards: []engine.ShardMeta{
			{Index: 0, Start: "0", End: "170141183460469231731687303715884105727", CreatedMs: 1},
			{Index: 1, Start: "170141183460469231731687303715884105728", End: "340282366920938463463374607431768211455", CreatedMs: 1},
		},
		Consumers: []engine.ConsumerMeta{{Name: "c1", Created: 2, Status: "ACTIVE", Tags: map[string]string{"x": "y"}}},
	}
}

// TestCatalogCAS checks the compare-and-set rules of engine.Catalog.
func TestCatalogCAS(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	c := e.Catalog()
	m := sampleStream("s")
	v, err := c.PutStream(ctx, m, 0)
	if err != nil || v == 0 {
		t.Fatalf("PutStream(new) = %d, %v", v, err)
	}
	if _, err := c.PutStream(ctx, m, 0); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("PutStream(existing, 0) = %v, want ErrExists", err)
	}
	if _, err := c.PutStream(ctx, m, v+5); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("PutStream(wrong version) = %v, want ErrConflict", err)
	}
	if _, err := c.PutStream(ctx, sampleStream("missing"), 3); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("PutStream(missing, 3) = %v, want ErrConflict", err)
	}
	m.Status = "UPDATING"
	v2, err := c.PutStream(ctx, m, v)
	if err != nil || v2 <= v {
		t.Fatalf("PutStream(update) = %d, %v", v2, err)
	}
	got, gv, err := c.Stream(ctx, "s")
	if err != nil || gv != v2 || !reflect.DeepEqual(got, m) {
		t.Fatalf("Stream = %+v, %d, %v; want %+v, %d", got, gv, err, m, v2)
	}
	if _, _, err := c.Stream(ctx, "missing"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Stream(missing) = %v, want ErrNotFound", err)
	}
	if err := c.DeleteStream(ctx, "s", v); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("DeleteStream(old version) = %v, want ErrConflict", err)
	}
	if err := c.DeleteStream(ctx, "missing", 1); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteStream(missing) = %v, want ErrNotFound", err)
	}
	if err := c.DeleteStream(ctx, "s", v2); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStream(ctx, "s", v2); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("DeleteStream(deleted) = %v, want ErrNotFound", err)
	}
	if _, _, err := c.Stream(ctx, "s"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Stream(deleted) = %v", err)
	}
	// A re-created record gets a version no writer of the old one holds.
	if _, err := c.PutStream(ctx, m, v2); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("PutStream(deleted, old version) = %v, want ErrConflict", err)
	}
	v3, err := c.PutStream(ctx, m, 0)
	if err != nil || v3 <= v2 {
		t.Fatalf("PutStream(re-create) = %d, %v; want a version above %d", v3, err, v2)
	}
	if _, err := c.PutStream(ctx, engine.StreamMeta{}, 0); err == nil {
		t.Fatal("PutStream with an empty name succeeded")
	}
	// Account.
	a, av, err := c.Account(ctx)
	if err != nil || av != 0 || a != (engine.AccountMeta{}) {
		t.Fatalf("Account of a new catalog = %+v, %d, %v", a, av, err)
	}
	acc := engine.AccountMeta{Secret: "00ff", CommitmentStatus: "ENABLED", CommitmentStart: 1}
	av, err = c.PutAccount(ctx, acc, 0)
	if err != nil || av == 0 {
		t.Fatalf("PutAccount = %d, %v", av, err)
	}
	if _, err := c.PutAccount(ctx, acc, 0); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("PutAccount(0) again = %v, want ErrExists", err)
	}
	if _, err := c.PutAccount(ctx, acc, av+1); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("PutAccount(wrong) = %v, want ErrConflict", err)
	}
	if got, gv, _ := c.Account(ctx); got != acc || gv != av {
		t.Fatalf("Account = %+v, %d", got, gv)
	}
}

// TestCatalogCopies: callers cannot alias the stored records.
func TestCatalogCopies(t *testing.T) {
	ctx := context.Background()
	c := openEngine(t, Config{}).Catalog()
	m := sampleStream("s")
	if _, err := c.PutStream(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	want := sampleStream("s")
	m.Tags["team"] = "changed"
	m.Shards[0].EndSeq = "changed"
	*m.WarmMiBps = 99
	got, _, _ := c.Stream(ctx, "s")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the stored record changed with the caller's copy: %+v", got)
	}
	got.Tags["team"] = "again"
	got.Consumers[0].Tags["x"] = "again"
	got.Metrics[0] = "again"
	all, _ := c.Streams(ctx)
	if len(all) != 1 || !reflect.DeepEqual(all[0].Meta, want) {
		t.Fatalf("the stored record changed with a returned copy: %+v", all)
	}
}

// TestCatalogConcurrent: of many PutStream(expect 0) of one name exactly one
// wins, and read-modify-CAS loops lose no update.
func TestCatalogConcurrent(t *testing.T) {
	ctx := context.Background()
	c := openEngine(t, Config{}).Catalog()
	const n = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, exists := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := sampleStream("race")
			m.Tags = map[string]string{"count": "0", "winner": strconv.Itoa(i)}
			_, err := c.PutStream(ctx, m, 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, engine.ErrExists):
				exists++
			default:
				t.Errorf("PutStream: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || exists != n-1 {
		t.Fatalf("%d wins, %d ErrExists; want 1 and %d", wins, exists, n-1)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, v, err := c.Stream(ctx, "race")
				if err != nil {
					t.Error(err)
					return
				}
				k, _ := strconv.Atoi(m.Tags["count"])
				m.Tags["count"] = strconv.Itoa(k + 1)
				if _, err := c.PutStream(ctx, m, v); err == nil {
					return
				} else if !errors.Is(err, engine.ErrConflict) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m, _, _ := c.Stream(ctx, "race")
	if m.Tags["count"] != strconv.Itoa(n) {
		t.Fatalf("count = %s after %d increments", m.Tags["count"], n)
	}
}

// TestCatalogPerNameLocking: a write of one stream blocked in the middle of
// its file write holds up neither another stream's write nor reads.
func TestCatalogPerNameLocking(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	c := e.Catalog()
	v, err := c.PutStream(ctx, sampleStream("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	entered, unblock := make(chan struct{}), make(chan struct{})
	e.cat.hookWrite = func(name string) {
		if name == "a" {
			close(entered)
			<-unblock
		}
	}
	done := make(chan error)
	go func() {
		m := sampleStream("a")
		m.Status = "UPDATING"
		_, err := c.PutStream(ctx, m, v)
		done <- err
	}()
	<-entered
	if _, err := c.PutStream(ctx, sampleStream("b"), 0); err != nil {
		t.Fatalf("PutStream(b) while a is being written: %v", err)
	}
	if m, gv, err := c.Stream(ctx, "a"); err != nil || gv != v || m.Status != "ACTIVE" {
		t.Fatalf("Stream(a) during its write = %s, %d, %v; want the old record", m.Status, gv, err)
	}
	if all, err := c.Streams(ctx); err != nil || len(all) != 2 {
		t.Fatalf("Streams during a write = %d records, %v", len(all), err)
	}
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.cat.hookWrite = nil
}

// TestCatalogPersistence: records, versions and odd names survive Close
// and Open; the files are named by the hex of the name.
func TestCatalogPersistence(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, Config{})
	long := strings.Repeat("n", 128)
	want := map[string]uint64{}
	for _, name := range []string{".", "..", "plain", "with space/slash", long} {
		v, err := e.Catalog().PutStream(ctx, sampleStream(name), 0)
		if err != nil {
			t.Fatalf("PutStream(%q): %v", name, err)
		}
		want[name] = v
	}
	m := sampleStream("plain")
	m.RetentionHours = 48
	v, err := e.Catalog().PutStream(ctx, m, want["plain"])
	if err != nil {
		t.Fatal(err)
	}
	want["plain"] = v
	if _, err := e.Catalog().PutAccount(ctx, engine.AccountMeta{Secret: "abcd"}, 0); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.cfg.Dir, "catalog", "streams")
	for _, f := range []string{"2e.json", "2e2e.json", "706c61696e.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("record file: %v", err)
		}
	}
	if fn := streamFileName(long); !strings.HasPrefix(fn, "h-") || len(fn) > 255 {
		t.Fatalf("file name of a 128-byte name = %q", fn)
	}
	if fn := streamFileName(strings.Repeat("x", maxHexName)); len(fn) != 255 {
		t.Fatalf("file name of a %d-byte name has %d bytes, want 255", maxHexName, len(fn))
	}
	// A temporary file left by a crash is removed at Open.
	if err := os.WriteFile(filepath.Join(dir, tmpPrefix+"123"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e)
	all, err := e.Catalog().Streams(ctx)
	if err != nil || len(all) != len(want) {
		t.Fatalf("Streams after reopen = %d records, %v", len(all), err)
	}
	for _, vs := range all {
		w := sampleStream(vs.Meta.Name)
		if vs.Meta.Name == "plain" {
			w.RetentionHours = 48
		}
		if vs.Version != want[vs.Meta.Name] || !reflect.DeepEqual(vs.Meta, w) {
			t.Fatalf("after reopen %q = version %d %+v; want %d %+v", vs.Meta.Name, vs.Version, vs.Meta, want[vs.Meta.Name], w)
		}
	}
	if a, v, _ := e.Catalog().Account(ctx); a.Secret != "abcd" || v != 1 {
		t.Fatalf("Account after reopen = %+v, %d", a, v)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
	if err := e.Catalog().DeleteStream(ctx, "..", want[".."]); err != nil {
		t.Fatal(err)
	}
	e = reopen(t, e)
	if _, _, err := e.Catalog().Stream(ctx, ".."); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleted record after reopen: %v", err)
	}
}

// TestCatalogCorrupt: a damaged record file fails Open with ErrCorrupt.
func TestCatalogCorrupt(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, Config{Dir: dir})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "catalog", "streams", streamFileName("x"))
	for _, content := range []string{"{", `{"version":1,"stream":{"name":"y"}}`, `{"version":0,"stream":{"name":"x"}}`} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if e, err := Open(Config{Dir: dir}); !errors.Is(err, engine.ErrCorrupt) {
			if e != nil {
				_ = e.Close() // the test fails below anyway
			}
			t.Fatalf("Open with record %s: %v, want ErrCorrupt", content, err)
		}
	}
}
