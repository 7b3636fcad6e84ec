package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// protoRecorder records the protocol of every response a client receives.
type protoRecorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	protos []string
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.base.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.protos = append(p.protos, resp.Proto)
		p.mu.Unlock()
	}
	return resp, err
}

func (p *protoRecorder) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.protos...)
}

func sdkClient(endpoint string, hc *http.Client) *kinesis.Client {
	return kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		HTTPClient:  hc,
	}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// subscribeRoundTrip registers a consumer, subscribes through c, and checks
// that records put before and after arrive.
func subscribeRoundTrip(t *testing.T, e *env, c *kinesis.Client, stream string) {
	t.Helper()
	_, err := c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	reg, err := c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn(stream)), ConsumerName: aws.String("c")})
	noErr(t, err, "RegisterStreamConsumer")
	put := func(data string) string {
		out, err := c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte(data)})
		noErr(t, err, "PutRecord")
		return *out.SequenceNumber
	}
	want := []string{put("before")}
	s := e.subscribeWith(c, *reg.Consumer.ConsumerARN, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
	want = append(want, put("after"))
	recs, _ := s.collect(2, 30*time.Second)
	if fmt.Sprint(seqsOf(recs)) != fmt.Sprint(want) || string(recs[0].Data) != "before" || string(recs[1].Data) != "after" {
		t.Fatalf("got %v, want %v", seqsOf(recs), want)
	}
}

func TestSubscribeToShardH2C(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	rec := &protoRecorder{base: &http.Transport{Protocols: &protocols}}
	c := sdkClient(e.srv.Endpoint, &http.Client{Transport: rec})
	subscribeRoundTrip(t, e, c, "h2c")
	for _, p := range rec.all() {
		if p != "HTTP/2.0" {
			t.Fatalf("a response came over %s, want HTTP/2.0 (all: %v)", p, rec.all())
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noErr(t, err, "generate key")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoal test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	noErr(t, err, "create certificate")
	kder, err := x509.MarshalECPrivateKey(key)
	noErr(t, err, "marshal key")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	noErr(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600), "write cert")
	noErr(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600), "write key")
	cert, err := x509.ParseCertificate(der)
	noErr(t, err, "parse certificate")
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestSubscribeToShardTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Logger: zaptest.NewLogger(t), TLSCertFile: certFile, TLSKeyFile: keyFile, SubscriptionKeepAlive: time.Hour})
	noErr(t, err, "server.New")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		noErr(t, srv.Shutdown(ctx), "Shutdown")
		noErr(t, <-done, "Serve")
	})
	endpoint := "https://" + ln.Addr().String()
	rec := &protoRecorder{base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	e := &env{t: t, ctx: context.Background()}
	c := sdkClient(endpoint, &http.Client{Transport: rec})
	subscribeRoundTrip(t, e, c, "tls")
	protos := rec.all()
	if len(protos) < 4 {
		t.Fatalf("recorded %v", protos)
	}
	for _, p := range protos {
		if p != "HTTP/2.0" {
			t.Fatalf("a response came over %s, want HTTP/2.0 through ALPN (all: %v)", p, protos)
		}
	}
	// A cleartext client gets nowhere: the port speaks TLS only.
	plain := sdkClient("http://"+ln.Addr().String(), &http.Client{Timeout: 10 * time.Second})
	if _, err := plain.ListStreams(e.ctx, &kinesis.ListStreamsInput{}, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("a cleartext request to the TLS port succeeded")
	}
}

func TestServerConfigTLSErrors(t *testing.T) {
	t.Parallel()
	if _, err := server.New(server.Config{DataDir: t.TempDir(), TLSCertFile: "x.pem"}); err == nil {
		t.Fatal("TLSCertFile without TLSKeyFile accepted")
	}
	if _, err := server.New(server.Config{DataDir: t.TempDir(), TLSCertFile: "/nonexistent/c.pem", TLSKeyFile: "/nonexistent/k.pem"}); err == nil {
		t.Fatal("missing TLS files accepted")
	}
}

// Subscriptions that expire every 300 ms, renewed from their last
// ContinuationSequenceNumber with AFTER_SEQUENCE_NUMBER, deliver every record
// of a continuous write load exactly once and in order. In a synctest
// bubble (newBubbleEnv): the load is a PutRecords every 5 ms of the bubble's
// clock, which moves only while every goroutine waits, so the test sees the
// same load and the same number of lifetimes on any machine.
func TestSubscribeToShardResubscribeNoGapsNoDuplicates(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubscribeToShardResubscribeNoGapsNoDuplicates)
}

func testSubscribeToShardResubscribeNoGapsNoDuplicates(t *testing.T) {
	e := newBubbleEnv(t, server.Config{SubscriptionLifetime: 300 * time.Millisecond, SubscriptionKeepAlive: 50 * time.Millisecond})
	e.createStream("s", 1)
	c := e.register("s", "c")
	var (
		mu      sync.Mutex
		written []string
		stop    atomic.Bool
	)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; !stop.Load(); i++ {
			entries := make([]types.PutRecordsRequestEntry, 1+i%7)
			for j := range entries {
				entries[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte(fmt.Sprint(i, "-", j))}
			}
			out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
			if err != nil {
				t.Errorf("PutRecords: %v", err)
				return
			}
			mu.Lock()
			for _, r := range out.Records {
				written = append(written, *r.SequenceNumber)
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // the pace of the load (the bubble's clock)
		}
	}()
	var got []string
	pos := startPos(types.ShardIteratorTypeTrimHorizon)
	subs := 0
	deadline := time.Now().Add(2 * time.Second)
	for {
		if time.Now().After(deadline) && !stop.Load() {
			stop.Store(true)
			<-writerDone
		}
		mu.Lock()
		done := stop.Load() && len(got) == len(written)
		mu.Unlock()
		if done && subs > 3 {
			break
		}
		s := e.subscribe(c, shardID(0), pos)
		subs++
		var cont *string
		for {
			ev, err := s.next(30 * time.Second)
			if ev == nil {
				noErr(t, err, "end of subscription")
				break
			}
			got = append(got, seqsOf(ev.Records)...)
			if ev.ContinuationSequenceNumber == nil {
				t.Fatal("event without continuation on an open shard")
			}
			cont = ev.ContinuationSequenceNumber
		}
		if cont != nil {
			pos = seqPos(types.ShardIteratorTypeAfterSequenceNumber, *cont)
		}
		if subs > 200 {
			t.Fatalf("not caught up after %d subscriptions: %d of %d records", subs, len(got), len(written))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(written) {
		t.Fatalf("over %d subscriptions: got %d records, wrote %d (or in another order)", subs, len(got), len(written))
	}
	if len(written) < 10 {
		t.Fatalf("only %d records written", len(written))
	}
	t.Logf("%d records over %d subscriptions", len(written), subs)
}

// A subscriber that never reads its events slows neither the producer nor
// another subscriber of the same shard.
func TestSubscribeToShardStalledSubscriber(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e.createStream("s", 1)
	stalled := e.subscribe(e.register("s", "stalled"), shardID(0), startPos(types.ShardIteratorTypeLatest))
	_ = stalled // never read
	live := e.subscribe(e.register("s", "live"), shardID(0), startPos(types.ShardIteratorTypeLatest))
	// 16 MiB: far more than the socket buffers and the SDK's read-ahead hold.
	const batches, perBatch, size = 32, 32, 16 << 10
	payload := make([]byte, size)
	var want []string
	for b := range batches {
		entries := make([]types.PutRecordsRequestEntry, perBatch)
		for j := range entries {
			entries[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(b, j)), Data: payload}
		}
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
		noErr(t, err, "PutRecords while a subscriber is stalled")
		if out.FailedRecordCount != nil && *out.FailedRecordCount > 0 {
			t.Fatalf("%d records failed", *out.FailedRecordCount)
		}
		for _, r := range out.Records {
			want = append(want, *r.SequenceNumber)
		}
	}
	recs, _ := live.collect(len(want), time.Minute)
	if fmt.Sprint(seqsOf(recs)) != fmt.Sprint(want) {
		t.Fatalf("live subscriber got %d records, want %d in order", len(recs), len(want))
	}
}

// Shutdown ends open subscriptions at once instead of waiting out their
// five-minute lifetime, stalled or not.
func TestSubscribeToShardShutdown(t *testing.T) {
	t.Parallel()
	r := servertest.StartRestartable(t, server.Config{SubscriptionKeepAlive: time.Hour})
	e := &env{t: t, c: r.Client(), ctx: context.Background()}
	_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	reg, err := e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c")})
	noErr(t, err, "RegisterStreamConsumer")
	s := e.subscribeWith(r.Client(), *reg.Consumer.ConsumerARN, shardID(0), startPos(types.ShardIteratorTypeLatest))
	start := time.Now()
	r.Stop() // fails the test if Shutdown takes its whole 10 s context
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if ev, err := s.next(30 * time.Second); ev != nil {
		t.Fatalf("event after shutdown: %+v %v", ev, err)
	}
}
