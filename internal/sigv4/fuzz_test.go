package sigv4_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shoalstream/shoal/internal/sigv4"
)

// fuzzSeed is one request's variable parts; the rest of the request is
// fuzzBase.
type fuzzSeed struct {
	authz, rawQuery, amzDate, contentSHA, token string
	body                                        []byte
}

var fuzzBody = []byte(`{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k"}`)

// fuzzSeeds are real SDK-signed requests: header form and presigned, with
// and without a session token. Each verifies against fuzzRequest.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	var seeds []fuzzSeed
	for _, creds := range []aws.Credentials{longTerm, temporary} {
		req := kinesisRequest(t, "https://"+testHost+"/", "PutRecord", jsonType, fuzzBody)
		sdkSign(t, req, creds, hexSHA(fuzzBody), "kinesis", testRegion, 0)
		r, body := serverSide(t, req)
		seeds = append(seeds, fuzzSeed{r.Header.Get("Authorization"), r.URL.RawQuery, r.Header.Get("X-Amz-Date"),
			"", r.Header.Get("X-Amz-Security-Token"), body})

		req = kinesisRequest(t, "https://"+testHost+"/", "PutRecord", jsonType, fuzzBody)
		req.Header.Set("X-Amz-Content-Sha256", hexSHA(fuzzBody))
		req = sdkPresign(t, req, fuzzBody, creds, "300")
		r, body = serverSide(t, req)
		seeds = append(seeds, fuzzSeed{"", r.URL.RawQuery, "", r.Header.Get("X-Amz-Content-Sha256"), "", body})
	}
	return seeds
}

// fuzzRequest builds the request the server would see: fuzzBase's headers
// (those of kinesisRequest) plus the seed's parts, set when not empty.
func fuzzRequest(s fuzzSeed) *http.Request {
	r := &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Path: "/", RawQuery: s.rawQuery},
		Host:          testHost,
		ContentLength: int64(len(s.body)),
		Header: http.Header{
			"Content-Type":          {jsonType},
			"X-Amz-Target":          {"Kinesis_20131202.PutRecord"},
			"Amz-Sdk-Invocation-Id": {"6c4b2b4e-1b7a-4d7e-9f0e-5b0e5c7f1a2b"},
			"Amz-Sdk-Request":       {"attempt=1; max=3"},
		},
	}
	for k, v := range map[string]string{"Authorization": s.authz, "X-Amz-Date": s.amzDate,
		"X-Amz-Content-Sha256": s.contentSHA, "X-Amz-Security-Token": s.token} {
		if v != "" {
			r.Header[k] = []string{v}
		}
	}
	return r
}

func TestFuzzSeedsVerify(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		if _, err := verifier(signTime).Verify(fuzzRequest(s), s.body); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
}

// checkError asserts the error contract: nil, or an *Error with one of the
// four codes, a message, and no secret or token in it unless the client sent
// it in one of inputs (messages echo some of the request).
func checkError(t *testing.T, err error, inputs ...string) {
	t.Helper()
	if err == nil {
		return
	}
	var e *sigv4.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *sigv4.Error", err, err)
	}
	switch e.Code {
	case sigv4.CodeMissingToken, sigv4.CodeIncomplete, sigv4.CodeInvalidSignature, sigv4.CodeUnrecognizedClient:
	default:
		t.Fatalf("code %q is not one of the four", e.Code)
	}
	if e.Message == "" {
		t.Fatal("empty message")
	}
	if leaksSecret(e.Message) && !leaksSecret(strings.Join(inputs, "\n")) {
		t.Fatalf("message %q reveals a secret or a token", e.Message)
	}
}

// FuzzVerify feeds arbitrary signatures, query strings, dates, payload
// hashes, tokens and bodies. Verify must never panic; its error is always an
// *Error with one of the four codes; and a request that verifies is bound to
// its body: any other body fails.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.authz, s.rawQuery, s.amzDate, s.contentSHA, s.token, s.body)
	}
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
		"a=%zz", "20260301T120000Z", "UNSIGNED-PAYLOAD", "", []byte("{}"))
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=-1", "", "STREAMING-AWS4-HMAC-SHA256-EVENTS", "t", []byte(nil))
	v := verifier(signTime)
	f.Fuzz(func(t *testing.T, authz, rawQuery, amzDate, contentSHA, token string, body []byte) {
		s := fuzzSeed{authz, rawQuery, amzDate, contentSHA, token, body}
		r := fuzzRequest(s)
		res, err := v.Verify(r, body)
		decoded, _ := url.ParseQuery(rawQuery) // messages echo decoded parameters
		checkError(t, err, authz, rawQuery, fmt.Sprint(decoded), amzDate, contentSHA)
		if err != nil {
			return
		}
		if res.AccessKeyID != akid && res.AccessKeyID != tempAKID || !res.SignedAt.Equal(signTime) {
			t.Fatalf("verified as %+v", res)
		}
		if _, err := v.Verify(r, append(body[:len(body):len(body)], 'x')); err == nil {
			t.Fatal("a verified request also verifies with another body")
		}
	})
}

// FuzzParseAuthorization: never panics; errors are IncompleteSignature; a
// parsed header has every part, and formatting it back parses to the same.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.authz != "" {
			f.Add(s.authz)
		}
	}
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=x")
	f.Add("AWS4-HMAC-SHA256 Credential")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=;, Signature==")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := sigv4.ParseAuthorization(h)
		checkError(t, err, h)
		if err != nil {
			var e *sigv4.Error
			if errors.As(err, &e) && e.Code != sigv4.CodeIncomplete {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if a.Signature == "" || len(a.SignedHeaders) == 0 {
			t.Fatalf("incomplete parse %+v", a)
		}
		for _, n := range a.SignedHeaders {
			if n == "" {
				t.Fatalf("empty signed header in %+v", a)
			}
		}
		cred := strings.Join([]string{a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator}, "/")
		again, err := sigv4.ParseAuthorization("AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" +
			strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature)
		if err != nil || strings.Join(again.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") ||
			again.AccessKeyID != a.AccessKeyID || again.Date != a.Date || again.Region != a.Region ||
			again.Service != a.Service || again.Terminator != a.Terminator || again.Signature != a.Signature {
			t.Fatalf("round trip: %+v -> %+v, %v", a, again, err)
		}
	})
}

// FuzzParseQuery: never panics; errors are IncompleteSignature; a parsed
// query has a date that parses and an expiry within 0..a week.
func FuzzParseQuery(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if s.authz == "" {
			f.Add(s.rawQuery)
		}
	}
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb%2Fc%2Fd%2Fe&X-Amz-Date=20260301T120000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=0&X-Amz-Expires=604800")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=99999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		a, err := sigv4.ParseQuery(q)
		checkError(t, err, raw, fmt.Sprint(q))
		if err != nil {
			var e *sigv4.Error
			if errors.As(err, &e) && e.Code != sigv4.CodeIncomplete {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if _, perr := time.Parse("20060102T150405Z", a.AmzDate); perr != nil {
			t.Fatalf("AmzDate %q: %v", a.AmzDate, perr)
		}
		if a.Expires < 0 || a.Expires > 7*24*time.Hour || a.Signature == "" || len(a.SignedHeaders) == 0 {
			t.Fatalf("bad parse %+v", a)
		}
	})
}
