package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/consumer/deadletter"
	"github.com/shoalstream/shoal/producer"
)

// Example decodes one user record of a dead-letter stream: the envelope
// that Handler wrote for a record the application gave up on, and the
// record itself.
func Example() {
	// As GetRecords (or a consumer.Processor) would hand it over; the
	// producer aggregates, so de-aggregate first.
	data := []byte(`{"version":1,"application":"orders-app","stream":"orders",` +
		`"shard_id":"shardId-000000000003","sequence_number":"49654",` +
		`"sub_sequence_number":2,"partition_key":"customer-7",` +
		`"approximate_arrival_timestamp":"2026-12-08T10:00:00Z","aggregated":true,` +
		`"error":"charge customer-7: card declined","attempts":5,` +
		`"failed_at":"2026-12-08T10:00:09Z","data":"eyJvcmRlciI6NDJ9"}`)
	subs, err := aggregation.Deaggregate("customer-7", data)
	if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
		log.Fatal(err)
	}
	e, err := deadletter.Decode(subs[0].Data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s %s after %d attempts: %s\n", e.Stream, e.ShardID, e.Position(), e.Attempts, e.Error)
	fmt.Printf("key %s, data %s\n", e.PartitionKey, e.Data)
	// Output:
	// orders shardId-000000000003 49654/2 after 5 attempts: charge customer-7: card declined
	// key customer-7, data {"order":42}
}

// ExampleNew runs a worker of "orders-app" that gives up on a batch after 5
// failed ProcessRecords calls and writes its records to the stream
// "orders-dlq". It needs a server and a database, so it is compiled but not
// run.
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})

	dlq, err := producer.New(client, producer.Config{StreamName: "orders-dlq"})
	if err != nil {
		log.Fatal(err)
	}
	// Closed after Run returns, so that the last dead letters are sent.
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = dlq.Close(closeCtx)
	}()

	w, err := consumer.New(client, store, newProcessor, consumer.Config{
		ApplicationName: "orders-app",
		StreamName:      "orders",
		FailurePolicy: consumer.FailurePolicy{
			Action:      consumer.DeadLetter,
			MaxAttempts: 5,
			DeadLetter:  deadletter.New(dlq),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(ctx); err != nil {
		log.Print(err)
	}
}

// newProcessor would return the application's Processor.
func newProcessor(string) consumer.Processor { return nil }
