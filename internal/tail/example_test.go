package tail_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/shoalstream/shoal/internal/tail"
)

// Example follows the stream "orders" of a shoal server on 127.0.0.1:4567
// from its oldest record, printing JSON lines, until SIGINT. (It is only
// compiled: it needs a server.)
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	client, err := tail.NewClient(ctx, "http://127.0.0.1:4567", "us-east-1", "")
	if err != nil {
		log.Fatal(err)
	}
	err = tail.Run(ctx, tail.Config{
		Client: client,
		Stream: "orders",
		From:   tail.From{Kind: tail.TrimHorizon},
		Format: tail.JSON,
		Out:    os.Stdout,
		Log:    os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
}

// ExampleFormat_Append shows the three formats of one record.
func ExampleFormat_Append() {
	r := tail.Record{
		ShardID:        "shardId-000000000001",
		SequenceNumber: "171470411456563632614412473437075455727",
		ArrivalTime:    time.Date(2025, 3, 4, 5, 6, 7, 89e6, time.UTC),
		PartitionKey:   "user-42",
		Data:           []byte("hello\n"),
	}
	for _, f := range []tail.Format{tail.Text, tail.JSON, tail.Hex} {
		fmt.Print(string(f.Append(nil, r)))
	}
	// Output:
	// shardId-000000000001 171470411456563632614412473437075455727 2025-03-04T05:06:07.089Z "user-42" hello\n
	// {"shardId":"shardId-000000000001","sequenceNumber":"171470411456563632614412473437075455727","approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"user-42","data":"aGVsbG8K"}
	// shardId-000000000001 171470411456563632614412473437075455727 2025-03-04T05:06:07.089Z "user-42" 6 bytes
	// 00000000  68 65 6c 6c 6f 0a                                 |hello.|
}
