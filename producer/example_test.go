package producer_test

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/server"
)

// Example runs a shoal server on a loopback port, puts three records
// through a producer and prints where each was stored.
func Example() {
	dir, _ := os.MkdirTemp("", "shoal-producer-example")
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := server.New(server.Config{DataDir: dir})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(context.Background()) }()

	ctx := context.Background()
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + ln.Addr().String()),
		Credentials:  credentials.NewStaticCredentialsProvider("any", "any", ""),
	})
	_, err = client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(2)})
	if err != nil {
		panic(err)
	}

	p, err := producer.New(client, producer.Config{StreamName: "orders"})
	if err != nil {
		panic(err)
	}
	var pending []*producer.Pending
	for _, key := range []string{"customer-1", "customer-4", "customer-1"} {
		pd, err := p.Put(ctx, key, []byte("order for "+key))
		if err != nil {
			panic(err)
		}
		pending = append(pending, pd)
	}
	// Close sends what is buffered and waits for every result.
	if err := p.Close(ctx); err != nil {
		panic(err)
	}
	for _, pd := range pending {
		res, err := pd.Wait(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s -> %s, sub-sequence %d\n", res.Record.PartitionKey, res.ShardID, res.SubSequenceNumber)
	}
	// Output:
	// customer-1 -> shardId-000000000001, sub-sequence 0
	// customer-4 -> shardId-000000000000, sub-sequence 0
	// customer-1 -> shardId-000000000001, sub-sequence 1
}
