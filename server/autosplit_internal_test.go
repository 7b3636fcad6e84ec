package server

import (
	"testing"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// TestSplitKey checks the split point: the median of the sampled keys when
// it splits the range, the midpoint otherwise.
func TestSplitKey(t *testing.T) {
	sh := &shard{start: hashkey.Key{Lo: 100}, end: hashkey.Key{Lo: 200}}
	if got := splitKey(sh); got != (hashkey.Key{Lo: 151}) {
		t.Fatalf("no samples: split at %v, want the midpoint 151", got)
	}
	for i := range 4 * keySamples {
		sh.heat.sample(hashkey.Key{Lo: 110 + uint64(i%3)}) // 110, 111, 112
	}
	if got := splitKey(sh); got != (hashkey.Key{Lo: 111}) {
		t.Fatalf("split at %v, want the median 111", got)
	}
	for range 4 * keySamples {
		sh.heat.sample(hashkey.Key{Lo: 100}) // the starting key cannot split
	}
	if got := splitKey(sh); got != (hashkey.Key{Lo: 151}) {
		t.Fatalf("median at the start: split at %v, want the midpoint 151", got)
	}
	full := &shard{start: hashkey.Key{}, end: hashkey.Max}
	if got := splitKey(full); got != (hashkey.Key{Hi: 1 << 63}) {
		t.Fatalf("whole range: split at %v, want 2^127", got)
	}
}

// BenchmarkShardHeat is the cost the put path pays per record for the
// ON_DEMAND load measurement, with every CPU writing to one shard.
func BenchmarkShardHeat(b *testing.B) {
	var h shardHeat
	b.RunParallel(func(pb *testing.PB) {
		k := hashkey.Key{Lo: 1}
		for pb.Next() {
			h.sample(k)
			h.add(100, 1)
		}
	})
}
