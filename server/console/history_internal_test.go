package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
)

// TestHistoryBounds: the History keeps at most MaxHistoryStreams streams
// and MaxHistoryShards shard series; past the bound a stream (or shard)
// without a value for an hour makes room, else the newcomer's values are
// dropped.
func TestHistoryBounds(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	h := NewHistory(clock.Now)
	for i := range MaxHistoryStreams {
		h.Incoming(fmt.Sprintf("s%d", i), "PutRecord", 1, 1)
	}
	h.Incoming("extra", "PutRecord", 1, 1)
	if got := h.snapshot("extra", 1, nil).Series["IncomingRecords"]; got[len(got)-1] != 0 {
		t.Errorf("a stream beyond the bound was kept: %v", got)
	}
	// s0 stays quiet for more than an hour; the others do not.
	clock.Advance(30 * time.Minute)
	for i := 1; i < MaxHistoryStreams; i++ {
		h.Incoming(fmt.Sprintf("s%d", i), "PutRecord", 1, 1)
	}
	clock.Advance(31 * time.Minute)
	h.Incoming("extra", "PutRecord", 1, 1)
	if got := h.snapshot("extra", 1, nil).Series["IncomingRecords"]; got[len(got)-1] != 1 {
		t.Errorf("no room made for a new stream: %v", got)
	}
	h.mu.RLock()
	n, kept := len(h.streams), h.streams["s0"] != nil
	h.mu.RUnlock()
	if n != MaxHistoryStreams || kept {
		t.Errorf("%d streams, s0 kept %v", n, kept)
	}

	// Shard series, across streams.
	h = NewHistory(clock.Now)
	h.ShardMonitoring("a", []string{"ALL"})
	for i := range MaxHistoryShards {
		h.Shard("a", fmt.Sprintf("shard-%d", i), "IncomingRecords", 1)
	}
	h.Shard("a", "one-more", "IncomingRecords", 1)
	if got := h.shards.Load(); got != MaxHistoryShards {
		t.Errorf("%d shard series, want %d", got, MaxHistoryShards)
	}
	if _, ok := h.snapshot("a", 1, shardMetricNames).Shards["one-more"]; ok {
		t.Errorf("a shard beyond the bound was kept")
	}
	clock.Advance(61 * time.Minute)
	h.Shard("a", "one-more", "IncomingRecords", 1)
	if got := h.snapshot("a", 1, shardMetricNames).Shards; len(got) != 1 || got["one-more"]["IncomingRecords"][5] != 1 {
		t.Errorf("stale shards not dropped for a new one: %d shards", len(got))
	}
	// Disabling enhanced monitoring drops the shard series; deleting the
	// stream drops the rest.
	h.ShardMonitoring("a", nil)
	if got := h.shards.Load(); got != 0 {
		t.Errorf("%d shard series after disabling", got)
	}
	h.StreamDeleted("a")
	h.mu.RLock()
	n = len(h.streams)
	h.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d streams after the delete", n)
	}
}
