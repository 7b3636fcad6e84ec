package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/server"
)

// A closed shard is listed until the retention period has passed since it
// closed, then dropped with its records; its children stay, naming it as
// their parent, as in Kinesis.
func TestExpiredClosedShardsDropped(t *testing.T) {
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now, RetentionCheckInterval: time.Hour})
	e.createStream("s", 1)
	e.put("s", "k", []byte("in the parent"))
	parent := e.shards("s")[0]
	if err := e.split("s", aws.ToString(parent.ShardId), midOf(parent.HashKeyRange)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(23 * time.Hour)
	e.srv.EnforceRetentionNow()
	if n := len(e.shards("s")); n != 3 {
		t.Fatalf("%d shards listed 23 h after the split, want 3 (the parent is kept for the retention period)", n)
	}
	clock.Advance(2 * time.Hour)
	e.srv.EnforceRetentionNow()
	shs := e.shards("s")
	if len(shs) != 2 {
		t.Fatalf("%d shards listed 25 h after the split, want the 2 children", len(shs))
	}
	for _, sh := range shs {
		if aws.ToString(sh.ParentShardId) != aws.ToString(parent.ShardId) {
			t.Fatalf("child %s names parent %q, want %s", aws.ToString(sh.ShardId), aws.ToString(sh.ParentShardId), aws.ToString(parent.ShardId))
		}
	}
	_, err := e.nr.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: parent.ShardId, ShardIteratorType: "TRIM_HORIZON"})
	if !isAPIError(err, "ResourceNotFoundException") {
		t.Fatalf("GetShardIterator on the dropped parent: %v, want ResourceNotFoundException", err)
	}
	// The drop is durable: a restart on the same data lists the children only.
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, server.Config{Now: clock.Now, DataDir: e.srv.Config.DataDir})
	if n := len(e.shards("s")); n != 2 {
		t.Fatalf("%d shards after a restart, want 2", n)
	}
}
