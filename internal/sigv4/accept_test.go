package sigv4_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/sigv4"
)

// authHeader writes an Authorization header the way the SDKs do.
func authHeader(id, scope string, signed []string, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=" + id + "/" + scope + ", SignedHeaders=" + strings.Join(signed, ";") + ", Signature=" + sig
}

const testScope = "20260301/us-east-1/kinesis/aws4_request"

// TestReferenceSignerAgreesWithSDK checks the tests' own signer against the
// SDK, so that what it signs below is trustworthy.
func TestReferenceSignerAgreesWithSDK(t *testing.T) {
	req := kinesisRequest(t, "https://"+testHost+"/", "PutRecord", jsonType, testBody)
	sdkSign(t, req, longTerm, hexSHA(testBody), "kinesis", testRegion, 0)
	authz := req.Header.Get("Authorization")
	signed := []string{"amz-sdk-invocation-id", "amz-sdk-request", "content-length", "content-type", "host", "x-amz-date", "x-amz-target"}
	sig := refSignature(refRequest{
		method: "POST", path: "/",
		headers: map[string]string{
			"amz-sdk-invocation-id": req.Header.Get("Amz-Sdk-Invocation-Id"),
			"amz-sdk-request":       "attempt=1; max=3",
			"content-length":        strconv.Itoa(len(testBody)),
			"content-type":          jsonType,
			"host":                  testHost,
			"x-amz-date":            "20260301T120000Z",
			"x-amz-target":          "Kinesis_20131202.PutRecord",
		},
		signed: signed, payloadHash: hexSHA(testBody), amzDate: "20260301T120000Z", secret: secret, scope: testScope,
	})
	if want := authHeader(akid, testScope, signed, sig); authz != want {
		t.Fatalf("SDK:       %s\nreference: %s", authz, want)
	}
}

// handSigned is a request signed by the reference signer, as net/http
// delivers it to the server.
type handSigned struct {
	header   http.Header // sent headers, besides Host and Authorization
	signed   []string
	values   map[string]string // canonical values of the signed headers
	body     []byte
	amzDate  string
	chunked  bool
	path     string
	mutateRq func(*http.Request)
}

func (h handSigned) request(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	path := h.path
	if path == "" {
		path = "/"
	}
	sig := refSignature(refRequest{method: "POST", path: path, headers: h.values, signed: h.signed,
		payloadHash: hexSHA(h.body), amzDate: h.amzDate, secret: secret, scope: testScope})
	var rd io.Reader = bytes.NewReader(h.body)
	if h.chunked {
		rd = io.MultiReader(bytes.NewReader(h.body)) // unknown length: sent chunked
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+testHost+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if h.chunked {
		req.ContentLength = -1
	}
	for k, vs := range h.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", authHeader(akid, testScope, h.signed, sig))
	if h.mutateRq != nil {
		h.mutateRq(req)
	}
	return serverSide(t, req)
}

func javaV1Request() handSigned {
	body := testBody
	ua := "aws-sdk-java/1.12.261 Linux/5.10 OpenJDK_64-Bit_Server_VM/11.0.16+8 java/11.0.16 vendor/Amazon.com_Inc. cfg/retry-mode/legacy"
	return handSigned{
		header: http.Header{
			"Amz-Sdk-Invocation-Id": {"a1b2c3"},
			"Amz-Sdk-Retry":         {"0/0/500"},
			"Content-Type":          {"application/x-amz-cbor-1.1"},
			"User-Agent":            {ua},
			"X-Amz-Date":            {"20260301T120000Z"},
			"X-Amz-Target":          {"Kinesis_20131202.PutRecord"},
		},
		signed: []string{"amz-sdk-invocation-id", "amz-sdk-retry", "content-length", "content-type", "host", "user-agent", "x-amz-date", "x-amz-target"},
		values: map[string]string{
			"amz-sdk-invocation-id": "a1b2c3", "amz-sdk-retry": "0/0/500", "content-length": strconv.Itoa(len(body)),
			"content-type": "application/x-amz-cbor-1.1", "host": testHost, "user-agent": ua,
			"x-amz-date": "20260301T120000Z", "x-amz-target": "Kinesis_20131202.PutRecord",
		},
		body: body, amzDate: "20260301T120000Z",
	}
}

// TestHandSigned covers what the Go SDK never signs but other clients do,
// signed independently with crypto/hmac.
func TestHandSigned(t *testing.T) {
	v := verifier(signTime)

	t.Run("JavaScript v3 over HTTP/2 signs :authority instead of host", func(t *testing.T) {
		h := javaV1Request()
		h.signed = []string{":authority", "content-length", "content-type", "x-amz-date", "x-amz-target"}
		h.values[":authority"] = testHost
		delete(h.header, "User-Agent")
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		h.values[":authority"] = "elsewhere.example:443"
		r, body = h.request(t)
		if _, err := v.Verify(r, body); err == nil {
			t.Fatal("a signature over another :authority verified")
		}
	})

	t.Run("Java v1 signs user-agent", func(t *testing.T) {
		r, body := javaV1Request().request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
		r.Header.Set("User-Agent", "curl/8")
		_, err := v.Verify(r, body)
		wantError(t, err, sigv4.CodeInvalidSignature, msgMismatch)
	})

	for _, date := range []string{"Sun, 01 Mar 2026 12:00:00 GMT", "Sun, 01 Mar 2026 12:00:00 -0000", "Sunday, 01-Mar-26 12:00:00 GMT"} {
		t.Run("Date header "+date, func(t *testing.T) {
			h := handSigned{
				header: http.Header{"Date": {date}, "X-Amz-Target": {"Kinesis_20131202.ListStreams"}},
				signed: []string{"date", "host", "x-amz-target"},
				values: map[string]string{"date": date, "host": testHost, "x-amz-target": "Kinesis_20131202.ListStreams"},
				body:   []byte("{}"), amzDate: "20260301T120000Z",
			}
			r, body := h.request(t)
			res, err := v.Verify(r, body)
			if err != nil || !res.SignedAt.Equal(signTime) {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
		})
	}

	t.Run("X-Amz-Date wins over Date", func(t *testing.T) {
		h := handSigned{
			header: http.Header{"Date": {"Mon, 02 Mar 2026 00:00:00 GMT"}, "X-Amz-Date": {"20260301T120000Z"}},
			signed: []string{"host", "x-amz-date"},
			values: map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z"},
			body:   nil, amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("duplicate headers joined with commas", func(t *testing.T) {
		h := handSigned{
			header: http.Header{"X-Amz-Date": {"20260301T120000Z"}, "X-Custom": {"a", " b ", "c  d"}},
			signed: []string{"host", "x-amz-date", "x-custom"},
			values: map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z", "x-custom": "a,b,c d"},
			body:   []byte("x"), amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		if got := r.Header["X-Custom"]; len(got) != 3 {
			t.Fatalf("server saw X-Custom %q, want 3 lines", got)
		}
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("values with extra spaces", func(t *testing.T) {
		h := handSigned{
			header:  http.Header{"X-Amz-Date": {"20260301T120000Z"}, "X-Custom": {"  a   b    c  "}, "X-Tab": {"\t x \t"}},
			signed:  []string{"host", "x-amz-date", "x-custom", "x-tab"},
			values:  map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z", "x-custom": "a b c", "x-tab": "x"},
			amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("signed headers in the client's order", func(t *testing.T) {
		h := handSigned{
			header:  http.Header{"X-Amz-Date": {"20260301T120000Z"}, "X-Amz-Target": {"Kinesis_20131202.ListStreams"}},
			signed:  []string{"x-amz-target", "host", "x-amz-date"},
			values:  map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z", "x-amz-target": "Kinesis_20131202.ListStreams"},
			amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("signed Expect consumed by the server", func(t *testing.T) {
		h := handSigned{
			header: http.Header{"X-Amz-Date": {"20260301T120000Z"}},
			signed: []string{"expect", "host", "x-amz-date"},
			values: map[string]string{"expect": "100-continue", "host": testHost, "x-amz-date": "20260301T120000Z"},
			body:   []byte("{}"), amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		r.Header.Del("Expect")
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("signed transfer-encoding, chunked body", func(t *testing.T) {
		h := handSigned{
			header: http.Header{"X-Amz-Date": {"20260301T120000Z"}},
			signed: []string{"host", "transfer-encoding", "x-amz-date"},
			values: map[string]string{"host": testHost, "transfer-encoding": "chunked", "x-amz-date": "20260301T120000Z"},
			body:   putRecordsBody(5000), amzDate: "20260301T120000Z", chunked: true,
		}
		r, body := h.request(t)
		if r.ContentLength != -1 || len(r.TransferEncoding) != 1 {
			t.Fatalf("server saw ContentLength %d TransferEncoding %q, want chunked", r.ContentLength, r.TransferEncoding)
		}
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("content-length signed as 0 on an empty body", func(t *testing.T) {
		h := handSigned{
			header:  http.Header{"X-Amz-Date": {"20260301T120000Z"}},
			signed:  []string{"content-length", "host", "x-amz-date"},
			values:  map[string]string{"content-length": "0", "host": testHost, "x-amz-date": "20260301T120000Z"},
			amzDate: "20260301T120000Z",
		}
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lowercase header keys, as a hand-built HTTP/2 request", func(t *testing.T) {
		r, body := javaV1Request().request(t)
		lower := http.Header{}
		for k, vs := range r.Header {
			lower[strings.ToLower(k)] = vs
		}
		r.Header = lower
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("path with escapes", func(t *testing.T) {
		h := handSigned{
			header:  http.Header{"X-Amz-Date": {"20260301T120000Z"}},
			signed:  []string{"host", "x-amz-date"},
			values:  map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z"},
			amzDate: "20260301T120000Z",
			path:    "/a%20b/c",
		}
		// Non-S3 services sign the escaped path escaped once more.
		sig := refSignature(refRequest{method: "POST", path: "/a%2520b/c", headers: h.values, signed: h.signed,
			payloadHash: hexSHA(nil), amzDate: h.amzDate, secret: secret, scope: testScope})
		h.mutateRq = func(r *http.Request) { r.Header.Set("Authorization", authHeader(akid, testScope, h.signed, sig)) }
		r, body := h.request(t)
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})
}

// TestQueryCanonicalisation: a header-signed request with a query string is
// checked against an independently encoded, sorted query.
func TestQueryCanonicalisation(t *testing.T) {
	raw := "b=2&a=z&a=1%202&%C3%A9=%2F&tilde=~&plus=a%2Bb&sp=x+y&empty"
	r, body := serverSide(t, kinesisRequest(t, "https://"+testHost+"/?"+raw, "ListStreams", jsonType, nil))
	r.Header.Set("X-Amz-Date", "20260301T120000Z")
	signed := []string{"host", "x-amz-date"}
	sig := refSignature(refRequest{method: "POST", path: "/", query: refQuery(r.URL.Query()),
		headers: map[string]string{"host": testHost, "x-amz-date": "20260301T120000Z"}, signed: signed,
		payloadHash: hexSHA(nil), amzDate: "20260301T120000Z", secret: secret, scope: testScope})
	if q := refQuery(r.URL.Query()); q != "%C3%A9=%2F&a=1%202&a=z&b=2&empty=&plus=a%2Bb&sp=x%20y&tilde=~" {
		t.Fatalf("reference query %q", q)
	}
	r.Header.Set("Authorization", authHeader(akid, testScope, signed, sig))
	if _, err := verifier(signTime).Verify(r, body); err != nil {
		t.Fatal(err)
	}
}
