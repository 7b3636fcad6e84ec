package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their files and a pool trusting the certificate.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoal auth test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestAuthTLS runs a server with an auth config and an audit log over TLS,
// and one with the same auth config over plain HTTP. A principal whose
// policy allows ListStreams only with aws:SecureTransport true is allowed
// over TLS and denied over HTTP; a request signed with x-amz-content-sha256
// UNSIGNED-PAYLOAD passes over TLS and is refused over HTTP. The audit
// records of the TLS 1.3 and TLS 1.2 calls carry tlsDetails in CloudTrail's
// form: tlsVersion "TLSv1.3"/"TLSv1.2", the cipher suite as CloudTrail (and
// internal/audit.TLSDetailsOf) names it, and the Host header.
func TestAuthTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t, t.TempDir())
	secure := authPrincipal{Name: "tls-only", Keys: []authKey{newAuthKey(t, "TLSONLY")}, Statements: []map[string]any{{
		"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*",
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "true"}},
	}}}
	conf := writeAuthConfig(t, secure)
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Logger: zaptest.NewLogger(t), TLSCertFile: certFile, TLSKeyFile: keyFile,
		AuthConfigFile: conf, AuditLog: auditFile, AuditDataEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	host := ln.Addr().String()
	endpoint := "https://" + host
	plain := servertest.Start(t, server.Config{AuthConfigFile: conf})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// TLS 1.2 is pinned to one suite; TLS 1.3's are not configurable (the
	// one chosen depends on the CPU's AES support).
	tlsClient := func(maxVersion uint16) *http.Client {
		tc := &tls.Config{RootCAs: pool, MaxVersion: maxVersion}
		if maxVersion == tls.VersionTLS12 {
			tc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: sdkhttp.Wrap(&http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true})}
	}
	k := secure.Keys[0]
	sdkClient := func(hc *http.Client) *kinesis.Client {
		return kinesis.NewFromConfig(aws.Config{Region: authRegion, HTTPClient: hc, RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, "")},
			func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	requestIDs := map[string]uint16{} // request id -> TLS version
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		hc := tlsClient(v)
		out, err := sdkClient(hc).ListStreams(ctx, &kinesis.ListStreamsInput{})
		if err != nil {
			t.Fatalf("ListStreams over %s with aws:SecureTransport required: %v", tls.VersionName(v), err)
		}
		requestIDs[requestIDOf(t, out.ResultMetadata, nil)] = v
		hc.CloseIdleConnections()
	}
	_, err = keyedClient(plain.Endpoint, k).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, "ListStreams over plain HTTP with aws:SecureTransport required", err, "AccessDeniedException", deniedMessage(secure.arn(), "ListStreams", "*"))

	// UNSIGNED-PAYLOAD: over TLS only.
	unsigned := func(t *testing.T, s rawSigner) rawResponse {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, "UNSIGNED-PAYLOAD", "kinesis", authRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		return s.do(t, req)
	}
	hc := tlsClient(0)
	defer hc.CloseIdleConnections()
	if r := unsigned(t, rawSigner{endpoint: endpoint, key: k, hc: hc}); r.status != http.StatusOK {
		t.Errorf("UNSIGNED-PAYLOAD over TLS: HTTP %d %s %q", r.status, r.errType, r.message)
	}
	unsigned(t, rawSigner{endpoint: plain.Endpoint, key: k, hc: http.DefaultClient}).want(t, "UNSIGNED-PAYLOAD over plain HTTP", "InvalidSignatureException",
		"x-amz-content-sha256 'UNSIGNED-PAYLOAD' is accepted only over HTTPS; over plain HTTP sign the payload (send no x-amz-content-sha256, or the hex SHA-256 of the body).")

	stop() // flushes the audit log
	recs, _ := readAudit(t, auditFile)
	found := 0
	for _, r := range recs {
		v, ok := requestIDs[r.RequestID]
		if !ok {
			continue
		}
		found++
		wantVersion, wantSuites := "TLSv1.3", []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
		if v == tls.VersionTLS12 {
			wantVersion, wantSuites = "TLSv1.2", []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}
		}
		d := r.TLSDetails
		if d == nil {
			t.Errorf("audit record of a call over %s: no tlsDetails", tls.VersionName(v))
			continue
		}
		if d.TLSVersion != wantVersion || !slices.Contains(wantSuites, d.CipherSuite) || d.ClientProvidedHostHeader != host {
			t.Errorf("audit record of a call over %s: tlsDetails %+v; want CloudTrail's form: tlsVersion %s, cipherSuite one of %v, clientProvidedHostHeader %s",
				tls.VersionName(v), *d, wantVersion, wantSuites, host)
		}
	}
	if found != len(requestIDs) {
		t.Errorf("found %d audit records of the %d calls over TLS", found, len(requestIDs))
	}
}
