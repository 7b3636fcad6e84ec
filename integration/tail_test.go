package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestTailBinary runs "shoal server" and "shoal tail --format json" as
// processes: records put before and after a split are all printed once,
// the parent's before the children's, and SIGINT ends the tail with exit
// status 0.
func TestTailBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the shoal binary")
	}
	bin := shoalBinary(t)
	logs := newLogBook(t)
	srv := startServer(t, bin, logs, "tail", t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := servertest.Client(srv.endpoint)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // data -> shard
	putN := func(round string, n int) {
		t.Helper()
		for i := range n {
			d := fmt.Sprintf("%s-%d", round, i)
			out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(d), Data: []byte(d)})
			if err != nil {
				t.Fatal(err)
			}
			want[d] = *out.ShardId
		}
	}
	putN("before", 10)

	cmd := exec.Command(bin, "tail", "--stream", "s", "--from", "TRIM_HORIZON", "--format", "json",
		"--endpoint", srv.endpoint, "--poll-interval", "20ms")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_PROFILE=", "AWS_REGION=us-east-1")
	stderr := logs.open("shoal tail")
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after the pipe's EOF, as StdoutPipe requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines { // let the reader reach Wait
		}
	})

	type line struct {
		ShardID string `json:"shardId"`
		Data    []byte `json:"data"`
	}
	seen := map[string]int{}
	var order []string // shard of each line
	timeout := time.After(time.Minute)
	read := func(n int) {
		t.Helper()
		for len(seen) < n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("tail exited before printing every record: %v", <-exited)
				}
				var rec line
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				d := string(rec.Data)
				if shard, ok := want[d]; !ok || shard != rec.ShardID {
					t.Fatalf("line %q: not a record put (shard %q)", l, shard)
				}
				seen[d]++
				if seen[d] > 1 {
					t.Fatalf("record %q printed twice", d)
				}
				order = append(order, rec.ShardID)
			case <-timeout:
				t.Fatalf("saw %d of %d records", len(seen), n)
			}
		}
	}
	read(len(want))

	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	putN("after", 10)
	read(len(want))
	for i := 1; i < len(order); i++ {
		if order[i-1] != "shardId-000000000000" && order[i] == "shardId-000000000000" {
			t.Fatalf("parent shard printed after a child: %v", order)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		t.Errorf("after the last record: %q", l)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out, _ := stderr.contents()
			t.Fatalf("tail exited with %v after SIGINT; stderr:\n%s", err, strings.TrimSpace(out))
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not exit after SIGINT")
	}
}
