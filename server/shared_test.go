package server_test

// Tests of servers sharing one catalog (engine.CatalogWatcher), on one
// in-process memory engine whose catalog announces changes to every
// server, with a gate that holds the announcements back so that a test can
// make one server's view stale on purpose. The NATS engine's integration
// tests (integration/nats_*_test.go) run the same situations on real
// processes.

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// sharedEngine is one memory engine that several servers share, each
// through its own view (view), as servers on one NATS cluster share it.
type sharedEngine struct {
	engine.Engine
	irreversible bool // Unseal fails with engine.ErrIrreversible, as on JetStream

	mu       sync.Mutex
	watchers []*watcher
}

// watcher is one server's catalog watch; while held, names queue up.
type watcher struct {
	mu      sync.Mutex
	held    bool
	pending []string
	ch      chan string
}

func newShared(irreversible bool) *sharedEngine {
	return &sharedEngine{Engine: memengine.New(memengine.Config{}), irreversible: irreversible}
}

// view returns the engine as one server sees it, and the gate of its watch.
func (e *sharedEngine) view() (*engineView, *watcher) {
	w := &watcher{ch: make(chan string, 1024)}
	e.mu.Lock()
	e.watchers = append(e.watchers, w)
	e.mu.Unlock()
	return &engineView{e: e, w: w}, w
}

func (e *sharedEngine) announce(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.watchers {
		w.send(name)
	}
}

func (w *watcher) send(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held {
		w.pending = append(w.pending, name)
		return
	}
	w.ch <- name
}

// hold stops delivering changes to the server; release delivers what
// queued and resumes.
func (w *watcher) hold() {
	w.mu.Lock()
	w.held = true
	w.mu.Unlock()
}

func (w *watcher) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = false
	for _, n := range w.pending {
		w.ch <- n
	}
	w.pending = nil
}

// engineView is the engine one server opens: shared logs and catalog, its
// own watch. Close does not close the shared engine.
type engineView struct {
	e *sharedEngine
	w *watcher
}

func (v *engineView) Catalog() engine.Catalog { return announcingCatalog{v.e.Engine.Catalog(), v.e} }
func (v *engineView) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	l, err := v.e.Engine.CreateLog(ctx, id)
	return v.wrap(l), err
}
func (v *engineView) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	l, err := v.e.Engine.OpenLog(ctx, id)
	return v.wrap(l), err
}
func (v *engineView) DeleteLog(ctx context.Context, id engine.LogID) error {
	return v.e.Engine.DeleteLog(ctx, id)
}
func (v *engineView) Logs(ctx context.Context) ([]engine.LogID, error) { return v.e.Engine.Logs(ctx) }
func (v *engineView) Close() error                                     { return nil }

func (v *engineView) WatchCatalog(ctx context.Context) (<-chan string, error) {
	out := make(chan string)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-v.w.ch:
				select {
				case out <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (v *engineView) wrap(l engine.Log) engine.Log {
	if l == nil || !v.e.irreversible {
		return l
	}
	return irreversibleLog{l}
}

type irreversibleLog struct{ engine.Log }

func (irreversibleLog) Unseal(context.Context) error { return engine.ErrIrreversible }

type announcingCatalog struct {
	engine.Catalog
	e *sharedEngine
}

func (c announcingCatalog) PutStream(ctx context.Context, m engine.StreamMeta, expect uint64) (uint64, error) {
	v, err := c.Catalog.PutStream(ctx, m, expect)
	if err == nil {
		c.e.announce(m.Name)
	}
	return v, err
}

func (c announcingCatalog) DeleteStream(ctx context.Context, name string, expect uint64) error {
	err := c.Catalog.DeleteStream(ctx, name, expect)
	if err == nil {
		c.e.announce(name)
	}
	return err
}

// twoServers starts two servers on one shared engine.
func twoServers(t *testing.T, irreversible bool, cfg server.Config) (a, b *env, wa, wb *watcher) {
	t.Helper()
	e := newShared(irreversible)
	t.Cleanup(func() { _ = e.Engine.Close() })
	va, wa := e.view()
	vb, wb := e.view()
	ca, cb := cfg, cfg
	ca.Engine, cb.Engine = va, vb
	return newEnv(t, ca), newEnv(t, cb), wa, wb
}

// openShards lists the open shards of name through e.
func (e *env) openShards(name string) []types.Shard {
	e.t.Helper()
	shs, err := e.tryOpenShards(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return shs
}

// tryOpenShards is openShards for polls: it returns the error.
func (e *env) tryOpenShards(name string) ([]types.Shard, error) {
	out, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		return nil, fmt.Errorf("ListShards %s: %w", name, err)
	}
	return out.Shards, nil
}

// awaitOpen polls until e lists n open shards of name.
func (e *env) awaitOpen(name string, n int) {
	e.t.Helper()
	wait.Eventually(e.t, 10*time.Second, func() error {
		shs, err := e.tryOpenShards(name)
		if err != nil {
			return err
		}
		if len(shs) != n {
			return fmt.Errorf("%d open shards of %s, want %d", len(shs), name, n)
		}
		return nil
	})
}

// A stream created, changed, resharded and deleted through one server is
// seen so by the other.
func TestSharedCatalogFollows(t *testing.T) {
	a, b, _, _ := twoServers(t, true, server.Config{})
	a.createStream("s", 2)
	b.awaitOpen("s", 2)
	p := a.put("s", "k", []byte("through A"))
	if recs := b.readShard("s", aws.ToString(p.ShardId)); len(recs) != 1 || string(recs[0].Data) != "through A" {
		t.Fatalf("B reads %v from %s", recs, aws.ToString(p.ShardId))
	}
	if _, err := a.c.AddTagsToStream(a.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	sh := a.openShards("s")[0]
	if err := a.split("s", aws.ToString(sh.ShardId), midOf(sh.HashKeyRange)); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		tags, err := b.c.ListTagsForStream(b.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s")})
		if err != nil {
			return err
		}
		shs, err := b.tryOpenShards("s")
		if err != nil {
			return err
		}
		if len(shs) != 3 || len(tags.Tags) != 1 {
			return fmt.Errorf("B lists %d open shards and %d tags, want 3 and 1", len(shs), len(tags.Tags))
		}
		return nil
	})
	if _, err := a.c.DeleteStream(a.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		_, err := b.c.DescribeStreamSummary(b.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if !isAPIError(err, "ResourceNotFoundException") {
			return fmt.Errorf("B describes the deleted stream: %v", err)
		}
		return nil
	})
}

// A put through a server that has not yet seen a split lands in the sealed
// parent's log, fails there, and is routed again to the child once the
// server has read the catalog: never into the closed parent, never lost.
func TestSharedStalePutReroutes(t *testing.T) {
	a, b, _, wb := twoServers(t, true, server.Config{})
	a.createStream("s", 1)
	b.awaitOpen("s", 1)
	wb.hold()
	sh := a.openShards("s")[0]
	if err := a.split("s", aws.ToString(sh.ShardId), midOf(sh.HashKeyRange)); err != nil {
		t.Fatal(err)
	}
	if n := len(b.openShards("s")); n != 1 {
		t.Fatalf("B's view is not stale: %d open shards", n)
	}
	out, err := b.c.PutRecords(b.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k1"), Data: []byte("one"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey},
		{PartitionKey: aws.String("k2"), Data: []byte("two"), ExplicitHashKey: sh.HashKeyRange.EndingHashKey},
	}})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords through the stale server: %v, %+v", err, out)
	}
	one, err := b.c.PutRecord(b.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k3"), Data: []byte("three"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*string{out.Records[0].ShardId, out.Records[1].ShardId, one.ShardId} {
		if aws.ToString(id) == aws.ToString(sh.ShardId) {
			t.Fatalf("a record landed in the closed parent %s", aws.ToString(sh.ShardId))
		}
	}
	if got := a.readShard("s", aws.ToString(sh.ShardId)); len(got) != 0 {
		t.Fatalf("the sealed parent holds %d records", len(got))
	}
	wb.release()
}

// A change from a server whose view is stale loses the compare-and-set and
// answers ResourceInUseException; once its view caught up, the retry works
// and keeps the other server's change.
func TestSharedStaleChangeConflicts(t *testing.T) {
	a, b, _, wb := twoServers(t, true, server.Config{})
	a.createStream("s", 1)
	b.awaitOpen("s", 1)
	wb.hold()
	if _, err := a.c.AddTagsToStream(a.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"by": "a"}}); err != nil {
		t.Fatal(err)
	}
	_, err := b.nr.AddTagsToStream(b.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"also": "b"}})
	if !isAPIError(err, "ResourceInUseException") {
		t.Fatalf("a stale change: %v, want ResourceInUseException", err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		_, err := b.nr.AddTagsToStream(b.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"also": "b"}})
		return err
	})
	// B's retry kept A's tag: B lists both at once; A, which learns of B's
	// change through its catalog watch, lists both soon after.
	for _, e := range []*env{b, a} {
		wait.Eventually(t, 10*time.Second, func() error {
			tags, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s")})
			if err != nil {
				return err
			}
			if len(tags.Tags) != 2 {
				return fmt.Errorf("tags after both changes: %d, want both", len(tags.Tags))
			}
			return nil
		})
	}
	wb.release()
}

// A split whose catalog write loses to another server's change after the
// engine sealed the parent for good finishes on top of that change instead
// of rolling back (the seal cannot be undone).
func TestSharedReshardRollsForward(t *testing.T) {
	a, b, _, wb := twoServers(t, true, server.Config{})
	a.createStream("s", 2)
	b.awaitOpen("s", 2)
	wb.hold()
	if _, err := a.c.AddTagsToStream(a.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"by": "a"}}); err != nil {
		t.Fatal(err)
	}
	sh := b.openShards("s")[1]
	if err := b.split("s", aws.ToString(sh.ShardId), midOf(sh.HashKeyRange)); err != nil {
		t.Fatalf("split through the stale server: %v", err)
	}
	wb.release()
	for _, e := range []*env{a, b} {
		wait.Eventually(t, 10*time.Second, func() error {
			tags, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s")})
			if err != nil {
				return err
			}
			shs, err := e.tryOpenShards("s")
			if err != nil {
				return err
			}
			if len(shs) != 3 || len(tags.Tags) != 1 {
				return fmt.Errorf("%d open shards and tags %v, want 3 and the other server's tag", len(shs), tags.Tags)
			}
			return nil
		})
	}
	p := a.put("s", "k", []byte("after"))
	if aws.ToString(p.ShardId) == aws.ToString(sh.ShardId) {
		t.Fatal("a put after the split landed in the parent")
	}
}

// Two servers splitting the same shard at once: one wins; the other fails
// with ResourceInUseException and leaves the winner's children intact.
func TestSharedConcurrentSplitsOfOneShard(t *testing.T) {
	a, b, _, wb := twoServers(t, true, server.Config{})
	a.createStream("s", 1)
	b.awaitOpen("s", 1)
	wb.hold()
	sh := a.openShards("s")[0]
	if err := a.split("s", aws.ToString(sh.ShardId), midOf(sh.HashKeyRange)); err != nil {
		t.Fatal(err)
	}
	p := a.put("s", "k", []byte("in a child"))
	err := b.split("s", aws.ToString(sh.ShardId), midOf(sh.HashKeyRange))
	if !isAPIError(err, "ResourceInUseException") {
		t.Fatalf("the losing split: %v, want ResourceInUseException", err)
	}
	wb.release()
	if n := len(a.openShards("s")); n != 2 {
		t.Fatalf("%d open shards after the race, want 2", n)
	}
	if recs := a.readShard("s", aws.ToString(p.ShardId)); len(recs) != 1 {
		t.Fatalf("the winner's child holds %d records, want 1", len(recs))
	}
}

// A stream's CREATING period ends even when the server that created it is
// gone: the other server's timer finishes it.
func TestSharedTransitionSurvivesItsServer(t *testing.T) {
	a, b, _, _ := twoServers(t, true, server.Config{CreateDelay: 300 * time.Millisecond})
	a.createStream("s", 1)
	if err := a.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 10*time.Second, func() error {
		out, err := b.c.DescribeStreamSummary(b.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if err != nil {
			return err
		}
		if out.StreamDescriptionSummary.StreamStatus != types.StreamStatusActive {
			return fmt.Errorf("status %s", out.StreamDescriptionSummary.StreamStatus)
		}
		return nil
	})
}

func isAPIError(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// midOf returns the middle of a hash key range.
func midOf(r *types.HashKeyRange) string {
	lo, hi := bigOf(aws.ToString(r.StartingHashKey)), bigOf(aws.ToString(r.EndingHashKey))
	return new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1).String()
}

// A consumer registered through one server serves subscriptions on the
// other, which push what the first one stores; deregistering it through
// the first ends the other's subscriptions.
func TestSharedConsumers(t *testing.T) {
	a, b, _, _ := twoServers(t, true, server.Config{SubscriptionKeepAlive: time.Hour})
	a.createStream("s", 1)
	c := a.register("s", "c1")
	var sb *sub
	wait.Eventually(t, 10*time.Second, func() error {
		_, err := b.c.DescribeStreamConsumer(b.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c)})
		return err
	})
	sb = b.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeLatest))
	seq := aws.ToString(a.put("s", "k", []byte("pushed")).SequenceNumber)
	recs, _ := sb.collect(1, 30*time.Second)
	if aws.ToString(recs[0].SequenceNumber) != seq {
		t.Fatalf("B pushed %s, want %s", aws.ToString(recs[0].SequenceNumber), seq)
	}
	if _, err := a.c.DeregisterStreamConsumer(a.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(c)}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := sb.next(30 * time.Second)
		if ev == nil {
			if !isAPIError(err, "ResourceNotFoundException") {
				t.Fatalf("B's subscription ended with %v, want ResourceNotFoundException", err)
			}
			break
		}
	}
}
