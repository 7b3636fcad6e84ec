package fileengine

import (
	"context"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

// BenchmarkAppendRoundRobin appends one record to each of 2,000 logs in
// turn, with every log kept open (fits) and with at most 256 open (thrash:
// every append reopens an evicted log). FsyncNever, so that the cost of
// closing and reopening shows rather than the disk's.
func BenchmarkAppendRoundRobin(b *testing.B) {
	for _, c := range []struct {
		name string
		max  int
	}{{"fits", 4096}, {"thrash", 256}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			e, err := Open(Config{Dir: b.TempDir(), Fsync: FsyncNever, MaxOpenLogs: c.max})
			if err != nil {
				b.Fatal(err)
			}
			defer closeEngine(b, e)
			const n = 2000
			logs := make([]engine.Log, n)
			for i := range logs {
				if logs[i], err = e.CreateLog(ctx, engine.LogID{Stream: "0011223344556677", Shard: uint32(i)}); err != nil {
					b.Fatal(err)
				}
				if _, _, err := logs[i].Append(ctx, makeRecs("w", 1)); err != nil {
					b.Fatal(err)
				}
			}
			recs := makeRecs("x", 1)
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := logs[i%n].Append(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
