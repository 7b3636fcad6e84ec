package producer

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/benchpair"
)

var sinkHash hashkey.Key

// BenchmarkHashCache measures the hash key of a partition key per Put,
// through the cache against hashkey.FromPartitionKey, paired (the two
// alternate in one loop): with 1,000 repeating keys, as BenchmarkProducer
// puts, and with keys that never repeat (the cache's worst case).
func BenchmarkHashCache(b *testing.B) {
	for _, v := range []struct {
		name   string
		unique bool
	}{{"repeating", false}, {"unique", true}} {
		b.Run(v.name, func(b *testing.B) {
			const n = 4096
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%d", i%1000)
				if v.unique {
					keys[i] = fmt.Sprintf("%08x-1f2e-4d3c-8b7a-0123456789ab", i)
				}
			}
			c := newHashCache()
			for _, k := range keys {
				c.key(k)
			}
			var i atomic.Int64
			const per = 64 // keys per round
			b.ReportAllocs()
			spent := benchpair.Time(b, func() error {
				j := int(i.Load())
				for k := range per {
					sinkHash = hashkey.FromPartitionKey(keys[(j+k)%n])
				}
				return nil
			}, func() error {
				j := int(i.Add(per)) - per
				for k := range per {
					sinkHash = c.key(keys[(j+k)%n])
				}
				if v.unique { // keys that were never seen: fresh strings
					keys[j%n] = fmt.Sprintf("%08x-1f2e-4d3c-8b7a-0123456789ab", j+n)
				}
				return nil
			})
			b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N)/per, "md5-ns/key")
			b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N)/per, "cache-ns/key")
		})
	}
}

func TestHashCache(t *testing.T) {
	c := newHashCache()
	for round := range 3 {
		for i := range 5000 {
			pk := fmt.Sprintf("k-%d", i%(1000+round*1500))
			if got, want := c.key(pk), hashkey.FromPartitionKey(pk); got != want {
				t.Fatalf("key(%q) = %v, want %v", pk, got, want)
			}
		}
	}
}
