package server_test

// The status timers of Config.*Delay belong to the server: Shutdown stops
// the pending ones, waits for one whose callback has started, and once it
// has returned nothing changes the data anymore.

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/shoalstream/shoal/server"
)

// timerStreams creates, with no delays configured, the streams whose
// changes start timers later: "del" (to delete), "upd" (to rescale) and
// "cons" with the ACTIVE consumer "c0" (to deregister).
func timerStreams(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	for _, n := range []string{"del", "upd", "cons"} {
		if _, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(n), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("cons")), ConsumerName: aws.String("c0")}); err != nil {
		t.Fatal(err)
	}
}

// startTimers makes one change of each kind that starts a status timer.
func startTimers(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	calls := []struct {
		what string
		fn   func() error
	}{
		{"CreateStream new", func() error {
			_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("new"), ShardCount: aws.Int32(1)})
			return err
		}},
		{"DeleteStream del", func() error {
			_, err := r.c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("del")})
			return err
		}},
		{"UpdateShardCount upd", func() error {
			_, err := r.c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("upd"), TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}},
		{"RegisterStreamConsumer c1", func() error {
			_, err := r.c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("cons")), ConsumerName: aws.String("c1")})
			return err
		}},
		{"DeregisterStreamConsumer c0", func() error {
			_, err := r.c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(arn("cons")), ConsumerName: aws.String("c0")})
			return err
		}},
	}
	for _, c := range calls {
		if err := c.fn(); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
	}
}

func setDelays(cfg *server.Config, d time.Duration) {
	cfg.CreateDelay, cfg.DeleteDelay, cfg.UpdateDelay, cfg.ConsumerCreateDelay, cfg.ConsumerDeleteDelay = d, d, d, d, d
}

func streamStatus(t *testing.T, r *rig, name string) string {
	t.Helper()
	out, err := r.c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return "error: " + err.Error()
	}
	return string(out.StreamDescriptionSummary.StreamStatus)
}

func consumerStatus(t *testing.T, r *rig, name string) string {
	t.Helper()
	out, err := r.c.DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn("cons")), ConsumerName: aws.String(name)})
	if err != nil {
		return "error: " + err.Error()
	}
	return string(out.ConsumerDescription.ConsumerStatus)
}

// Hour-long timers of every kind are pending; Shutdown stops them, returns
// at once and leaves no goroutine behind.
func TestShutdownStopsPendingStatusTimers(t *testing.T) {
	r := startRig(t, "", server.Config{})
	timerStreams(t, r)
	r.stop()
	ignore := goleak.IgnoreCurrent()
	setDelays(&r.cfg, time.Hour)
	r.start()
	startTimers(t, r)
	for name, want := range map[string]string{"new": "CREATING", "del": "DELETING", "upd": "UPDATING"} {
		if got := streamStatus(t, r, name); got != want {
			t.Fatalf("stream %s is %s, want %s", name, got, want)
		}
	}
	for name, want := range map[string]string{"c1": "CREATING", "c0": "DELETING"} {
		if got := consumerStatus(t, r, name); got != want {
			t.Fatalf("consumer %s is %s, want %s", name, got, want)
		}
	}
	took := r.shutdown() // fails the test if the 30 s context ran out
	t.Logf("Shutdown with five hour-long timers pending took %v", took)
	if t.Failed() {
		t.FailNow()
	}
	if late := r.fe.lateCalls(); len(late) > 0 {
		t.Fatalf("engine changed after Shutdown returned: %v", late)
	}
	r.stop()
	goleak.VerifyNone(t, ignore)

	// The next start finishes the transitions the timers were waiting for.
	setDelays(&r.cfg, 0)
	r.start()
	for name, want := range map[string]string{"new": "ACTIVE", "upd": "ACTIVE"} {
		if got := streamStatus(t, r, name); got != want {
			t.Fatalf("after a restart, stream %s is %s, want %s", name, got, want)
		}
	}
	if got := streamStatus(t, r, "del"); !strings.Contains(got, "ResourceNotFound") {
		t.Fatalf("after a restart, deleted stream del: %s", got)
	}
	if got := consumerStatus(t, r, "c1"); got != "ACTIVE" {
		t.Fatalf("after a restart, consumer c1 is %s, want ACTIVE", got)
	}
	if got := consumerStatus(t, r, "c0"); !strings.Contains(got, "ResourceNotFound") {
		t.Fatalf("after a restart, deregistered consumer c0: %s", got)
	}
}

// TestShutdownRacesShortStatusTimers: Shutdown lands while 50 ms status
// timers of every kind are about to fire (0 to 100 ms after they started,
// 50 runs). Once it has returned, the server's goroutines end (so nothing
// can change the data directory or call the engine later) and no engine
// call happens after it.
func TestShutdownRacesShortStatusTimers(t *testing.T) {
	const delay = 50 * time.Millisecond
	for i := range 50 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			// Sequential: the goroutine check below must see this server only.
			r := startRig(t, "", server.Config{})
			timerStreams(t, r)
			r.stop()
			setDelays(&r.cfg, delay)
			r.start()
			startTimers(t, r)
			// Spread where Shutdown lands, 0 to 100 ms after the timers
			// started (exploring the race; not a wait for anything).
			time.Sleep(time.Duration(i%11) * 10 * time.Millisecond)
			r.shutdown()
			// Shutdown has waited for every background goroutine (bg.Wait);
			// one may still be returning from its deferred Done. Wait for
			// them to be gone: a timer Shutdown did not stop would stay (and
			// fail this wait) or fire meanwhile (and show in lateCalls).
			deadline := time.Now().Add(30 * time.Second)
			for left := serverGoroutines(); len(left) > 0; left = serverGoroutines() {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines of the server outlived Shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
				}
				runtime.Gosched()
			}
			if late := r.fe.lateCalls(); len(late) > 0 {
				t.Fatalf("engine changed after Shutdown returned: %v", late)
			}
		})
	}
}

// serverGoroutines returns the stacks of the goroutines running code of
// package server (its background work and timers, or a request handler).
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/shoalstream/shoal/server.(*Server)") {
			out = append(out, g)
		}
	}
	return out
}

// Deterministic: a timer callback is inside its catalog write when
// Shutdown begins. Shutdown waits for it: the write completes before
// Shutdown returns, and nothing follows.
func TestShutdownWaitsForRunningStatusTimer(t *testing.T) {
	r := startRig(t, "", server.Config{})
	if _, err := r.c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.cfg.UpdateDelay = 10 * time.Millisecond
	r.start()

	var seq, writeDone, shutdownDone atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	var enterOnce, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	r.fe.setHook(func(c faultCall) error {
		if c.Meta.Name != "s" || c.Prev == nil || c.Prev.Status != "UPDATING" || c.Meta.Status != "ACTIVE" {
			return nil
		}
		switch c.Op {
		case opPutStream: // the UPDATING timer's callback
			enterOnce.Do(func() { close(entered) })
			<-release
		case opPutStreamDone:
			writeDone.Store(seq.Add(1))
		}
		return nil
	})
	if _, err := r.c.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatal(err)
	}
	bound, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-entered:
	case <-bound.Done():
		t.Fatal("the UPDATING timer's callback never wrote the catalog")
	}
	addr := strings.TrimPrefix(r.endpoint, "http://")
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		r.shutdown()
		shutdownDone.Store(seq.Add(1))
	}()
	// Shutdown has begun once its listener refuses connections.
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		_ = conn.Close() // a probe
		select {
		case <-bound.Done():
			t.Fatal("Shutdown did not close the listener")
		case <-time.After(5 * time.Millisecond): // poll interval
		}
	}
	unblock()
	select {
	case <-finished:
	case <-bound.Done():
		t.Fatal("Shutdown did not return")
	}
	if w, s := writeDone.Load(), shutdownDone.Load(); w == 0 || w > s {
		t.Fatalf("the running callback's catalog write finished at step %d, Shutdown returned at step %d: Shutdown must wait for it", w, s)
	}
	if late := r.fe.lateCalls(); len(late) > 0 {
		t.Fatalf("engine changed after Shutdown returned: %v", late)
	}
}
