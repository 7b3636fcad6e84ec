package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// run calls Main with args and returns its output and the parsed -json line.
func run(t *testing.T, ctx context.Context, args ...string) (string, result) {
	t.Helper()
	var out bytes.Buffer
	if err := Main(ctx, append(args, "-json"), &out); err != nil {
		t.Fatalf("Main(%q): %v\n%s", args, err, out.String())
	}
	return out.String(), lastJSON(t, out.String())
}

func lastJSON(t *testing.T, out string) result {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("last line is not a JSON result: %v\n%s", err, out)
	}
	return r
}

func checkLatency(t *testing.T, r result) {
	t.Helper()
	l := r.LatencyMS
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency percentiles not ordered or zero: %+v", l)
	}
}

func TestPutRequestsStoresExactly(t *testing.T) {
	f, url := newFake(t)
	f.creatingDescribes = 2
	out, r := run(t, t.Context(), "put", "-endpoint", url, "-stream", "s1", "-shards", "4",
		"-requests", "20", "-batch", "50", "-size", "64", "-clients", "3", "-warmup", "0")
	stored, storedBytes := f.storedRecords()
	if stored != 1000 || r.Records != 1000 || r.Calls != 20 || f.count("PutRecords") != 20 {
		t.Fatalf("stored %d, reported %d records in %d calls, fake saw %d calls\n%s",
			stored, r.Records, r.Calls, f.count("PutRecords"), out)
	}
	if storedBytes != 64000 || r.Bytes != 64000 {
		t.Errorf("bytes: stored %d, reported %d, want 64000", storedBytes, r.Bytes)
	}
	if f.count("CreateStream") != 1 || f.count("DescribeStreamSummary") < 3 {
		t.Errorf("stream setup: %d CreateStream, %d DescribeStreamSummary (want 1, >= 3 to see ACTIVE)",
			f.count("CreateStream"), f.count("DescribeStreamSummary"))
	}
	for i, n := range f.shardSizes("s1") {
		if n == 0 {
			t.Errorf("shard %d got no records: keys do not spread (%v)", i, f.shardSizes("s1"))
		}
	}
	if got := f.connCount(); got < 3 {
		t.Errorf("data calls came over %d connections, want >= 3 (one per client)", got)
	}
	if r.FailedCalls != 0 || r.FailedRecords != 0 || r.Retries != 0 || r.WarmupCalls != 0 {
		t.Errorf("unexpected errors or warmup: %+v", r)
	}
	if r.Seconds <= 0 || r.RecordsPerSec <= 0 || r.MBPerSec <= 0 {
		t.Errorf("rates not computed: %+v", r)
	}
	checkLatency(t, r)
	if !strings.Contains(out, "put: 1000 records in ") || !strings.Contains(out, "latency per call: p50 ") {
		t.Errorf("human output missing lines:\n%s", out)
	}
}

func TestPutRecordMode(t *testing.T) {
	f, url := newFake(t)
	_, r := run(t, t.Context(), "put", "-endpoint", url, "-mode", "record", "-requests", "30",
		"-clients", "2", "-warmup", "0", "-size", "10")
	stored, _ := f.storedRecords()
	if stored != 30 || r.Records != 30 || r.Calls != 30 || f.count("PutRecord") != 30 || f.count("PutRecords") != 0 {
		t.Fatalf("stored %d, reported %d records / %d calls, fake PutRecord calls %d", stored, r.Records, r.Calls, f.count("PutRecord"))
	}
	checkLatency(t, r)
}

func TestPutDurationWithWarmup(t *testing.T) {
	// The phases follow a clock that moves 5 ms at each reading (two per
	// call), not the machine's: under load a real 300 ms run could end
	// with no measured call at all.
	var ticks atomic.Int64
	base := time.Now()
	driveNow = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * 5 * time.Millisecond) }
	t.Cleanup(func() { driveNow = time.Now })
	f, url := newFake(t)
	_, r := run(t, t.Context(), "put", "-endpoint", url, "-duration", "300ms", "-warmup", "150ms",
		"-clients", "2", "-batch", "10")
	stored, _ := f.storedRecords()
	if r.WarmupCalls == 0 || r.Calls == 0 {
		t.Fatalf("want calls in both phases: %+v", r)
	}
	if stored != r.Records+r.WarmupRecords {
		t.Errorf("fake stored %d, tool reported %d measured + %d warmup", stored, r.Records, r.WarmupRecords)
	}
	if int64(f.count("PutRecords")) != r.Calls+r.WarmupCalls {
		t.Errorf("fake saw %d calls, tool reported %d + %d", f.count("PutRecords"), r.Calls, r.WarmupCalls)
	}
	if r.Seconds < 0.3 || r.Seconds > 5 {
		t.Errorf("measured %.3fs for a 300ms run", r.Seconds)
	}
}

func TestPutCountsRetriesAndFailedRecords(t *testing.T) {
	f, url := newFake(t)
	f.failFirstPuts = 2    // first call succeeds on its 3rd attempt
	f.failEveryRecord = 10 // 2 of every 20 entries rejected
	_, r := run(t, t.Context(), "put", "-endpoint", url, "-requests", "10", "-batch", "20",
		"-clients", "1", "-warmup", "0")
	stored, _ := f.storedRecords()
	if r.Retries != 2 || r.FailedCalls != 0 {
		t.Errorf("retries %d, failed calls %d; want 2, 0", r.Retries, r.FailedCalls)
	}
	if r.FailedRecords != 20 || r.Records != 180 || stored != 180 || r.Bytes != 180*100 {
		t.Errorf("failed records %d, records %d (%d bytes), stored %d; want 20, 180, 180", r.FailedRecords, r.Records, r.Bytes, stored)
	}
	if f.count("PutRecords") != 12 {
		t.Errorf("fake saw %d PutRecords, want 12 (10 calls + 2 retries)", f.count("PutRecords"))
	}
}

func TestPutCountsFailedCalls(t *testing.T) {
	f, url := newFake(t)
	f.failFirstPuts = 3
	out, r := run(t, t.Context(), "put", "-endpoint", url, "-requests", "5", "-batch", "4",
		"-clients", "1", "-warmup", "0", "-retries", "0")
	stored, _ := f.storedRecords()
	if r.FailedCalls != 3 || r.Retries != 0 || r.Calls != 5 || r.Records != 8 || stored != 8 {
		t.Errorf("got %+v, stored %d; want 3 failed calls, 0 retries, 5 calls, 8 records", r, stored)
	}
	if !strings.Contains(out, "first error: ") || !strings.Contains(r.FirstError, "InternalFailure") {
		t.Errorf("first error not reported:\n%s", out)
	}
}

func TestGetReadsBackPrefill(t *testing.T) {
	f, url := newFake(t)
	out, r := run(t, t.Context(), "get", "-endpoint", url, "-stream", "g", "-shards", "3",
		"-prefill", "1234", "-size", "50", "-limit", "100")
	if r.Records != 1234 || r.Bytes != 1234*50 {
		t.Fatalf("read %d records (%d bytes), want 1234 (%d)\n%s", r.Records, r.Bytes, 1234*50, out)
	}
	if int64(f.count("GetRecords")) != r.Calls {
		t.Errorf("fake saw %d GetRecords, tool reported %d", f.count("GetRecords"), r.Calls)
	}
	if r.Clients != 3 || r.Cursors != 3 || r.CaughtUp != 3 || r.Prefilled != 1234 {
		t.Errorf("readers %d, cursors %d, caught up %d, prefilled %d; want 3, 3, 3, 1234", r.Clients, r.Cursors, r.CaughtUp, r.Prefilled)
	}
	checkLatency(t, r)
	if !strings.Contains(out, "prefill: 1234 records") || !strings.Contains(out, "3/3 shard cursors caught up") {
		t.Errorf("human output:\n%s", out)
	}
}

func TestGetFewerReadersThanShards(t *testing.T) {
	_, url := newFake(t)
	_, r := run(t, t.Context(), "get", "-endpoint", url, "-shards", "5", "-clients", "2", "-prefill", "777")
	if r.Records != 777 || r.Cursors != 5 || r.CaughtUp != 5 {
		t.Errorf("read %d records, %d/%d cursors caught up; want 777, 5/5", r.Records, r.CaughtUp, r.Cursors)
	}
}

func TestGetMoreReadersThanShards(t *testing.T) {
	_, url := newFake(t)
	_, r := run(t, t.Context(), "get", "-endpoint", url, "-shards", "1", "-clients", "3", "-prefill", "100")
	if r.Records != 300 || r.Cursors != 3 || r.CaughtUp != 3 {
		t.Errorf("read %d records with %d cursors; want each of 3 readers to read the 100 records", r.Records, r.Cursors)
	}
}

func TestGetRequestsStopsEarly(t *testing.T) {
	f, url := newFake(t)
	_, r := run(t, t.Context(), "get", "-endpoint", url, "-shards", "1", "-prefill", "100",
		"-limit", "10", "-requests", "2")
	if r.Records != 20 || r.Calls != 2 || f.count("GetRecords") != 2 || r.CaughtUp != 0 {
		t.Errorf("read %d records in %d calls (fake %d), caught up %d; want 20, 2, 2, 0", r.Records, r.Calls, f.count("GetRecords"), r.CaughtUp)
	}
}

func TestNoCreate(t *testing.T) {
	f, url := newFake(t)
	var out bytes.Buffer
	err := Main(t.Context(), []string{"get", "-endpoint", url, "-create=false", "-duration", "100ms"}, &out)
	if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("get on a missing stream with -create=false: err %v", err)
	}
	if f.count("CreateStream") != 0 || f.count("DescribeStreamSummary") != 0 {
		t.Errorf("-create=false still created or described the stream")
	}
}

func TestCancelStopsRun(t *testing.T) {
	_, url := newFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	var out bytes.Buffer
	start := time.Now()
	err := Main(ctx, []string{"put", "-endpoint", url, "-duration", "1h", "-warmup", "0", "-clients", "4", "-batch", "10"}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled\n%s", err, out.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Main took %v to stop after cancel", d)
	}
	if !strings.Contains(out.String(), "interrupted") || !strings.Contains(out.String(), "put: ") {
		t.Errorf("partial results not printed:\n%s", out.String())
	}
}

func TestUsageAndBadArgs(t *testing.T) {
	ctx := t.Context()
	for _, sub := range []string{"put", "get"} {
		var out bytes.Buffer
		if err := Main(ctx, []string{sub, "-h"}, &out); err != nil {
			t.Errorf("%s -h: %v", sub, err)
		}
		if !strings.Contains(out.String(), "-endpoint") || !strings.Contains(out.String(), "usage: shoal bench "+sub) {
			t.Errorf("%s -h output:\n%s", sub, out.String())
		}
	}
	bad := [][]string{
		nil,
		{"nope"},
		{"put", "-nope"},
		{"put", "-mode", "x"},
		{"put", "-clients", "0"},
		{"get", "-limit", "0"},
		{"put", "extra"},
		{"put", "-duration", "0"},
	}
	for _, args := range bad {
		if err := Main(ctx, args, io.Discard); err == nil {
			t.Errorf("Main(%q) = nil, want an error", args)
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(1000-i) * time.Microsecond // reverse order
	}
	p := summarize(lat)
	want := percentiles{P50: 500 * time.Microsecond, P90: 900 * time.Microsecond, P99: 990 * time.Microsecond,
		P999: 999 * time.Microsecond, Max: 1000 * time.Microsecond, Mean: 500500 * time.Nanosecond}
	if p != want {
		t.Errorf("summarize = %+v, want %+v", p, want)
	}
	if (summarize(nil) != percentiles{}) {
		t.Errorf("summarize(nil) not zero")
	}
}
