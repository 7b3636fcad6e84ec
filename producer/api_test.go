package producer

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestConfigValidate(t *testing.T) {
	p, err := New(newFakeKinesis(1), Config{StreamName: "s"})
	if err != nil {
		t.Fatalf("zero config with a stream name: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := Config{StreamName: "s"}.withDefaults()
	if c.MaxBufferedTime != 100*time.Millisecond || c.RecordTTL != 30*time.Second || c.CollectionMaxCount != 500 ||
		c.AggregationMaxBytes != 1<<20 || c.RateLimit != 100 || c.MaxConnections != 24 {
		t.Errorf("defaults: %+v", c)
	}
	_, err = New(newFakeKinesis(1), Config{
		MaxBufferedTime:    -1,
		CollectionMaxCount: 501,
		MaxRecordBytes:     11 << 20,
		MaxBufferedBytes:   10,
		RateLimit:          -5,
		MinBackoff:         time.Second,
		MaxBackoff:         time.Millisecond,
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"StreamName or StreamARN", "MaxBufferedTime", "CollectionMaxCount", "MaxRecordBytes",
		"MaxBufferedBytes", "RateLimit", "MaxBackoff"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if _, err := New(nil, Config{StreamName: "s"}); err == nil {
		t.Error("nil client accepted")
	}
}

func TestBadInput(t *testing.T) {
	p := newTestProducer(t, newFakeKinesis(1), Config{StreamName: "s", MaxRecordBytes: 1000})
	ctx := context.Background()
	cases := []struct {
		name string
		rec  UserRecord
		want error
	}{
		{"empty key", UserRecord{Data: []byte("x")}, ErrInvalidRecord},
		{"key too long", UserRecord{PartitionKey: strings.Repeat("k", 257), Data: []byte("x")}, ErrInvalidRecord},
		{"too large", UserRecord{PartitionKey: "k", Data: make([]byte, 1000)}, ErrRecordTooLarge},
		{"bad hash key", UserRecord{PartitionKey: "k", ExplicitHashKey: "12a", Data: []byte("x")}, ErrInvalidRecord},
		{"hash key too big", UserRecord{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456", Data: []byte("x")}, ErrInvalidRecord},
	}
	for _, tc := range cases {
		pd, err := p.PutRecord(ctx, tc.rec)
		if !errors.Is(err, tc.want) || pd != nil {
			t.Errorf("%s: got %v, %v; want %v", tc.name, pd, err, tc.want)
		}
		if _, err := p.TryPutRecord(tc.rec); !errors.Is(err, tc.want) {
			t.Errorf("%s: TryPutRecord: %v", tc.name, err)
		}
	}
	// 256 characters are fine even when they take more bytes.
	for _, rec := range []UserRecord{
		{PartitionKey: strings.Repeat("é", 256), Data: []byte("x")},
		{PartitionKey: "k", ExplicitHashKey: hashkey.Max.String(), Data: []byte("x")},
		{PartitionKey: "k", Data: make([]byte, 999)},
		{PartitionKey: "k", Data: nil},
	} {
		if _, err := p.PutRecord(ctx, rec); err != nil {
			t.Errorf("%q: %v", rec.PartitionKey[:1], err)
		}
	}
	if p.BufferedRecords() > 4 {
		t.Errorf("rejected records were buffered: %d", p.BufferedRecords())
	}
	flush(t, p, 10*time.Second)
}

func TestPendingAPI(t *testing.T) {
	f := newFakeKinesis(2)
	release := make(chan struct{})
	f.setHook(blockUntil(release))
	p := newTestProducer(t, f, Config{StreamName: "s"})
	ctx := context.Background()
	pd, err := p.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pd.Result(); ok {
		t.Fatal("result before the record was sent")
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := pd.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an expiring ctx: %v", err)
	}
	cancel()
	done := pd.Done()
	select {
	case <-done:
		t.Fatal("done before the record was sent")
	default:
	}
	close(release)
	<-done
	res, err := pd.Wait(ctx)
	if err != nil || res.ShardID == "" || res.SequenceNumber == "" || res.Attempts != 1 || res.Record.PartitionKey != "k" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if r2, ok := pd.Result(); !ok || r2.SequenceNumber != res.SequenceNumber || r2.ShardID != res.ShardID {
		t.Fatalf("Result() = %+v, %v", r2, ok)
	}
	select {
	case <-pd.Done(): // a second Done after the result is closed too
	default:
		t.Fatal("Done not closed")
	}
	if got := pd.Record(); got.PartitionKey != "k" || string(got.Data) != "v" {
		t.Fatalf("Record() = %+v", got)
	}
	res, err = p.PutSync(ctx, "k2", []byte("v2"))
	if err != nil || res.SequenceNumber == "" {
		t.Fatalf("PutSync: %+v %v", res, err)
	}
}

// TestBackpressure fills the buffer while Kinesis does not answer: Put
// blocks until ctx ends, TryPut fails at once, and both succeed again once
// results free room. It runs in a synctest bubble: time is fake, and
// synctest.Wait says when the blocked Put is blocked.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(1)
		release := make(chan struct{})
		f.setHook(blockUntil(release))
		p := newTestProducer(t, f, Config{StreamName: "s", MaxBufferedRecords: 10, MaxBufferedBytes: 1 << 20, MaxRecordBytes: 1 << 20})
		ctx := context.Background()
		for range 10 {
			if _, err := p.TryPut("k", []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
		}
		if p.BufferedRecords() != 10 || p.BufferedBytes() != 110 {
			t.Fatalf("buffered %d records %d bytes", p.BufferedRecords(), p.BufferedBytes())
		}
		if _, err := p.TryPut("k", []byte("x")); !errors.Is(err, ErrBufferFull) {
			t.Fatalf("TryPut on a full buffer: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		start := time.Now()
		_, err := p.Put(wctx, "k", []byte("x"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("Put on a full buffer: %v after %v, want DeadlineExceeded after 50ms", err, time.Since(start))
		}
		// A blocked Put proceeds once results free room, and not before.
		got := make(chan error, 1)
		go func() {
			_, err := p.Put(ctx, "k", []byte("x"))
			got <- err
		}()
		synctest.Wait() // every goroutine of the bubble, the Put's included, is blocked
		select {
		case err := <-got:
			t.Fatalf("Put returned %v while the buffer was full", err)
		default:
		}
		if n := p.waiters.Load(); n != 1 {
			t.Fatalf("%d Puts wait for room, want 1", n)
		}
		close(release)
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if p.BufferedRecords() != 0 || p.BufferedBytes() != 0 {
			t.Fatalf("after flush: %d records %d bytes", p.BufferedRecords(), p.BufferedBytes())
		}
	})
}

func TestBackpressureBytes(t *testing.T) {
	f := newFakeKinesis(1)
	release := make(chan struct{})
	f.setHook(blockUntil(release))
	p := newTestProducer(t, f, Config{StreamName: "s", MaxBufferedBytes: 1000, MaxRecordBytes: 500, CollectionMaxBytes: 500, AggregationMaxBytes: 500})
	big := make([]byte, 399) // 400 bytes with the key
	for range 2 {
		if _, err := p.TryPut("k", big); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.TryPut("k", big); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("third record: %v", err)
	}
	if _, err := p.TryPut("k", make([]byte, 150)); err != nil {
		t.Fatalf("a record that fits: %v", err)
	}
	close(release)
	flush(t, p, 10*time.Second)
}

// TestCloseDrains closes without flushing: every record is still sent,
// gets exactly one result, and Put fails afterwards.
func TestCloseDrains(t *testing.T) {
	srv := startServer(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	createStream(t, c, "c", 2)
	var calls atomic.Int64
	var inside atomic.Int32
	var concurrent atomic.Bool
	p, err := New(c, Config{StreamName: "c", MaxBufferedTime: time.Hour, OnResult: func(r Result) {
		if inside.Add(1) > 1 {
			concurrent.Store(true)
		}
		if r.Err != nil {
			t.Errorf("result: %v", r.Err)
		}
		calls.Add(1)
		inside.Add(-1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var pend []*Pending
	for i := range n {
		pd, err := p.Put(context.Background(), strings.Repeat("k", i%7+1), payload(0, i, 30))
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, pd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != n {
		t.Fatalf("OnResult called %d times, want %d", calls.Load(), n)
	}
	if concurrent.Load() {
		t.Error("OnResult ran concurrently")
	}
	for i, pd := range pend {
		if res, ok := pd.Result(); !ok || res.Err != nil {
			t.Fatalf("record %d: %+v %v", i, res, ok)
		}
	}
	if _, err := p.Put(ctx, "k", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := p.TryPut("k", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryPut after Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got := readAll(t, c, "c")
	if len(got.Records) != n {
		t.Fatalf("read %d records, want %d", len(got.Records), n)
	}
}

// TestCloseAbandons closes while Kinesis never answers: Close gives up when
// its ctx ends, and every record, buffered or in flight, gets ErrClosed.
func TestCloseAbandons(t *testing.T) {
	f := newFakeKinesis(2)
	f.setHook(blockUntil(nil))
	var results atomic.Int64
	p, err := New(f, Config{StreamName: "s", OnResult: func(Result) { results.Add(1) }, RequestTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var pend []*Pending
	for i := range 500 {
		pd, err := p.Put(context.Background(), strings.Repeat("k", i%5+1), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		pend = append(pend, pd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = p.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	for i, pd := range pend {
		res, ok := pd.Result()
		if !ok || !errors.Is(res.Err, ErrClosed) {
			t.Fatalf("record %d: %+v %v", i, res, ok)
		}
	}
	if results.Load() != 500 {
		t.Fatalf("%d results delivered, want 500", results.Load())
	}
}

// TestCloseWakesBlockedPut closes while a Put waits for room: the Put
// returns ErrClosed. In a synctest bubble, so that the Put is known to be
// waiting (synctest.Wait) before Close is called.
func TestCloseWakesBlockedPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(1)
		release := make(chan struct{})
		defer close(release)
		f.setHook(blockUntil(release))
		p, err := New(f, Config{StreamName: "s", MaxBufferedRecords: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Put(context.Background(), "k", []byte("x")); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			_, err := p.Put(context.Background(), "k", []byte("y"))
			got <- err
		}()
		synctest.Wait()
		if n := p.waiters.Load(); n != 1 {
			t.Fatalf("%d Puts wait for room before Close, want 1", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close while Kinesis does not answer: %v", err)
		}
		if err := <-got; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Put: %v", err)
		}
	})
}

// TestFlushWaitsForEarlierRecords checks that Flush returns once the
// records put before it have results, even while later puts keep the
// producer busy.
func TestFlushWaitsForEarlierRecords(t *testing.T) {
	f := newFakeKinesis(2)
	p := newTestProducer(t, f, Config{StreamName: "s", MaxBufferedTime: time.Hour})
	var before []*Pending
	for i := range 100 {
		pd, _ := p.Put(context.Background(), strings.Repeat("a", i%9+1), []byte("x"))
		before = append(before, pd)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = p.Put(context.Background(), "busy", []byte("y"))
			}
		}
	})
	flush(t, p, 10*time.Second)
	close(stop)
	wg.Wait()
	for i, pd := range before {
		if _, ok := pd.Result(); !ok {
			t.Fatalf("record %d has no result after Flush", i)
		}
	}
}

// refusedErrors returns the errors the SDK client gives for ListShards and
// PutRecords against a port nobody listens on (one attempt each).
func refusedErrors(t *testing.T) (listErr, putErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	c := servertest.Client("http://" + addr)
	ctx := context.Background()
	_, listErr = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}, noSDKRetries)
	_, putErr = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("x")},
	}}, noSDKRetries)
	for _, err := range []error{listErr, putErr} {
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("call to a closed port: %v", err)
		}
	}
	return listErr, putErr
}

// TestExpiry answers the producer with the errors of a port nobody listens
// on (as the SDK client gives them for a real closed port): records fail
// with ErrRecordExpired at RecordTTL, wrapping the last error. In a
// synctest bubble, so that RecordTTL is measured in fake time and the
// retries within it do not depend on the machine's speed.
func TestExpiry(t *testing.T) {
	listErr, putErr := refusedErrors(t)
	const ttl = 300 * time.Millisecond
	t.Run("no shard map", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeKinesis(1)
			f.listErr = listErr
			p := newTestProducer(t, f, Config{StreamName: "s", RecordTTL: ttl})
			start := time.Now()
			res, err := p.PutSync(context.Background(), "k", []byte("x"))
			if !errors.Is(err, ErrRecordExpired) || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("result %+v, %v", res, err)
			}
			if d := time.Since(start); d < ttl || d > ttl+10*time.Millisecond {
				t.Errorf("expired after %v, want %v", d, ttl)
			}
			if res.Attempts != 0 || len(f.callLog()) != 0 {
				t.Errorf("%d attempts, %d PutRecords calls without a shard map", res.Attempts, len(f.callLog()))
			}
		})
	})
	t.Run("send fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeKinesis(2)
			f.setHook(func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
				return nil, putErr, true
			})
			p := newTestProducer(t, f, Config{StreamName: "s", RecordTTL: ttl, MinBackoff: 10 * time.Millisecond},
				testHooks{initialMap: evenShards(2, 0)})
			start := time.Now()
			res, err := p.PutSync(context.Background(), "k", []byte("x"))
			var pe *PutError
			// Sent after MaxBufferedTime (100ms), then retried after
			// back-offs of at most 15, 30 and 60ms (MinBackoff doubling,
			// with a jitter of up to 50%): at least 4 attempts before the
			// TTL.
			if !errors.Is(err, ErrRecordExpired) || !errors.As(err, &pe) || pe.Attempts < 4 || res.Attempts != pe.Attempts {
				t.Fatalf("result %+v, %v", res, err)
			}
			if n := len(f.callLog()); n != pe.Attempts {
				t.Errorf("%d attempts, %d PutRecords calls", pe.Attempts, n)
			}
			if !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("error does not carry the cause: %v", err)
			}
			if d := time.Since(start); d < ttl || d > ttl+10*time.Millisecond {
				t.Errorf("expired after %v, want %v", d, ttl)
			}
		})
	})
}

func TestNonRetryable(t *testing.T) {
	t.Run("entry error", func(t *testing.T) {
		f := newFakeKinesis(1)
		f.setHook(failEntries("KMSAccessDeniedException"))
		p := newTestProducer(t, f, Config{StreamName: "s"})
		res, err := p.PutSync(context.Background(), "k", []byte("x"))
		var kms *types.KMSAccessDeniedException
		if !errors.As(err, &kms) || res.Attempts != 1 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
	t.Run("throttled with FailIfThrottled", func(t *testing.T) {
		f := newFakeKinesis(1)
		f.setHook(failEntries("ProvisionedThroughputExceededException"))
		p := newTestProducer(t, f, Config{StreamName: "s", FailIfThrottled: true})
		res, err := p.PutSync(context.Background(), "k", []byte("x"))
		var pte *types.ProvisionedThroughputExceededException
		if !errors.As(err, &pte) || res.Attempts != 1 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
	t.Run("validation error from the server", func(t *testing.T) {
		// The producer allows 2 MiB records, the stream only 1 MiB: the
		// server answers ValidationException and the record fails at once.
		srv := startServer(t, server.Config{Logger: zap.NewNop()})
		c := srv.Client()
		createStream(t, c, "v", 1)
		p := newTestProducer(t, c, Config{StreamName: "v", MaxRecordBytes: 2 << 20, DisableRateLimit: true})
		res, err := p.PutSync(context.Background(), "k", make([]byte, 3<<19))
		// One attempt, failed with the server's error rather than expired:
		// the record was not retried.
		var ve *types.ValidationException
		if !errors.As(err, &ve) || errors.Is(err, ErrRecordExpired) || res.Attempts != 1 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
	t.Run("retried until it works", func(t *testing.T) {
		f := newFakeKinesis(1)
		var n atomic.Int32
		f.setHook(func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
			if n.Add(1) <= 3 {
				return failEntries("InternalFailure")(ctx, in)
			}
			return nil, nil, false
		})
		p := newTestProducer(t, f, Config{StreamName: "s", MinBackoff: time.Millisecond})
		res, err := p.PutSync(context.Background(), "k", []byte("x"))
		if err != nil || res.Attempts != 4 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
}
