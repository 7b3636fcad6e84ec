package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/engine/fileengine"
	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// BenchmarkScale measures how the real binary copes with many streams and
// shards: (a) the latency of CreateStream, one client creating
// SHOAL_BENCH_STREAMS (default 1,000) streams of SHOAL_BENCH_SHARDS (default
// 10) shards one after the other; (b) a graceful stop and a restart with all
// those shards (SHOAL_BENCH_RESTARTS times, default 3): the time from the
// process start until it answers ListStreams, and until a first PutRecord to
// a random stream succeeds; (c) the server's open file descriptors after the
// restart, after one record was written to every shard, and after every
// shard was read back. It fails only if the server misbehaves (an error, a
// record not read back); the numbers and the targets (CreateStream p50 <
// 5 ms, restart < 1 s, a few hundred descriptors at most) are logged, and
// reported as metrics:
//
//   - create-p50-ms, create-p99-ms: CreateStream latency;
//   - ready-ms: a restart until ListStreams answers (median of the
//     restarts), first-put-ms: until a first PutRecord succeeds (median);
//   - stop-ms: SIGTERM until the process exited (median);
//   - fds-max: the most open descriptors seen after the first restart and
//     in the write and read passes (target: below the file engine's
//     open-log cap plus about 60).
//
// An op is the whole scenario, on a new data directory; run it once.
// SHOAL_BENCH_BIN runs a given binary instead of building ./cmd/shoal, to
// compare with another version:
//
//	go test -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 60m ./integration/
//	SHOAL_BENCH_BIN=/tmp/oldshoal-bin go test -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 60m ./integration/
func BenchmarkScale(b *testing.B) {
	bin := os.Getenv("SHOAL_BENCH_BIN")
	if bin == "" {
		bin = shoalBinary(b)
		b.Logf("binary: ./cmd/shoal of this module, built in %v", buildTime.Round(time.Millisecond))
	} else {
		b.Logf("binary: %s (SHOAL_BENCH_BIN)", bin)
	}
	cfg := scaleConfig{
		bin:       bin,
		streams:   envInt(b, "SHOAL_BENCH_STREAMS", 1000),
		perStream: envInt(b, "SHOAL_BENCH_SHARDS", 10),
		restarts:  envInt(b, "SHOAL_BENCH_RESTARTS", 3),
	}
	var all scaleResult
	for b.Loop() {
		r := runScale(b, cfg)
		all.create = append(all.create, r.create...)
		all.ready = append(all.ready, r.ready...)
		all.firstPut = append(all.firstPut, r.firstPut...)
		all.stop = append(all.stop, r.stop...)
		all.fdsMax = max(all.fdsMax, r.fdsMax)
	}
	b.ReportMetric(0, "ns/op") // the whole scenario, set-up included
	b.ReportMetric(scaleMs(scaleSlicePct(all.create, 50)), "create-p50-ms")
	b.ReportMetric(scaleMs(scaleSlicePct(all.create, 99)), "create-p99-ms")
	b.ReportMetric(scaleMs(scaleSlicePct(all.ready, 50)), "ready-ms")
	b.ReportMetric(scaleMs(scaleSlicePct(all.firstPut, 50)), "first-put-ms")
	b.ReportMetric(scaleMs(scaleSlicePct(all.stop, 50)), "stop-ms")
	b.ReportMetric(float64(all.fdsMax), "fds-max")
}

// scaleConfig is what one BenchmarkScale scenario runs.
type scaleConfig struct {
	bin                          string
	streams, perStream, restarts int
}

// scaleResult is what one scenario measured.
type scaleResult struct {
	create, ready, firstPut, stop []time.Duration
	fdsMax                        int
}

func scaleMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runScale runs BenchmarkScale's scenario once, on a new data directory.
func runScale(t testing.TB, sc scaleConfig) scaleResult {
	begin := time.Now()
	bin, nStreams, perStream := sc.bin, sc.streams, sc.perStream
	var res scaleResult
	total := nStreams * perStream
	logs := newLogBook(t)
	dataDir := t.TempDir()
	// The default account quota is 10,000 shards; the measurement may ask
	// for more.
	limit := strconv.Itoa(max(2*total, 10000))

	p, ready := scaleStart(t, bin, logs, "initial", dataDir, limit)
	t.Logf("empty start: answering ListStreams %v after the process started", ready.Round(time.Millisecond))

	// ---- (a) CreateStream latency ----
	hc := sdkhttp.NewClient(16)
	c := servertest.Client(p.endpoint, func(o *kinesis.Options) { o.HTTPClient = hc; o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	names := make([]string, nStreams)
	lat := make([]time.Duration, nStreams)
	createStart := time.Now()
	for i := range nStreams {
		names[i] = fmt.Sprintf("scale-%05d", i)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		t0 := time.Now()
		_, err := c.CreateStream(cctx, &kinesis.CreateStreamInput{StreamName: aws.String(names[i]), ShardCount: aws.Int32(int32(perStream))})
		lat[i] = time.Since(t0)
		cancel()
		if err != nil {
			t.Fatalf("CreateStream %s (#%d): %v", names[i], i+1, err)
		}
	}
	createTotal := time.Since(createStart)
	res.create = lat
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p50 := scalePct(sorted, 50)
	t.Logf("(a) CreateStream of %d streams x %d shards, one after the other: total %v (mean %v); p50 %v, p90 %v, p99 %v, max %v; first 10%% p50 %v, last 10%% p50 %v; target p50 < 5ms: %s",
		nStreams, perStream, createTotal.Round(time.Millisecond), (createTotal / time.Duration(nStreams)).Round(10*time.Microsecond),
		p50.Round(10*time.Microsecond), scalePct(sorted, 90).Round(10*time.Microsecond), scalePct(sorted, 99).Round(10*time.Microsecond),
		sorted[len(sorted)-1].Round(10*time.Microsecond), scaleSlicePct(lat[:max(1, nStreams/10)], 50).Round(10*time.Microsecond),
		scaleSlicePct(lat[nStreams-max(1, nStreams/10):], 50).Round(10*time.Microsecond), scaleTarget(p50 < 5*time.Millisecond))
	// Every stream is ACTIVE (the default create delay is 0).
	for _, name := range []string{names[0], names[nStreams-1]} {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeStreamSummary %s: %v", name, err)
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s != types.StreamStatusActive {
			t.Fatalf("stream %s is %s after CreateStream, want ACTIVE (the create delay is 0)", name, s)
		}
	}
	fdsCreated := scaleFDs(t, p)

	// ---- (b) graceful stop and restart ----
	// The first restart is the measurement; the others show the spread.
	restarts := sc.restarts
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	want := map[[2]string]int{} // records expected per stream and shard
	var fdsRestart int
	var readies, firstPuts []time.Duration
	for r := 1; r <= restarts; r++ {
		hc.CloseIdleConnections() // else net/http's Shutdown waits out idle connections (see gracefulTimeout)
		err, took, ok := p.terminate(10 * time.Minute)
		if !ok {
			t.Fatalf("the server did not exit within 10m of SIGTERM")
		}
		res.stop = append(res.stop, took)
		if err != nil {
			t.Errorf("the server exited after SIGTERM with %v, want exit status 0", err)
		}
		p, ready = scaleStart(t, bin, logs, fmt.Sprintf("restart %d", r), dataDir, limit)
		hc = sdkhttp.NewClient(16)
		c = servertest.Client(p.endpoint, func(o *kinesis.Options) { o.HTTPClient = hc; o.RetryMaxAttempts = 1 })
		probeStream := names[rng.IntN(nStreams)]
		probe, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(probeStream), PartitionKey: aws.String("probe"), Data: []byte("probe")})
		firstPut := time.Since(p.started)
		if err != nil {
			t.Fatalf("PutRecord to %s after the restart: %v", probeStream, err)
		}
		want[[2]string{probeStream, aws.ToString(probe.ShardId)}]++
		if r == 1 {
			fdsRestart = scaleFDs(t, p)
		}
		readies, firstPuts = append(readies, ready), append(firstPuts, firstPut)
		t.Logf("(b) restart %d of %d: SIGTERM with %d streams, %d shards: exited in %v; restarted: ListStreams answered %v after the process started, a first PutRecord (to %s) succeeded after %v; target < 1s: %s",
			r, restarts, nStreams, total, took.Round(time.Millisecond), ready.Round(time.Millisecond), probeStream, firstPut.Round(time.Millisecond), scaleTarget(ready < time.Second && firstPut < time.Second))
	}
	t.Logf("(b) restarts with %d shards: ListStreams answered after %v (median of %d; min %v, max %v), a first PutRecord succeeded after %v (median)",
		total, scaleSlicePct(readies, 50).Round(time.Millisecond), restarts, slices.Min(readies).Round(time.Millisecond), slices.Max(readies).Round(time.Millisecond),
		scaleSlicePct(firstPuts, 50).Round(time.Millisecond))

	// ---- (c) file descriptors under one record per shard ----
	type shardRef struct{ stream, shard, startKey string }
	var refs []shardRef
	{
		var mu sync.Mutex
		scaleEach(t, nStreams, 8, func(i int) error {
			var got []types.Shard
			in := &kinesis.ListShardsInput{StreamName: aws.String(names[i])}
			for {
				out, err := c.ListShards(ctx, in)
				if err != nil {
					return fmt.Errorf("ListShards %s: %w", names[i], err)
				}
				got = append(got, out.Shards...)
				if out.NextToken == nil {
					break
				}
				in = &kinesis.ListShardsInput{NextToken: out.NextToken}
			}
			if len(got) != perStream {
				return fmt.Errorf("ListShards %s: %d shards, want %d", names[i], len(got), perStream)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, sh := range got {
				refs = append(refs, shardRef{names[i], aws.ToString(sh.ShardId), aws.ToString(sh.HashKeyRange.StartingHashKey)})
			}
			return nil
		})
	}
	byStream := map[string][]shardRef{}
	for _, r := range refs {
		byStream[r.stream] = append(byStream[r.stream], r)
	}
	// Pass 1 writes the first record of every shard (its log's first use
	// since the restart, and its first segment); pass 2 does it all again.
	fdsPass := map[string]int{}
	for pass := 1; pass <= 2; pass++ {
		data := func(r shardRef) string { return fmt.Sprintf("%s/%s/%d", r.stream, r.shard, pass) }
		lat := make([]time.Duration, nStreams)
		writeStart := time.Now()
		scaleEach(t, nStreams, 8, func(i int) error {
			rs := byStream[names[i]]
			var entries []types.PutRecordsRequestEntry
			for _, r := range rs {
				entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(r.shard), ExplicitHashKey: aws.String(r.startKey), Data: []byte(data(r))})
			}
			t0 := time.Now()
			out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(names[i]), Records: entries})
			lat[i] = time.Since(t0)
			if err != nil {
				return fmt.Errorf("PutRecords %s: %w", names[i], err)
			}
			for j, e := range out.Records {
				if e.ErrorCode != nil || aws.ToString(e.ShardId) != rs[j].shard {
					return fmt.Errorf("PutRecords %s entry %d: shard %q, error %q %q; want shard %s", names[i], j, aws.ToString(e.ShardId), aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage), rs[j].shard)
				}
			}
			return nil
		})
		writeTook := time.Since(writeStart)
		for _, r := range refs {
			want[[2]string{r.stream, r.shard}]++
		}
		fdsWritten := scaleFDs(t, p)

		var readRecords atomic.Int64
		rlat := make([]time.Duration, len(refs))
		readStart := time.Now()
		scaleEach(t, len(refs), 8, func(i int) error {
			r := refs[i]
			t0 := time.Now()
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(r.stream), ShardId: aws.String(r.shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				return fmt.Errorf("GetShardIterator %s %s: %w", r.stream, r.shard, err)
			}
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
			rlat[i] = time.Since(t0)
			if err != nil {
				return fmt.Errorf("GetRecords %s %s: %w", r.stream, r.shard, err)
			}
			if n := want[[2]string{r.stream, r.shard}]; len(out.Records) != n {
				return fmt.Errorf("%s %s: %d records read back, want %d", r.stream, r.shard, len(out.Records), n)
			}
			if last := out.Records[len(out.Records)-1]; string(last.Data) != data(r) {
				return fmt.Errorf("%s %s: read back %q last, want %q", r.stream, r.shard, last.Data, data(r))
			}
			readRecords.Add(int64(len(out.Records)))
			return nil
		})
		readTook := time.Since(readStart)
		fdsRead := scaleFDs(t, p)
		fdsPass[fmt.Sprintf("write %d", pass)], fdsPass[fmt.Sprintf("read %d", pass)] = fdsWritten, fdsRead
		t.Logf("(c) pass %d: wrote one record to each of the %d shards in %v (PutRecords of %d records per stream, 8 calls at a time; call p50 %v, p99 %v): %d open file descriptors; read every shard back in %v (%d records; GetShardIterator+GetRecords per shard, 8 at a time; p50 %v, p99 %v): %d open file descriptors",
			pass, len(refs), writeTook.Round(time.Millisecond), perStream, scaleSlicePct(lat, 50).Round(10*time.Microsecond), scaleSlicePct(lat, 99).Round(10*time.Microsecond), fdsWritten,
			readTook.Round(time.Millisecond), readRecords.Load(), scaleSlicePct(rlat, 50).Round(10*time.Microsecond), scaleSlicePct(rlat, 99).Round(10*time.Microsecond), fdsRead)
	}
	most := fdsRestart
	for _, n := range fdsPass {
		most = max(most, n)
	}
	t.Logf("(c) open file descriptors: %d after creating %d shards; %d after the restart; %d after writing one record to each shard; %d after reading them back (then %d and %d in pass 2); target bounded by the file engine's open-log cap (%d logs, one segment each here, plus ~60 for the process) with %d shards: %s",
		fdsCreated, total, fdsRestart, fdsPass["write 1"], fdsPass["read 1"], fdsPass["write 2"], fdsPass["read 2"], fileengine.DefaultMaxOpenLogs, total, scaleTarget(most < fileengine.DefaultMaxOpenLogs+60))

	hc.CloseIdleConnections()
	if err, took, ok := p.terminate(10 * time.Minute); !ok || err != nil {
		t.Errorf("final SIGTERM: exited %v after %v, error %v", ok, took, err)
	}
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
	res.ready, res.firstPut, res.fdsMax = readies, firstPuts, most
	return res
}

// scaleProc is a server process and the time it was started.
type scaleProc struct {
	*proc
	started time.Time
}

// scaleStart starts the server on dataDir and returns once it answers
// ListStreams, with the time from the process start until then (polled
// every millisecond).
func scaleStart(t testing.TB, bin string, logs *logBook, label, dataDir, shardLimit string) (*scaleProc, time.Duration) {
	t.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		addr := freeAddr(t)
		l := logs.open(fmt.Sprintf("%s (attempt %d, %s)", label, attempt, addr))
		cmd := exec.Command(bin, "server", "--addr", addr, "--data-dir", dataDir, "--fsync", "always", "--log-level", "warn", "--shard-limit", shardLimit)
		cmd.Stdout, cmd.Stderr = l, l
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		p := &scaleProc{proc: &proc{label: label, endpoint: "http://" + addr, cmd: cmd, log: l, done: make(chan struct{})}, started: started}
		go func() { p.waitErr = cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.kill() })
		c := servertest.Client(p.endpoint, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
		deadline := started.Add(10 * time.Minute)
		var last error
		for time.Now().Before(deadline) && !p.exited() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
			cancel()
			if err == nil {
				return p, time.Since(started)
			}
			last = err
			time.Sleep(time.Millisecond)
		}
		p.kill()
		if out, _ := l.contents(); attempt < 5 && strings.Contains(out, "address already in use") {
			continue
		}
		t.Fatalf("server %s did not start: %v", label, last)
	}
	return nil, 0
}

// scaleFDs counts the open file descriptors of the server process.
func scaleFDs(t testing.TB, p *scaleProc) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("count the server's file descriptors: %v", err)
	}
	return len(ents)
}

// scaleEach runs fn(0..n-1) on par goroutines and fails the test with the
// first error.
func scaleEach(t testing.TB, n, par int, fn func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range par {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// scalePct returns the p-th percentile (nearest rank) of sorted durations.
func scalePct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func scaleSlicePct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return scalePct(s, p)
}

func scaleTarget(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
