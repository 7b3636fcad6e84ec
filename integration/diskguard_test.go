package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestDiskGuard runs the shoal binary on a 32 MiB tmpfs and writes until
// the disk guard refuses writes (ProvisionedThroughputExceededException
// naming the disk) before the file system is full: no append ever meets
// ENOSPC (no InternalFailure), every acknowledged record reads back, and
// once a ballast file is deleted writes resume by themselves.
//
// The writer cannot outrun the guard, whatever the machine's speed: it
// writes in bulk only while its own statfs shows less than 93 % used, then
// at most 400 KiB/s (4 KiB records every 10 ms), so that between two of
// the guard's samples (one second apart) it adds at most 400 KiB of the
// 1.6 MiB left between the high-water mark (95 %) and a full disk.
func TestDiskGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the shoal binary on a tmpfs; skipped with -short")
	}
	dir := t.TempDir()
	if err := mountTmpfs(t, dir, "32m"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: the disk guard test needs a tmpfs data dir (run as root): %v", err)
		}
		t.Skipf("NOTE: the disk guard test needs a tmpfs data dir: %v (run as root, or with CI=true to make this a failure)", err)
	}
	// 8 MiB of ballast: deleting it takes usage from above 95 % to about
	// 70 %, below the low-water mark.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	logs := newLogBook(t)
	srv := startServer(t, shoalBinary(t), logs, "server", dir, "--segment-bytes", strconv.Itoa(1<<20), "--admin-addr", admin, "--log-level", "info")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := servertest.Client(srv.endpoint, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	const stream = "diskguard"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	waitActive(ctx, t, c, stream)

	acked := map[string]string{} // data -> sequence number
	n := 0
	next := func(size int) []byte {
		n++
		b := make([]byte, size)
		copy(b, fmt.Sprintf("record %d ", n))
		return b
	}
	// refusal checks a failed write: the disk guard's, or the test fails.
	refusal := func(what, code, msg string) {
		t.Helper()
		if code != "ProvisionedThroughputExceededException" || !isDiskMessage(msg) {
			used, avail := statfs(t, dir)
			t.Fatalf("%s: %s: %s (file system: %d bytes used, %d available), want the disk guard's ProvisionedThroughputExceededException", what, code, msg, used, avail)
		}
	}

	// Bulk: PutRecords of 8 x 32 KiB while below 93 %.
	for usedRatio(t, dir) < 0.93 {
		entries := make([]types.PutRecordsRequestEntry, 8)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(n)), Data: next(32 << 10)}
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil {
			t.Fatalf("PutRecords after %d records: %v", n, err)
		}
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				refusal("PutRecords entry", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
				continue
			}
			acked[string(entries[i].Data)] = aws.ToString(r.SequenceNumber)
		}
	}
	t.Logf("bulk phase: %d records, %.1f%% used", n, 100*usedRatio(t, dir))

	// Paced: 4 KiB every 10 ms until the guard refuses.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var refused string
	for refused == "" {
		select {
		case <-ctx.Done():
			t.Fatalf("no refusal after %d records (%.1f%% used)", n, 100*usedRatio(t, dir))
		case <-tick.C:
		}
		data := next(4 << 10)
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(strconv.Itoa(n)), Data: data})
		if err != nil {
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("PutRecord: %v", err)
			}
			refusal("PutRecord", ae.ErrorCode(), ae.ErrorMessage())
			refused = ae.ErrorMessage()
			continue
		}
		acked[string(data)] = aws.ToString(out.SequenceNumber)
	}
	used, avail := statfs(t, dir)
	t.Logf("refused after %d records at %.1f%% used (%d bytes still available): %s", n, 100*usedRatio(t, dir), avail, refused)
	if avail < 512<<10 {
		t.Errorf("the guard engaged with only %d bytes left (%d used): too late", avail, used)
	}

	// PutRecords is refused per entry; reads go on, and every acknowledged
	// record is there.
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("a"), Data: []byte("a")}, {PartitionKey: aws.String("b"), Data: []byte("b")}}})
	if err != nil {
		t.Fatalf("PutRecords while refused: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 2 {
		t.Fatalf("PutRecords while refused: FailedRecordCount %d, want 2", aws.ToInt32(out.FailedRecordCount))
	}
	for _, r := range out.Records {
		refusal("PutRecords entry while refused", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
	}
	if v := scrapeGauge(t, admin, "shoal_disk_writes_refused"); v != 1 {
		t.Errorf("shoal_disk_writes_refused while refused: %v, want 1", v)
	}
	if v := scrapeGauge(t, admin, "shoal_disk_used_ratio"); v < 0.95 || v >= 1 {
		t.Errorf("shoal_disk_used_ratio while refused: %v, want in [0.95, 1)", v)
	}
	got := readStream(ctx, t, c, stream)
	for data, seq := range acked {
		if got[data] != seq {
			t.Fatalf("acknowledged record %q (sequence number %s) read back as %q (%d records read, %d acknowledged)", data[:min(len(data), 16)], seq, got[data], len(got), len(acked))
		}
	}
	t.Logf("all %d acknowledged records read back", len(acked))

	// Free space: writes resume by themselves, within a few samples.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("after"), Data: []byte("after")})
		if err == nil {
			break
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("PutRecord after freeing space: %v", err)
		}
		refusal("PutRecord after freeing space", ae.ErrorCode(), ae.ErrorMessage())
		if time.Since(start) > time.Minute {
			t.Fatalf("writes still refused a minute after freeing space (%.1f%% used)", 100*usedRatio(t, dir))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
	}
	t.Logf("writes resumed %v after the ballast was deleted (%.1f%% used)", time.Since(start).Round(time.Millisecond), 100*usedRatio(t, dir))
	if v := scrapeGauge(t, admin, "shoal_disk_writes_refused"); v != 0 {
		t.Errorf("shoal_disk_writes_refused after release: %v, want 0", v)
	}
	if srv.exited() {
		t.Fatalf("the server exited: %v", srv.waitErr)
	}
	out2, _ := srv.log.contents()
	for _, want := range []string{"disk guard engaged", "disk guard released"} {
		if !strings.Contains(out2, want) {
			t.Errorf("server log lacks %q", want)
		}
	}
	if strings.Contains(out2, "no space left on device") {
		t.Errorf("the server met ENOSPC")
	}
}

// isDiskMessage reports whether msg is the disk guard's refusal at the
// default marks.
func isDiskMessage(msg string) bool {
	return strings.HasPrefix(msg, "Rate exceeded: the server's disk is ") && strings.HasSuffix(msg, "% full (high-water mark 95%); writes resume below 90%.")
}

// statfs returns the bytes used and available (to an unprivileged
// process) on the file system holding dir.
func statfs(t *testing.T, dir string) (used, avail uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	bs := uint64(st.Bsize) //nolint:gosec // G115: a block size is positive
	return (st.Blocks - st.Bfree) * bs, st.Bavail * bs
}

// usedRatio is the fraction of dir's file system in use, as df and the
// disk guard compute it.
func usedRatio(t *testing.T, dir string) float64 {
	used, avail := statfs(t, dir)
	return float64(used) / float64(used+avail)
}

// readStream reads every shard of stream from TRIM_HORIZON and returns the
// sequence number of each record by its data.
func readStream(ctx context.Context, t *testing.T, c *kinesis.Client, stream string) map[string]string {
	t.Helper()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	got := map[string]string{}
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("GetShardIterator %s: %v", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords %s: %v", aws.ToString(sh.ShardId), err)
			}
			for _, r := range out.Records {
				got[string(r.Data)] = aws.ToString(r.SequenceNumber)
			}
			if len(out.Records) == 0 || out.NextShardIterator == nil { // caught up with an open shard
				break
			}
			iter = out.NextShardIterator
		}
	}
	return got
}

// scrapeGauge reads an unlabelled sample from the admin listener's /metrics.
func scrapeGauge(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("scrape %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("scrape: no sample %s", name)
	return 0
}
