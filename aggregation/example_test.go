package aggregation_test

import (
	"errors"
	"fmt"

	"github.com/shoalstream/shoal/aggregation"
)

// Records are added until the aggregator is full, then built into one
// Kinesis record, which a consumer takes apart again.
func Example() {
	agg, err := aggregation.NewAggregator(aggregation.Config{MaxBytes: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	var sent []aggregation.Record
	flush := func() {
		rec, err := agg.Build()
		if err != nil {
			fmt.Println(err)
			return
		}
		sent = append(sent, rec) // a producer would PutRecords it
		agg.Reset()
	}
	for i := range 5 {
		r := aggregation.UserRecord{PartitionKey: fmt.Sprint("user-", i%2), Data: []byte(fmt.Sprint("event ", i))}
		err := agg.Add(r)
		if errors.Is(err, aggregation.ErrFull) {
			flush()
			err = agg.Add(r)
		}
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	flush()

	for _, rec := range sent {
		fmt.Printf("Kinesis record %q, %d bytes:\n", rec.PartitionKey, len(rec.PartitionKey)+len(rec.Data))
		subs, err := aggregation.Deaggregate(rec.PartitionKey, rec.Data)
		if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
			fmt.Println(err) // ErrCorrupt: still returned as one plain record
		}
		for _, s := range subs {
			fmt.Printf("  %d %s %q aggregated=%v\n", s.SubSequenceNumber, s.PartitionKey, s.Data, s.Aggregated)
		}
	}
	// Output:
	// Kinesis record "user-0", 94 bytes:
	//   0 user-0 "event 0" aggregated=true
	//   1 user-1 "event 1" aggregated=true
	//   2 user-0 "event 2" aggregated=true
	//   3 user-1 "event 3" aggregated=true
	// Kinesis record "user-0", 13 bytes:
	//   0 user-0 "event 4" aggregated=false
}
