package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/shoalstream/shoal/internal/sigv4"
)

const (
	testRegion = "us-east-1"
	testHost   = "kinesis.us-east-1.amazonaws.com"
	akid       = "AKIDEXAMPLE"
	secret     = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	tempAKID   = "ASIAEXAMPLE"
	tempSecret = "tempSecretKeyForTheSessionExample0000000"
	tempToken  = "FwoGZXIvYXdzEXAMPLEsessionTOKEN//////////" + "+and/more=="
)

// signTime is when every test request is signed; the verifiers' clocks run
// from it.
var signTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	longTerm  = aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	temporary = aws.Credentials{AccessKeyID: tempAKID, SecretAccessKey: tempSecret, SessionToken: tempToken}
)

// keys is the server's key store: one long-term key, one temporary.
func keys(id string) (sigv4.Key, bool) {
	switch id {
	case akid:
		return sigv4.Key{AccessKeyID: akid, SecretAccessKey: secret}, true
	case tempAKID:
		return sigv4.Key{AccessKeyID: tempAKID, SecretAccessKey: tempSecret, SessionToken: tempToken}, true
	}
	return sigv4.Key{}, false
}

// verifier returns a Verifier for testRegion whose clock reads now.
func verifier(now time.Time) *sigv4.Verifier {
	return &sigv4.Verifier{Region: testRegion, Now: func() time.Time { return now }, Lookup: keys}
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const (
	jsonType = "application/x-amz-json-1.1"
	cborType = "application/x-amz-cbor-1.1"
)

// kinesisRequest builds a client request as the Go SDK sends a Kinesis
// operation, before signing.
func kinesisRequest(t testing.TB, url, target, contentType string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+target)
	req.Header.Set("Amz-Sdk-Invocation-Id", "6c4b2b4e-1b7a-4d7e-9f0e-5b0e5c7f1a2b")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26 api/kinesis#1.56.12")
	return req
}

// sdkSign signs req in place with the SDK's signer at signTime+offset.
func sdkSign(t testing.TB, req *http.Request, creds aws.Credentials, payloadHash, service, region string, offset time.Duration) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, service, region, signTime.Add(offset)); err != nil {
		t.Fatal(err)
	}
}

// sdkPresign presigns req with the SDK (the X-Amz-* headers move into the
// query string) and returns the request to send: the presigned URL, the signed
// headers, and the body.
func sdkPresign(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, expires string) *http.Request {
	t.Helper()
	if expires != "" {
		q := req.URL.Query()
		q.Set("X-Amz-Expires", expires)
		req.URL.RawQuery = q.Encode()
	}
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hexSHA(body), "kinesis", testRegion, signTime)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "host") {
			continue
		}
		out.Header[k] = vs
	}
	return out
}

// serverSide writes the client request to the wire and reads it back as the
// HTTP/1.1 server does (http.ReadRequest is the server's parser), returning
// it and its body read in full.
func serverSide(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = http.NoBody // Verify must not read it anyway
	return r, body
}

// wantError asserts err is an *sigv4.Error with code, and message unless "".
func wantError(t testing.TB, err error, code, message string) {
	t.Helper()
	var e *sigv4.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *sigv4.Error %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%q), want %s", e.Code, e.Message, code)
	}
	if message != "" && e.Message != message {
		t.Fatalf("message =\n%q\nwant\n%q", e.Message, message)
	}
	if leaksSecret(e.Message) {
		t.Fatalf("message %q contains a secret or a session token", e.Message)
	}
}

func leaksSecret(s string) bool {
	return strings.Contains(s, secret) || strings.Contains(s, tempSecret) || strings.Contains(s, tempToken)
}

// refSignature is an independent implementation of SigV4 for the tests,
// written straight from the AWS documentation with crypto/hmac: it signs
// exactly the headers given, so it can sign what the SDK will not (a
// User-Agent, a Date header, unsorted or odd values).
type refRequest struct {
	method, path, query string
	headers             map[string]string // lowercase name → canonical value
	signed              []string          // signed header names, in order
	payloadHash         string
	amzDate             string // yyyymmddThhmmssZ
	secret, scope       string // scope: date/region/service/aws4_request
}

func refSignature(r refRequest) string {
	var cr strings.Builder
	cr.WriteString(r.method + "\n" + r.path + "\n" + r.query + "\n")
	for _, h := range r.signed {
		cr.WriteString(h + ":" + r.headers[h] + "\n")
	}
	cr.WriteString("\n" + strings.Join(r.signed, ";") + "\n" + r.payloadHash)
	sts := "AWS4-HMAC-SHA256\n" + r.amzDate + "\n" + r.scope + "\n" + hexSHA([]byte(cr.String()))
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	parts := strings.Split(r.scope, "/")
	k := mac([]byte("AWS4"+r.secret), parts[0])
	k = mac(k, parts[1])
	k = mac(k, parts[2])
	k = mac(k, parts[3])
	return hex.EncodeToString(mac(k, sts))
}

// refQuery encodes a query string canonically (independently of the package).
func refQuery(q url.Values) string {
	enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{enc(k), enc(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	var out []string
	for _, p := range pairs {
		out = append(out, p[0]+"="+p[1])
	}
	return strings.Join(out, "&")
}
