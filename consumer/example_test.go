package consumer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
)

// printer is a Processor that prints each record and checkpoints after
// each batch.
type printer struct{ shardID string }

func (p *printer) Initialize(_ context.Context, in consumer.InitializeInput) error {
	log.Printf("%s: starting after %s", in.ShardID, in.Checkpoint)
	return nil
}

func (p *printer) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	for _, r := range in.Records {
		fmt.Printf("%s %s/%d %s: %s\n", p.shardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
	}
	// The records are handled: resume after the last one after a restart.
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *printer) LeaseLost(context.Context, consumer.LeaseLostInput) {
	// Another worker has the shard now; nothing to flush, nothing may be
	// checkpointed.
}

func (p *printer) ShardEnded(ctx context.Context, in consumer.ShardEndedInput) error {
	// Required: lets the shard's children start.
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *printer) ShutdownRequested(ctx context.Context, in consumer.ShutdownRequestedInput) error {
	// Optional: saves the next owner from repeating the last batch.
	return in.Checkpointer.Checkpoint(ctx)
}

// Example runs one worker of the application "orders-app" on the stream
// "orders" of a shoal server, keeping leases in PostgreSQL, until
// interrupted. Start more copies to share the shards. It needs a database
// and a server, so it is compiled but not run.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	// The Store's failover time is the worker's: a lease not renewed for
	// that long is taken over by another worker.
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{FailoverTime: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close() }() // always nil

	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
	logger, _ := zap.NewProduction()

	w, err := consumer.New(client, store, func(shardID string) consumer.Processor {
		return &printer{shardID: shardID}
	}, consumer.Config{
		ApplicationName: "orders-app",
		StreamName:      "orders",
		InitialPosition: consumer.TrimHorizon,
		FailoverTime:    10 * time.Second,
		Logger:          logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Run returns after a graceful shutdown once ctx ends (Ctrl-C): each
	// shard checkpoints in ShutdownRequested and its lease is released for
	// another worker to take at once.
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
