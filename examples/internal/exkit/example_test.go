package exkit_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/examples/internal/exkit"
)

// Example starts an embedded server, creates a stream on it and lists its
// shards.
func Example() {
	srv, err := exkit.StartServer("", nil)
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			panic(err)
		}
	}()
	ctx := context.Background()
	// An embedded server checks no signature: placeholder credentials.
	creds, err := srv.Credentials(ctx, "")
	if err != nil {
		panic(err)
	}
	client := exkit.Client(srv.Endpoint, creds)
	if err := exkit.EnsureStream(ctx, client, "demo", 2); err != nil {
		panic(err)
	}
	// A second call finds the stream and leaves it as it is.
	if err := exkit.EnsureStream(ctx, client, "demo", 5); err != nil {
		panic(err)
	}
	out, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("demo")})
	if err != nil {
		panic(err)
	}
	for _, s := range out.Shards {
		fmt.Println(*s.ShardId)
	}
	// Output:
	// shardId-000000000000
	// shardId-000000000001
}
