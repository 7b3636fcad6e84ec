// Package fanout reads Kinesis streams through enhanced fan-out: a
// registered stream consumer subscribes to shards with SubscribeToShard and
// Kinesis pushes their records over event streams, each consumer with its
// own read throughput. It uses only the aws-sdk-go-v2 Kinesis client, so
// it works against Kinesis and against shoal alike.
//
// A [Subscriber] does the whole job: it registers the consumer (or reuses
// it), waits until it is ACTIVE, subscribes to the shards, follows child
// shards after a reshard, and hands the records to a handler:
//
//	s, err := fanout.New(kinesisClient, fanout.Config{
//		StreamName:       "orders",
//		ConsumerName:     "orders-audit",
//		StartingPosition: fanout.TrimHorizon(),
//		Deaggregate:      true,
//		Handler: func(ctx context.Context, b fanout.Batch) error {
//			for _, r := range b.Records { ... }
//			return nil
//		},
//	})
//	...
//	err = s.Run(ctx) // until ctx ends
//
// [SubscribeShard] is the building block for one shard, for a caller that
// decides itself which shards to read: the consumer package's FanOut mode
// uses it for each leased shard.
//
// # Guarantees
//
//   - Per shard, records reach the handler in order, each once: a
//     subscription that ends (Kinesis ends each after 5 minutes) or breaks is
//     replaced by one starting after the last handled event's
//     ContinuationSequenceNumber, and records a server sends again are
//     dropped. Across a restart of the program, resume from the
//     ContinuationSequenceNumber of the last batch processed
//     (Config.ShardPositions); that is at-least-once if the program stops
//     between processing and saving it.
//   - Two readers of one consumer and shard (two Subscribers, or two
//     processes) do not divide the records between them: Kinesis lets one
//     subscription at a time hold the consumer and shard, and a newer one
//     takes over once the current one is 5 seconds old, so the two take
//     it from each other in turns. Each resumes from its own position, so
//     each still hands every record to its handler once, in order: the
//     caller sees every record twice, once per reader. Give each
//     application its own consumer, and divide shards between processes
//     with Config.ShardIDs (or the consumer package's leases).
//   - Parents before children: a child shard is read only after each of
//     its parents that the Subscriber reads has ended and its last batch
//     was handled.
//   - Back-pressure: while the handler runs for a shard, nothing more is
//     read from that shard's connection; memory use does not grow with a
//     slow handler (the SDK holds at most one decoded event per shard).
//
// # Retries
//
// ResourceInUseException (a re-subscription within Kinesis's 5-second
// window, or another reader's takeover), LimitExceededException,
// InternalFailureException, connection errors and a subscription silent for
// Options.IdleTimeout are retried after a back-off (Options.Backoff),
// forever. ResourceNotFoundException, InvalidArgumentException,
// AccessDeniedException and ValidationException end SubscribeShard and
// Run: retrying the same request cannot fix them.
//
// # Shutdown
//
// Run and SubscribeShard return when their ctx ends, after closing every
// subscription and stopping every goroutine they started. A handler call
// in progress gets the same ctx and should return when it ends.
//
// # Caveats
//
//   - The HTTP client's timeout bounds a whole subscription (headers and
//     body): an *http.Client with a Timeout shorter than the subscription
//     lifetime cuts every subscription short. It is retried without loss,
//     but costs a reconnection each time; give fan-out readers a client
//     without a Timeout.
//   - A Subscriber never deregisters its consumer: Kinesis allows 20 per
//     stream, and deregistering is the application's decision.
//   - A merge child is followed only when the Subscriber reads both parents
//     (see [Subscriber.Run]).
package fanout
