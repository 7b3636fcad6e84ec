package aggregation

import (
	"errors"
	"fmt"
	"testing"
)

// benchRecords returns n user records of dataLen bytes whose partition keys
// cycle through keys distinct values.
func benchRecords(n, keys, dataLen int) []UserRecord {
	data := make([]byte, dataLen)
	for i := range data {
		data[i] = byte(i)
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("partition-key-%08d", i)
	}
	recs := make([]UserRecord, n)
	for i := range recs {
		recs[i] = UserRecord{PartitionKey: names[i%keys], Data: data}
	}
	return recs
}

// BenchmarkAggregate measures one user record of 100 bytes going into 1 MiB
// aggregates: Add, plus its share of Build (protobuf encoding and MD5) and
// Reset. With distinct keys every record also adds a key table entry.
func BenchmarkAggregate(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			recs := benchRecords(100_000, keys, 100)
			a, err := NewAggregator(Config{})
			if err != nil {
				b.Fatal(err)
			}
			built := 0
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := recs[i%len(recs)]
				if err := a.Add(r); errors.Is(err, ErrFull) {
					if _, err := a.Build(); err != nil {
						b.Fatal(err)
					}
					built++
					a.Reset()
					err = a.Add(r)
					if err != nil {
						b.Fatal(err)
					}
				} else if err != nil {
					b.Fatal(err)
				}
			}
			if _, err := a.Build(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(built+1), "records/aggregate")
		})
	}
}

// BenchmarkDeaggregate measures reading one 1 MiB aggregate of 100-byte
// records: MD5 check, protobuf decoding and building the SubRecords.
func BenchmarkDeaggregate(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			a, err := NewAggregator(Config{})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range benchRecords(100_000, keys, 100) {
				if err := a.Add(r); err != nil {
					break
				}
			}
			rec, err := a.Build()
			if err != nil {
				b.Fatal(err)
			}
			n := a.Len()
			var buf []SubRecord
			b.SetBytes(int64(len(rec.Data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				buf, err = AppendDeaggregate(buf[:0], rec.PartitionKey, rec.Data)
				if err != nil || len(buf) != n {
					b.Fatalf("%d records, err %v", len(buf), err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
