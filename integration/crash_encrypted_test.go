package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestCrashRecoveryEncrypted is TestCrashRecovery on a stream encrypted at
// rest (--encrypt-all): the server is killed with SIGKILL under PutRecords
// load and restarted, and every acknowledged record must read back in
// order and byte-exact, decrypted with the data keys of the shards' catalog
// records and the default key kept in the data directory.
func TestCrashRecoveryEncrypted(t *testing.T) {
	cycles := envInt(t, "SHOAL_CRASH_CYCLES", 6)
	h := newHarness(t, "crash-encrypted", "--segment-bytes", strconv.Itoa(1<<20), "--encrypt-all")
	p := h.start("initial")
	h.createStream(p, 4)
	for cycle := 1; cycle <= cycles; cycle++ {
		name := fmt.Sprintf("cycle %d", cycle)
		h.crashCycle(p, name, h.killDelay())
		p = h.start(name + " restart")
		h.m.verify(p.endpoint, name)
		if t.Failed() {
			t.FailNow()
		}
	}
	h.stopGracefully(p, "final")
	p = h.start("final restart")
	h.m.verify(p.endpoint, "final")
	// The records verify read were stored encrypted.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := servertest.Client(p.endpoint)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("crash-encrypted"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) == 0 || out.Records[0].EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("first records of shard 0: %d, encryption %v", len(out.Records), out.Records)
	}
	h.summary(fmt.Sprintf("%d crash cycles on an encrypted stream", cycles))
}
