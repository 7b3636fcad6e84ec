package fanout_test

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/fanout"
	"github.com/shoalstream/shoal/internal/storage"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// Faults on the real server: a second reader of the same consumer and shard
// (Kinesis's ResourceInUse window and takeover), a cut network, a server
// restart. In each the Subscriber must hand every record to its handler
// once, in order, resuming from the continuation of the last event.

// subLog records a Subscriber's SubscribeToShard calls (OnSubscribe).
type subLog struct {
	mu  sync.Mutex
	pos []fanout.Position
	at  time.Time // of the last
}

func (l *subLog) on(_ string, p fanout.Position) {
	l.mu.Lock()
	l.pos = append(l.pos, p)
	l.at = time.Now()
	l.mu.Unlock()
}

func (l *subLog) n() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pos)
}

// waitSince waits until at least want subscriptions followed the first
// before of them.
func (l *subLog) waitSince(t *testing.T, before, want int, what string) {
	t.Helper()
	wait.Eventually(t, 10*time.Second, func() error {
		if got := l.n() - before; got < want {
			return fmt.Errorf("%s: %d subscriptions, want %d", what, got, want)
		}
		return nil
	})
}

// checkFirstThenContinue fails unless each of the shards subscribed once
// at TRIM_HORIZON and every other subscription resumed after a
// continuation.
func (l *subLog) checkFirstThenContinue(t *testing.T, shards int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	th := 0
	for _, p := range l.pos {
		if p.Type == types.ShardIteratorTypeTrimHorizon {
			th++
		} else if p.Type != types.ShardIteratorTypeAfterSequenceNumber {
			t.Errorf("re-subscription at %v", p)
		}
	}
	if th != shards {
		t.Errorf("%d subscriptions at TRIM_HORIZON, want one per shard (every later one after a continuation)", th)
	}
}

// checkResumes fails unless, once a subscription resumed after a sequence
// number (a continuation), every later one did too: none started from the
// beginning again. It returns how many resumed.
func (l *subLog) checkResumes(t *testing.T) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	resumed := 0
	for i, p := range l.pos {
		switch {
		case p.Type == types.ShardIteratorTypeAfterSequenceNumber:
			resumed++
		case resumed > 0:
			t.Errorf("subscription %d started at %v after %d resumed from a continuation", i+1, p, resumed)
		}
	}
	return resumed
}

// TestTakeoverBetweenTwoSubscribers: while one Subscriber reads a shard as
// a consumer, SubscribeToShard for the same consumer and shard fails with
// ResourceInUseException; a second Subscriber keeps retrying and takes the
// subscription over once the first one's is 5s old, and the two go on
// taking it from each other. Neither loses nor repeats a record: each
// hands every record to its handler exactly once, in order (the two
// together deliver each record twice, once each, as documented).
func TestTakeoverBetweenTwoSubscribers(t *testing.T) {
	e := newEnv(t, 1, server.Config{SubscriptionKeepAlive: 200 * time.Millisecond})
	shard := aws.ToString(e.openShards()[0].ShardId)
	ca, cb := newCollector(), newCollector()
	var la, lb subLog
	newSub := func(c *collector, l *subLog, arn string) *fanout.Subscriber {
		opts := fastOptions(t)
		opts.OnSubscribe = l.on
		cfg := fanout.Config{StreamName: testStream, StartingPosition: fanout.TrimHorizon(), Handler: c.handle, Options: opts}
		if arn == "" {
			cfg.ConsumerName = "contested"
		} else {
			cfg.ConsumerARN = arn
		}
		s, err := fanout.New(e.client, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := newSub(ca, &la, "")
	stopA, _ := runSubscriber(t, a)
	var n atomic.Int64
	putStop := make(chan struct{})
	putDone := make(chan struct{})
	go func() {
		defer close(putDone)
		for i := 0; ; i += 20 {
			select {
			case <-putStop:
				n.Store(int64(i))
				return
			case <-time.After(50 * time.Millisecond):
			}
			e.put("r", i, i+20)
		}
	}()
	wait.Eventually(t, 10*time.Second, func() error {
		if ca.count("r", 20) == 0 {
			return errors.New("a delivered nothing yet")
		}
		return nil
	})
	arn := a.ConsumerARN()

	// The server refuses a second subscription within the 5s window. a's
	// subscription reached the server after a's OnSubscribe (la.at) and this
	// call before it returned, so if less than 5s separate those two
	// moments the server saw a subscription younger than 5s and must have
	// refused; if more (a very slow machine) either answer is right. The
	// age is read after the call, never guessed before it.
	out, err := e.client.SubscribeToShard(t.Context(), &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(arn), ShardId: aws.String(shard),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
	})
	la.mu.Lock()
	young := time.Since(la.at) < 5*time.Second
	la.mu.Unlock()
	var inUse *types.ResourceInUseException
	switch {
	case err == nil:
		_ = out.GetStream().Close()
		if young {
			t.Fatal("second SubscribeToShard within 5s accepted, want ResourceInUseException")
		}
	case !errors.As(err, &inUse):
		t.Fatalf("second SubscribeToShard: %v, want ResourceInUseException", err)
	}

	b := newSub(cb, &lb, arn)
	stopB, _ := runSubscriber(t, b)
	// b gets the subscription once a's is 5s old, which breaks a's: a
	// subscribes again. (The timeout is a generous bound for a failing
	// run, not the claim: 5s of protocol plus back-offs.)
	wait.Eventually(t, 30*time.Second, func() error {
		if cb.total() == 0 || la.n() < 2 {
			return fmt.Errorf("b delivered %d records, a subscribed %d times", cb.total(), la.n())
		}
		return nil
	})
	close(putStop)
	<-putDone
	total := int(n.Load())
	// Each catches up in turn: a once b's subscription is 5s old.
	wait.Eventually(t, 30*time.Second, func() error {
		if ga, gb := ca.count("r", total), cb.count("r", total); ga < total || gb < total {
			return fmt.Errorf("a delivered %d, b %d of %d", ga, gb, total)
		}
		return nil
	})
	if err := stopA(); err != nil {
		t.Errorf("a: Run: %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("b: Run: %v", err)
	}
	ca.check(t, "r", total)
	cb.check(t, "r", total)
	// a lost the subscription to b and resumed from its own continuation
	// (b's turn to lose it comes 5s after it took over: the test may end
	// before).
	if ra := la.checkResumes(t); ra == 0 {
		t.Error("a never resumed from a continuation after b took over")
	}
	lb.checkResumes(t)
	t.Logf("%d records; a subscribed %d times, b %d times", total, la.n(), lb.n())
}

// total returns how many distinct payloads were delivered.
func (c *collector) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.data)
}

// tcpProxy forwards loopback TCP connections to a target and can cut every
// connection it carries, as a network failure would.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and the copiers

	mu     sync.Mutex                // guards conns and closed
	conns  map[net.Conn]*atomic.Bool // each connection, and whether its pair is silenced
	closed bool
}

// startProxy starts a proxy to target on 127.0.0.1:0; it is closed when
// the test ends.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]*atomic.Bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		silenced := new(atomic.Bool)
		p.conns[c], p.conns[s] = silenced, silenced
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for { // until either side is closed
				n, err := src.Read(buf)
				if n > 0 && !silenced.Load() {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			// A closed end is passed on to the other, unless the path is
			// silenced: then the other end never hears of it (cut and
			// close still close it).
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, src)
			if !silenced.Load() {
				_ = dst.Close()
				delete(p.conns, dst)
			}
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// cut closes every connection the proxy carries; new ones are accepted.
func (p *tcpProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	return n
}

// silence makes every connection the proxy carries drop what it reads
// instead of forwarding it, and no longer pass a close from one end to the
// other: a network path that went dead without a reset, which neither end
// notices. New connections work.
func (p *tcpProxy) silence() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.conns {
		s.Store(true)
	}
	return len(p.conns) / 2
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// TestNetworkCutResumes: a Subscriber that reaches the server through a
// proxy whose connections are cut three times, while records are put,
// subscribes again each time from the last continuation and hands every
// record over exactly once, in order.
func TestNetworkCutResumes(t *testing.T) {
	e := newEnv(t, 2, server.Config{SubscriptionKeepAlive: 200 * time.Millisecond})
	proxy := startProxy(t, e.srv.Endpoint[len("http://"):])
	c := newCollector()
	var l subLog
	opts := fastOptions(t)
	opts.OnSubscribe = l.on
	s, err := fanout.New(servertest.StreamingClient(proxy.endpoint()), fanout.Config{
		StreamName: testStream, ConsumerName: "cut", StartingPosition: fanout.TrimHorizon(), Handler: c.handle, Options: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	next := 0
	for round := range 3 {
		// Records flowing on both shards, then the cut.
		e.put("r", next, next+200)
		next += 200
		c.waitFor(t, 10*time.Second, "r", next)
		before := l.n()
		if cut := proxy.cut(); cut == 0 {
			t.Fatalf("round %d: no connection to cut", round)
		}
		// Records put while the connections are down.
		e.put("r", next, next+100)
		next += 100
		l.waitSince(t, before, 2, fmt.Sprintf("round %d: after the cut", round))
	}
	e.put("r", next, next+100)
	next += 100
	c.waitFor(t, 10*time.Second, "r", next)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.check(t, "r", next)
	l.checkFirstThenContinue(t, 2)
}

// TestServerRestartResumes: a server restarted (gracefully, same address
// and data) under an active Subscriber: the Subscriber retries until it is
// back and resumes after the last continuation, with every record put
// before, during and after the restart handed over exactly once.
func TestServerRestartResumes(t *testing.T) {
	r := servertest.StartRestartable(t, server.Config{Fsync: storage.FsyncNever, SubscriptionKeepAlive: 200 * time.Millisecond})
	e := &env{t: t, client: r.StreamingClient()}
	if _, err := e.client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	e.waitActive()
	c := newCollector()
	var l subLog
	opts := fastOptions(t)
	opts.OnSubscribe = l.on
	s, err := fanout.New(e.client, fanout.Config{
		StreamName: testStream, ConsumerName: "restart", StartingPosition: fanout.TrimHorizon(), Handler: c.handle, Options: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	next := 0
	for round := range 2 {
		e.put("r", next, next+300)
		next += 300
		c.waitFor(t, 10*time.Second, "r", next)
		before := l.n()
		r.Restart()
		l.waitSince(t, before, 2, fmt.Sprintf("round %d: since the restart", round))
	}
	e.put("r", next, next+300)
	next += 300
	c.waitFor(t, 10*time.Second, "r", next)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.check(t, "r", next)
	l.checkFirstThenContinue(t, 2)
}

// TestSilentNetworkResumes: the connections under a Subscriber go silent
// without being closed (the server still writes, the client hears
// nothing): the Subscriber gives up on them after its IdleTimeout,
// subscribes again (meeting ResourceInUseException until the server's
// takeover window of the silent subscription has passed; a subscription
// request sent on a silent pooled connection is given up after IdleTimeout
// too) and resumes after
// its last continuation with every record exactly once.
func TestSilentNetworkResumes(t *testing.T) {
	e := newEnv(t, 1, server.Config{SubscriptionKeepAlive: 200 * time.Millisecond})
	proxy := startProxy(t, e.srv.Endpoint[len("http://"):])
	c := newCollector()
	var l subLog
	opts := fastOptions(t)
	opts.OnSubscribe = l.on
	opts.IdleTimeout = time.Second
	client := servertest.StreamingClient(proxy.endpoint())
	s, err := fanout.New(client, fanout.Config{
		StreamName: testStream, ConsumerName: "silent", StartingPosition: fanout.TrimHorizon(), Handler: c.handle, Options: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop, _ := runSubscriber(t, s)
	e.put("r", 0, 200)
	c.waitFor(t, 10*time.Second, "r", 200)
	// Idle connections in the client's pool, which the next subscription
	// may reuse: they go silent too, so that SubscribeToShard itself hangs
	// on one unless the Subscriber bounds it.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := client.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)}); err != nil {
				t.Errorf("DescribeStreamSummary: %v", err)
			}
		})
	}
	wg.Wait()
	before := l.n()
	if n := proxy.silence(); n == 0 {
		t.Fatal("no connection to silence")
	}
	e.put("r", 200, 400)
	// IdleTimeout (1s) per silent connection tried, then the server's 5s
	// takeover window at most; the timeout is a generous bound for a
	// failing run, not the claim.
	wait.Eventually(t, 30*time.Second, func() error {
		if got := c.count("r", 400); got < 400 {
			return fmt.Errorf("%d of 400 delivered, %d subscriptions since the silence", got, l.n()-before)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.check(t, "r", 400)
	if l.n() == before {
		t.Error("no subscription after the network went silent")
	}
	t.Logf("%d subscriptions after the silence", l.n()-before)
	if l.checkResumes(t) == 0 {
		t.Error("no subscription resumed after a continuation")
	}
}
