package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// countingProc counts the records delivered, by data, and the lost leases;
// it checkpoints every batch.
type countingProc struct {
	consumer.BaseProcessor
	mu     *sync.Mutex
	counts map[string]int
	lost   *int
}

func (p countingProc) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.mu.Lock()
	for _, r := range in.Records {
		p.counts[string(r.Data)]++
	}
	p.mu.Unlock()
	if err := in.Checkpointer.Checkpoint(ctx); err != nil && !errors.Is(err, checkpoint.ErrLeaseLost) {
		return err
	}
	return nil
}

func (p countingProc) LeaseLost(context.Context, consumer.LeaseLostInput) {
	p.mu.Lock()
	*p.lost++
	p.mu.Unlock()
}

// TestLeasesCommands runs "shoal leases reset", "release" and "delete" in
// process against a consumer worker running on a test server and
// PostgreSQL: the reset makes it process every record again, the release
// makes it drop a shard and take it again from its checkpoint, and delete
// (once it has stopped) removes the application's leases.
func TestLeasesCommands(t *testing.T) {
	awscredstest.Isolate(t) // placeholder credentials: the server does not check them
	ctx := t.Context()
	srv := servertest.Start(t, server.Config{Fsync: storage.FsyncNever})
	client := srv.Client()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var entries []types.PutRecordsRequestEntry
	for i := range 20 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", i)), Data: fmt.Appendf(nil, "r%02d", i)})
	}
	if _, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("orders"), Records: entries}); err != nil {
		t.Fatal(err)
	}
	pool, schema := pgtest.New(t)
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: "leases", FailoverTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	var (
		mu     sync.Mutex
		counts = map[string]int{}
		lost   int
	)
	w, err := consumer.New(client, store, func(string) consumer.Processor { return countingProc{mu: &mu, counts: counts, lost: &lost} }, consumer.Config{
		ApplicationName: "orders-app", StreamName: "orders", WorkerID: "w1", InitialPosition: consumer.TrimHorizon,
		IdleTimeBetweenReads: 50 * time.Millisecond, TaskBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	var runErr error
	finished := make(chan struct{})
	go func() {
		runErr = w.Run(wctx)
		close(finished)
	}()
	defer func() {
		stop()
		<-finished
	}()
	// each waits until every record was delivered n times.
	each := func(n int) {
		t.Helper()
		wait.Eventually(t, 20*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			for i := range 20 {
				if d := fmt.Sprintf("r%02d", i); counts[d] != n {
					return fmt.Errorf("%s delivered %d times, want %d", d, counts[d], n)
				}
			}
			return nil
		})
	}
	each(1)

	leases := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append(append([]string{"leases"}, args...), "--application", "orders-app", "--database-url", pgtest.URL(), "--schema", schema, "--table", "leases")
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("shoal %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	out := leases("reset", "--stream", "orders", "--to", "TRIM_HORIZON", "--endpoint", srv.Endpoint)
	if !strings.Contains(out, "2 leases reset to TRIM_HORIZON") {
		t.Errorf("reset:\n%s", out)
	}
	each(2)

	shard := w.HeldShards()[0]
	before, err := store.GetLease(ctx, "orders-app", shard)
	if err != nil {
		t.Fatal(err)
	}
	out = leases("release", "--shard", shard)
	if !strings.Contains(out, "released (was held by w1)") {
		t.Errorf("release:\n%s", out)
	}
	wait.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		n := lost
		mu.Unlock()
		l, err := store.GetLease(ctx, "orders-app", shard)
		if err != nil || n != 3 || l.Owner != "w1" || l.Counter <= before.Counter+1 {
			return fmt.Errorf("LeaseLost %d times (2 by the reset), lease %+v, %v: want it taken again", n, l, err)
		}
		return nil
	})
	each(2) // taken again from its checkpoint: nothing repeated

	stop()
	<-finished
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if out = leases("delete"); !strings.Contains(out, "application orders-app: 2 leases deleted") {
		t.Errorf("delete:\n%s", out)
	}
	if out = leases(); !strings.Contains(out, "application orders-app: 0 leases") {
		t.Errorf("after delete:\n%s", out)
	}
}
