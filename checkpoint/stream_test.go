package checkpoint

import (
	"testing"
	"time"
)

// TestStreamIdentityAndKeys: identities and lease keys split back into
// their parts.
func TestStreamIdentityAndKeys(t *testing.T) {
	created := time.UnixMilli(1_700_000_000_123).UTC()
	id := StreamIdentity("arn:aws:kinesis:us-east-1:000000000000:stream/orders", created)
	if id != "arn:aws:kinesis:us-east-1:000000000000:stream/orders@1700000000123" {
		t.Fatalf("StreamIdentity = %q", id)
	}
	arn, at, err := ParseStreamIdentity(id)
	if err != nil || arn != "arn:aws:kinesis:us-east-1:000000000000:stream/orders" || !at.Equal(created) {
		t.Errorf("ParseStreamIdentity = %q, %v, %v", arn, at, err)
	}
	if _, _, err := ParseStreamIdentity("orders"); err == nil {
		t.Error("ParseStreamIdentity(orders): no error")
	}
	for in, want := range map[string]string{id: "orders", "orders": "orders", "arn:aws:kinesis:r:1:stream/x": "x", "": ""} {
		if got := StreamName(in); got != want {
			t.Errorf("StreamName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range []struct{ stream, shard string }{{"", "shardId-000000000001"}, {id, "shardId-000000000001"}} {
		key := LeaseKey(c.stream, c.shard)
		if st, sh := SplitLeaseKey(key); st != c.stream || sh != c.shard {
			t.Errorf("SplitLeaseKey(%q) = %q, %q", key, st, sh)
		}
	}
	if LeaseKey("", "shardId-000000000001") != "shardId-000000000001" {
		t.Error("the empty stream's key is not the shard ID")
	}
	if err := ValidateStreamAndShard("", "a:b"); err == nil {
		t.Error("a shard ID with a colon: no error")
	}
}
