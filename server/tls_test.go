package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/selfsigned"
	"github.com/shoalstream/shoal/internal/testutil/tlstest"
	"github.com/shoalstream/shoal/server"
)

// dualServer is a server answering cleartext (HTTP/1.1 and h2c) on one
// listener and TLS on another at once.
type dualServer struct {
	srv              *server.Server
	plainURL, tlsURL string
	tlsAddr          string
	served           chan error // one result per listener
	stopOnce         sync.Once
	stopErr          error
}

// startDual runs a server with cfg (a temporary DataDir, a test logger)
// through ServeCleartext and ServeTLS on two loopback ports; it is shut down
// when the test ends, unless the test called stop.
func startDual(t *testing.T, cfg server.Config) *dualServer {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Logger = zaptest.NewLogger(t)
	srv, err := server.New(cfg)
	noErr(t, err, "server.New")
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	d := &dualServer{srv: srv, plainURL: "http://" + plain.Addr().String(), tlsURL: "https://" + secure.Addr().String(),
		tlsAddr: secure.Addr().String(), served: make(chan error, 2)}
	go func() { d.served <- srv.ServeCleartext(plain) }()
	go func() { d.served <- srv.ServeTLS(secure) }()
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// stop shuts the server down with a minute to spare and returns what
// Shutdown and both Serve calls returned.
func (d *dualServer) stop() error {
	d.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var errs []error
		if err := d.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		for range 2 {
			if err := <-d.served; err != nil {
				errs = append(errs, err)
			}
		}
		d.stopErr = errors.Join(errs...)
	})
	return d.stopErr
}

// caPoolOf returns a pool trusting the PEM certificates of file.
func caPoolOf(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	noErr(t, err, "read CA")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", file)
	}
	return pool
}

// seenResponse is what a client saw of one response's connection.
type seenResponse struct {
	proto string // "HTTP/1.1", "HTTP/2.0"
	alpn  string // "" over cleartext
	tls   bool
}

// connRecorder records the connection of every response.
type connRecorder struct {
	base *http.Transport
	mu   sync.Mutex
	seen []seenResponse
}

func (r *connRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		s := seenResponse{proto: resp.Proto, tls: resp.TLS != nil}
		if resp.TLS != nil {
			s.alpn = resp.TLS.NegotiatedProtocol
		}
		r.mu.Lock()
		r.seen = append(r.seen, s)
		r.mu.Unlock()
	}
	return resp, err
}

func (r *connRecorder) all() []seenResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenResponse(nil), r.seen...)
}

// protoTransport returns a transport speaking only HTTP/1.1 (h2 false) or
// only HTTP/2 (h2 true), over TLS trusting pool or, with a nil pool, in
// cleartext (h2c with prior knowledge for HTTP/2).
func protoTransport(t *testing.T, pool *x509.CertPool, h2 bool) *connRecorder {
	var p http.Protocols
	switch {
	case !h2:
		p.SetHTTP1(true)
	case pool != nil:
		p.SetHTTP2(true)
	default:
		p.SetUnencryptedHTTP2(true)
	}
	tr := &http.Transport{Protocols: &p}
	if pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		if !h2 {
			// Offer http/1.1 through ALPN, as the SDKs of other languages
			// do (Go's HTTP/1.1-only transport offers nothing).
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &connRecorder{base: tr}
}

func tlsKinesisClient(endpoint string, rt http.RoundTripper) *kinesis.Client {
	return kinesis.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		HTTPClient:       &http.Client{Transport: sdkhttp.Wrap(rt)},
		RetryMaxAttempts: 1,
	}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// One server answers cleartext HTTP/1.1 and h2c on one listener and
// HTTP/1.1 and h2 over TLS (ALPN) on another, at once, with the self-signed
// certificate that a client trusting only ca.pem accepts. Neither listener
// speaks the other's protocol.
func TestServeTLSBesideCleartext(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startDual(t, server.Config{DataDir: dataDir, TLSSelfSignedDir: filepath.Join(dataDir, "tls"), TLSSelfSignedHosts: []string{"127.0.0.1"}})
	pool := caPoolOf(t, filepath.Join(dataDir, "tls", selfsigned.CAFileName))
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		endpoint string
		pool     *x509.CertPool
		h2       bool
		want     seenResponse
	}{
		{"http1-tls", d.tlsURL, pool, false, seenResponse{"HTTP/1.1", "http/1.1", true}},
		{"h2-tls", d.tlsURL, pool, true, seenResponse{"HTTP/2.0", "h2", true}},
		{"http1-cleartext", d.plainURL, nil, false, seenResponse{"HTTP/1.1", "", false}},
		{"h2c", d.plainURL, nil, true, seenResponse{"HTTP/2.0", "", false}},
	} {
		rec := protoTransport(t, tc.pool, tc.h2)
		c := tlsKinesisClient(tc.endpoint, rec)
		_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(tc.name), ShardCount: aws.Int32(1)})
		noErr(t, err, tc.name+": CreateStream")
		_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(tc.name), PartitionKey: aws.String("k"), Data: []byte(tc.name)})
		noErr(t, err, tc.name+": PutRecord")
		list, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		noErr(t, err, tc.name+": ListStreams")
		if !strings.Contains(strings.Join(list.StreamNames, ","), tc.name) {
			t.Errorf("%s: ListStreams %v lacks %s", tc.name, list.StreamNames, tc.name)
		}
		seen := rec.all()
		if len(seen) != 3 {
			t.Fatalf("%s: recorded %d responses, want 3", tc.name, len(seen))
		}
		for _, s := range seen {
			if s != tc.want {
				t.Errorf("%s: a response came over %+v, want %+v", tc.name, s, tc.want)
			}
		}
	}

	// Each listener refuses the other's protocol.
	if _, err := tlsKinesisClient("http://"+d.tlsAddr, protoTransport(t, nil, false)).ListStreams(ctx, &kinesis.ListStreamsInput{}); err == nil {
		t.Error("a cleartext request to the TLS listener succeeded")
	}
	if _, err := tlsKinesisClient("https"+strings.TrimPrefix(d.plainURL, "http"), protoTransport(t, pool, false)).ListStreams(ctx, &kinesis.ListStreamsInput{}); err == nil {
		t.Error("a TLS request to the cleartext listener succeeded")
	}
	// A client that trusts only the system's roots refuses the certificate.
	_, err := tlsKinesisClient(d.tlsURL, protoTransport(t, x509.NewCertPool(), false)).ListStreams(ctx, &kinesis.ListStreamsInput{})
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("a client without ca.pem: %v; want an unknown authority error", err)
	}
}

// SubscribeToShard streams over h2 with TLS and over h2c deliver records;
// Shutdown with both open ends them at once (it does not wait out their
// hour-long lifetime, which would exceed its context), stops both
// listeners, and leaves no goroutine behind (TestMain checks).
func TestServeTLSSubscribeAndShutdown(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startDual(t, server.Config{DataDir: dataDir, TLSSelfSignedDir: filepath.Join(dataDir, "tls"),
		SubscriptionKeepAlive: time.Hour, SubscriptionLifetime: time.Hour})
	pool := caPoolOf(t, filepath.Join(dataDir, "tls", selfsigned.CAFileName))
	tlsRec, h2cRec := protoTransport(t, pool, true), protoTransport(t, nil, true)
	// A client per listener: each SubscribeToShard gets its own decoder
	// (aws/smithy-go#714).
	tlsClient, h2cClient := tlsKinesisClient(d.tlsURL, tlsRec), tlsKinesisClient(d.plainURL, h2cRec)
	e := &env{t: t, c: h2cClient, ctx: context.Background()}
	_, err := h2cClient.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	var subs []*sub
	for _, c := range []struct {
		name   string
		client *kinesis.Client
	}{{"over-tls", tlsClient}, {"over-h2c", h2cClient}} {
		reg, err := c.client.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String(c.name)})
		noErr(t, err, "RegisterStreamConsumer")
		subs = append(subs, e.subscribeWith(c.client, *reg.Consumer.ConsumerARN, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon)))
	}
	put, err := tlsClient.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("both")})
	noErr(t, err, "PutRecord")
	for i, s := range subs {
		recs, _ := s.collect(1, time.Minute)
		if len(recs) != 1 || *recs[0].SequenceNumber != *put.SequenceNumber || string(recs[0].Data) != "both" {
			t.Fatalf("subscription %d read %+v, want the record put", i, recs)
		}
	}
	for _, s := range tlsRec.all() {
		if s != (seenResponse{"HTTP/2.0", "h2", true}) {
			t.Errorf("over TLS a response came over %+v", s)
		}
	}
	for _, s := range h2cRec.all() {
		if s != (seenResponse{"HTTP/2.0", "", false}) {
			t.Errorf("over h2c a response came over %+v", s)
		}
	}

	if err := d.stop(); err != nil {
		t.Fatalf("Shutdown with subscriptions open on both listeners: %v", err)
	}
	for i, s := range subs {
		// The streams have ended: the next read returns at once.
		if ev, err := s.next(time.Minute); ev != nil {
			t.Errorf("subscription %d: an event after Shutdown: %+v %v", i, ev, err)
		}
	}
	for _, u := range []string{d.tlsURL, d.plainURL} {
		c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"))
		if err == nil {
			_ = c.Close()
			t.Errorf("%s still accepts connections after Shutdown", u)
		}
	}
}

// startTLSServer runs a server with cfg through Serve, which speaks TLS when cfg
// gives a certificate, and returns its address.
func startTLSServer(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Logger = zaptest.NewLogger(t)
	srv, err := server.New(cfg)
	noErr(t, err, "server.New")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		noErr(t, srv.Shutdown(ctx), "Shutdown")
		noErr(t, <-done, "Serve")
	})
	return srv, ln.Addr().String()
}

// ReloadTLS swaps the certificate of --tls-cert/--tls-key: a new
// connection gets the new one. A certificate file that does not parse, a
// key of another certificate, a missing key and an expired certificate each
// keep the certificate in force and say why.
func TestReloadTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	later := time.Now().Add(12 * time.Hour)
	ca.Issue(t, certFile, keyFile, 1001, later)
	srv, addr := startTLSServer(t, server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 1001 {
		t.Fatalf("serial %v, want 1001", got)
	}
	// A connection opened before the reload keeps working after it.
	rec := protoTransport(t, ca.Pool, true)
	c := tlsKinesisClient("https://"+addr, rec)
	_, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams before the reload")

	ca.Issue(t, certFile, keyFile, 1002, later)
	noErr(t, srv.ReloadTLS(), "ReloadTLS")
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 1002 {
		t.Fatalf("after ReloadTLS: serial %v, want 1002", got)
	}
	_, err = c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams on the connection opened before the reload")

	good := map[string][]byte{}
	for _, f := range []string{certFile, keyFile} {
		b, err := os.ReadFile(f)
		noErr(t, err, "read")
		good[f] = b
	}
	other := t.TempDir()
	otherCert, otherKey := filepath.Join(other, "cert.pem"), filepath.Join(other, "key.pem")
	ca.Issue(t, otherCert, otherKey, 9999, later)
	otherKeyPEM, err := os.ReadFile(otherKey)
	noErr(t, err, "read")
	for _, bad := range []struct {
		name    string
		prepare func()
		want    string
	}{
		{"garbage certificate", func() {
			tlstest.ReplaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
		}, "TLS key pair"},
		{"key of another certificate", func() { tlstest.ReplaceFile(t, keyFile, otherKeyPEM) }, "private key does not match public key"},
		{"key missing", func() { noErr(t, os.Remove(keyFile), "remove") }, "no such file"},
		{"expired", func() { ca.Issue(t, certFile, keyFile, 1003, time.Now().Add(-time.Hour)) }, "expired"},
	} {
		for f, b := range good {
			tlstest.ReplaceFile(t, f, b)
		}
		bad.prepare()
		err := srv.ReloadTLS()
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "previous one stays in force") {
			t.Errorf("%s: ReloadTLS returned %v; want an error saying %q and that the previous certificate stays", bad.name, err, bad.want)
		}
		if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 1002 {
			t.Fatalf("%s: after the failed ReloadTLS the server presents serial %v, want 1002", bad.name, got)
		}
	}
	ca.Issue(t, certFile, keyFile, 1004, later)
	noErr(t, srv.ReloadTLS(), "ReloadTLS")
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 1004 {
		t.Fatalf("after a good ReloadTLS: serial %v, want 1004", got)
	}
}

// With TLSSelfSignedDir, ReloadTLS makes a server certificate again where
// New would (removed files, nearing expiry on the server's clock), signed by
// the same CA; Serve speaks TLS with it.
func TestReloadTLSSelfSigned(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // how far the server's clock is ahead
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	dir := filepath.Join(t.TempDir(), "tls")
	srv, addr := startTLSServer(t, server.Config{TLSSelfSignedDir: dir, TLSSelfSignedHosts: []string{"127.0.0.1"}, Now: now})
	caFile, _, certFile, keyFile := selfsigned.Paths(dir)
	pool := caPoolOf(t, caFile)
	first := tlstest.PresentedSerial(t, addr, pool)

	noErr(t, srv.ReloadTLS(), "ReloadTLS with nothing to renew")
	if got := tlstest.PresentedSerial(t, addr, pool); got.Cmp(first) != 0 {
		t.Fatalf("a reload with nothing to renew changed the serial from %x to %x", first, got)
	}

	noErr(t, os.Remove(certFile), "remove server.pem")
	noErr(t, os.Remove(keyFile), "remove server-key.pem")
	noErr(t, srv.ReloadTLS(), "ReloadTLS after the server files were removed")
	second := tlstest.PresentedSerial(t, addr, pool) // verified with the same ca.pem
	if second.Cmp(first) == 0 {
		t.Fatal("ReloadTLS after the server files were removed kept the old certificate")
	}

	// 800 days on, the 825-day certificate is within 30 days of expiry.
	offset.Store(int64(800 * 24 * time.Hour))
	noErr(t, srv.ReloadTLS(), "ReloadTLS near expiry")
	third := tlstest.PresentedSerial(t, addr, nil) // valid from the server's clock on, not the client's
	if third.Cmp(second) == 0 {
		t.Fatal("ReloadTLS near expiry kept the old certificate")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	noErr(t, err, "load the renewed pair")
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	noErr(t, err, "parse")
	if leaf.SerialNumber.Cmp(third) != 0 {
		t.Errorf("served serial %x, server.pem holds %x", third, leaf.SerialNumber)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPoolOf(t, caFile), CurrentTime: now(), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the renewed certificate does not verify with the same ca.pem: %v", err)
	}
}

// ServeTLS needs a certificate; the TLS settings are checked.
func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Config{DataDir: t.TempDir()})
	noErr(t, err, "server.New")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err, "listen")
	defer func() { _ = ln.Close() }()
	if err := srv.ServeTLS(ln); err == nil || !strings.Contains(err.Error(), "without a TLS certificate") {
		t.Errorf("ServeTLS without a certificate: %v", err)
	}
	noErr(t, srv.ReloadTLS(), "ReloadTLS without TLS")
	noErr(t, srv.Shutdown(context.Background()), "Shutdown")

	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	noErr(t, os.WriteFile(notDir, nil, 0o600), "write")
	for _, tc := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"self-signed and files", server.Config{TLSSelfSignedDir: dir, TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, "exclude each other"},
		{"hosts without self-signed", server.Config{TLSSelfSignedHosts: []string{"127.0.0.1"}}, "needs TLSSelfSignedDir"},
		{"self-signed dir is a file", server.Config{TLSSelfSignedDir: notDir}, "not a directory"},
	} {
		tc.cfg.DataDir = t.TempDir()
		if srv, err := server.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			if err == nil {
				_ = srv.Shutdown(context.Background())
			}
			t.Errorf("%s: New returned %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
