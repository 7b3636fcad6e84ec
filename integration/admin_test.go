package integration

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/nodetest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// The binary's admin listener serves /healthz, /readyz and /metrics apart
// from the Kinesis API; /metrics counts the calls made.
func TestAdminListener(t *testing.T) {
	logs := newLogBook(t)
	p, listening := startTLSProc(t, logs, "admin", t.TempDir(), "--admin-addr", "127.0.0.1:0")
	admin := p.waitFor(t, "the admin line", func(l tlsLogLine) bool { return l.msg() == "admin listening" })
	base := "http://" + admin["admin_addr"].(string)
	endpoint := "http://" + listening["addr"].(string)
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, "/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := servertest.Client(endpoint)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("m"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("m"), PartitionKey: aws.String("k"), Data: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
	}
	code, body := get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`shoal_api_requests_total{code="OK",operation="PutRecord"} 2`,
		`shoal_stream_incoming_records_total{operation="PutRecord",stream="m"} 2`,
		`shoal_stream_incoming_bytes_total{operation="PutRecord",stream="m"} 8`,
		"go_goroutines ",
		"shoal_disk_free_bytes{dir=",
		"shoal_storage_group_commit_batches_count ",
		"shoal_storage_fsync_failures_total 0",
		"shoal_storage_append_duration_seconds_count 2",
		`shoal_stream_segments{stream="m"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Enhanced monitoring through the AWS CLI: the per-shard series appear,
	// and go again.
	t.Run("aws-cli enhanced monitoring", func(t *testing.T) {
		awsCLI, err := exec.LookPath("aws")
		if err != nil {
			nodetest.Missing(t, "the AWS CLI (aws) not found: %v", err)
		}
		env := isolatedAWSEnv(t, "AWS_ACCESS_KEY_ID=shoal", "AWS_SECRET_ACCESS_KEY=shoal")
		common := []string{"--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json"}
		o, e, err := runTool(ctx, env, awsCLI, append([]string{"kinesis", "enable-enhanced-monitoring", "--stream-name", "m", "--shard-level-metrics", "IncomingRecords"}, common...)...)
		if err != nil || !strings.Contains(o, `"IncomingRecords"`) {
			t.Fatalf("aws kinesis enable-enhanced-monitoring: %v\n%s%s", err, o, e)
		}
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("m"), PartitionKey: aws.String("k"), Data: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
		if _, body := get(t, "/metrics"); !strings.Contains(body, `shoal_shard_incoming_records_total{shard="shardId-000000000000",stream="m"} 1`) {
			t.Fatalf("no per-shard series after enable-enhanced-monitoring")
		}
		if o, e, err := runTool(ctx, env, awsCLI, append([]string{"kinesis", "disable-enhanced-monitoring", "--stream-name", "m", "--shard-level-metrics", "ALL"}, common...)...); err != nil {
			t.Fatalf("aws kinesis disable-enhanced-monitoring: %v\n%s%s", err, o, e)
		}
		if _, body := get(t, "/metrics"); strings.Contains(body, "shoal_shard_") {
			t.Fatalf("per-shard series after disable-enhanced-monitoring ALL")
		}
	})

	// The Kinesis port does not serve the admin paths.
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatalf("the Kinesis port answers /metrics with 200")
	}
}
