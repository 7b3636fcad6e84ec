package fanout_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// Example reads a stream through enhanced fan-out: it starts a shoal
// server on a loopback port, puts three records, and has a Subscriber
// (registering the consumer "audit") print them.
func Example() {
	dir, err := os.MkdirTemp("", "fanout-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := server.New(server.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(context.Background()) }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := servertest.Client("http://" + ln.Addr().String())
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)}); err != nil {
		log.Fatal(err)
	}
	for _, order := range []string{"apples", "pears", "plums"} {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
			StreamName: aws.String("orders"), PartitionKey: aws.String("customer-1"), Data: []byte(order),
		}); err != nil {
			log.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	wg.Add(3)
	s, err := fanout.New(client, fanout.Config{
		StreamName:       "orders",
		ConsumerName:     "audit",
		StartingPosition: fanout.TrimHorizon(),
		Handler: func(_ context.Context, b fanout.Batch) error {
			for _, r := range b.Records {
				fmt.Printf("%s %s\n", b.ShardID, r.Data)
				wg.Done()
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// shardId-000000000000 apples
	// shardId-000000000000 pears
	// shardId-000000000000 plums
}
