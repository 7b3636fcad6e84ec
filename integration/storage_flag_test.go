package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestStorageMemory runs "shoal server --storage memory": the API works
// (a record put is read back), nothing is written to --data-dir, and a
// restart starts empty. An unknown engine name is refused at start.
func TestStorageMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	bin := shoalBinary(t)
	logs := newLogBook(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := startServer(t, bin, logs, "memory", dataDir, "--storage", "memory")
	c := servertest.Client(p.endpoint)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("mem"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("mem"), PartitionKey: aws.String("k"), Data: []byte("in memory")})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("mem"), ShardId: put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: put.SequenceNumber})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != "in memory" || aws.ToString(got.Records[0].SequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Fatalf("read back %+v, want the record put at %s", got.Records, aws.ToString(put.SequenceNumber))
	}
	if ents, err := os.ReadDir(dataDir); err != nil || len(ents) != 0 {
		t.Fatalf("--storage memory wrote to --data-dir: %v %v", ents, err)
	}
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	}

	p = startServer(t, bin, logs, "memory again", dataDir, "--storage", "memory")
	c = servertest.Client(p.endpoint)
	list, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.StreamNames) != 0 {
		t.Fatalf("after a restart with --storage memory: streams %v, want none", list.StreamNames)
	}

	out, err := exec.CommandContext(ctx, bin, "server", "--storage", "tape", "--addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown engine "tape"`) {
		t.Fatalf("--storage tape: %v, output %q; want a refusal naming the engine", err, out)
	}
}
