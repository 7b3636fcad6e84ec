package leasescli

import (
	"slices"
	"testing"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
)

// TestStreamKeys: a reset or release of a multi-stream application's
// stream selects that stream's leases, of its newest identity (the stream
// was re-created); an application of one stream is reset whole, as before.
func TestStreamKeys(t *testing.T) {
	const arn = "arn:aws:kinesis:us-east-1:000000000000:stream/"
	oldOrders := checkpoint.StreamIdentity(arn+"orders", time.UnixMilli(1_000))
	newOrders := checkpoint.StreamIdentity(arn+"orders", time.UnixMilli(2_000))
	payments := checkpoint.StreamIdentity(arn+"payments", time.UnixMilli(1_000))
	leases := []checkpoint.Lease{
		{Stream: oldOrders, ShardID: "shardId-000000000000"},
		{Stream: newOrders, ShardID: "shardId-000000000000"},
		{Stream: newOrders, ShardID: "shardId-000000000001"},
		{Stream: payments, ShardID: "shardId-000000000000"},
	}
	keys, err := resetKeys(leases, "orders", "")
	want := []string{checkpoint.LeaseKey(newOrders, "shardId-000000000000"), checkpoint.LeaseKey(newOrders, "shardId-000000000001")}
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("resetKeys(orders) = %q, %v; want %q", keys, err, want)
	}
	if keys, err := resetKeys(leases, "payments", "shardId-000000000000"); err != nil || !slices.Equal(keys, []string{checkpoint.LeaseKey(payments, "shardId-000000000000")}) {
		t.Errorf("resetKeys(payments, shard 0) = %q, %v", keys, err)
	}
	if key, err := streamLeaseKey(leases, oldOrders, "shardId-000000000000"); err != nil || key != checkpoint.LeaseKey(oldOrders, "shardId-000000000000") {
		t.Errorf("streamLeaseKey(old identity) = %q, %v", key, err)
	}
	if _, err := resetKeys(leases, "refunds", ""); err == nil {
		t.Error("resetKeys of a stream without leases: no error")
	}
	single := []checkpoint.Lease{{ShardID: "shardId-000000000000"}, {ShardID: "shardId-000000000001"}}
	if keys, err := resetKeys(single, "orders", ""); err != nil || keys != nil {
		t.Errorf("resetKeys of a single-stream application = %q, %v; want every lease", keys, err)
	}
	if got := streamColumn(newOrders); got != "orders@1970-01-01T00:00:02Z" {
		t.Errorf("streamColumn = %q", got)
	}
}
