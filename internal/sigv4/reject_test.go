package sigv4_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shoalstream/shoal/internal/sigv4"
)

const msgMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

const msgInvalidToken = "The security token included in the request is invalid."

var testBody = []byte(`{"StreamName":"orders","Data":"aGVsbG8=","PartitionKey":"k"}`)

// mutation describes one way to spoil an SDK-signed request.
type mutation struct {
	name        string
	creds       aws.Credentials // zero: longTerm
	service     string          // zero: kinesis
	region      string          // zero: testRegion
	beforeSign  func(*http.Request)
	afterSign   func(*http.Request)                 // client request, before it is sent
	server      func(r *http.Request, body *[]byte) // as received
	now         time.Duration                       // verifier clock: signTime+now
	code, msg   string                              // msg "" checks the code only
	msgContains string
}

func runMutation(t *testing.T, m mutation) {
	t.Helper()
	creds := m.creds
	if creds.AccessKeyID == "" {
		creds = longTerm
	}
	service, region := m.service, m.region
	if service == "" {
		service = "kinesis"
	}
	if region == "" {
		region = testRegion
	}
	req := kinesisRequest(t, "https://"+testHost+"/", "PutRecord", jsonType, testBody)
	if m.beforeSign != nil {
		m.beforeSign(req)
	}
	sdkSign(t, req, creds, hexSHA(testBody), service, region, 0)
	if m.afterSign != nil {
		m.afterSign(req)
	}
	r, body := serverSide(t, req)
	if m.server != nil {
		m.server(r, &body)
	}
	res, err := verifier(signTime.Add(m.now)).Verify(r, body)
	if m.code == "" {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Verify accepted the request: %+v", res)
	}
	wantError(t, err, m.code, m.msg)
	if m.msgContains != "" && !strings.Contains(err.Error(), m.msgContains) {
		t.Fatalf("error %q does not contain %q", err, m.msgContains)
	}
}

func setAuthz(f func(string) string) func(*http.Request, *[]byte) {
	return func(r *http.Request, _ *[]byte) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) }
}

// TestRejections spoils an SDK-signed request one part at a time and checks
// the exact code (and message, where Kinesis's is known).
func TestRejections(t *testing.T) {
	cases := []mutation{
		{name: "control"},
		{name: "wrong secret", creds: aws.Credentials{AccessKeyID: akid, SecretAccessKey: "not-the-secret"},
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "unknown key", creds: aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: secret},
			code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "no signature at all", server: func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") },
			code: sigv4.CodeMissingToken, msg: "Missing Authentication Token"},
		{name: "empty authorization", server: func(r *http.Request, _ *[]byte) { r.Header.Set("Authorization", "") },
			code: sigv4.CodeMissingToken, msg: "Missing Authentication Token"},
		{name: "no Signature part", server: setAuthz(func(h string) string { return h[:strings.Index(h, ", Signature=")] }),
			code: sigv4.CodeIncomplete, msgContains: "IncompleteSignatureException: Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/kinesis/aws4_request, SignedHeaders="},
		{name: "tampered body", server: func(_ *http.Request, b *[]byte) { (*b)[10] ^= 1 },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "body truncated", server: func(_ *http.Request, b *[]byte) { *b = (*b)[:len(*b)-1] },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "X-Amz-Target changed after signing",
			afterSign: func(r *http.Request) { r.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream") },
			code:      sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "content-type changed after signing",
			afterSign: func(r *http.Request) { r.Header.Set("Content-Type", cborType) },
			code:      sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "host changed", server: func(r *http.Request, _ *[]byte) { r.Host = "kinesis.eu-west-1.amazonaws.com" },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "method changed", server: func(r *http.Request, _ *[]byte) { r.Method = http.MethodPut },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "path changed", server: func(r *http.Request, _ *[]byte) { r.URL.Path = "/x" },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "query added", server: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "a=1" },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "unsigned header added after signing is ignored",
			afterSign: func(r *http.Request) { r.Header.Set("X-Forwarded-For", "10.0.0.1") }},
		{name: "clock 6 min ahead", now: 6 * time.Minute, code: sigv4.CodeInvalidSignature,
			msg: "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120600Z - 5 min.)"},
		{name: "clock 6 min behind", now: -6 * time.Minute, code: sigv4.CodeInvalidSignature,
			msg: "Signature not yet current: 20260301T120000Z is still later than 20260301T115900Z (20260301T115400Z + 5 min.)"},
		{name: "clock 4m59s ahead", now: 4*time.Minute + 59*time.Second},
		{name: "clock 4m59s behind", now: -(4*time.Minute + 59*time.Second)},
		{name: "clock 5m ahead", now: 5 * time.Minute},
		{name: "clock 5m behind", now: -5 * time.Minute},
		{name: "clock 5m0.9s ahead (sub-second ignored)", now: 5*time.Minute + 900*time.Millisecond},
		{name: "clock 5m1s ahead", now: 5*time.Minute + time.Second, code: sigv4.CodeInvalidSignature,
			msg: "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z (20260301T120501Z - 5 min.)"},
		{name: "other region", region: "eu-west-1", code: sigv4.CodeInvalidSignature,
			msg: "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{name: "other service", service: "dynamodb", code: sigv4.CodeInvalidSignature,
			msg: "Credential should be scoped to correct service: 'kinesis'. "},
		{name: "other region and service", service: "firehose", region: "eu-west-1", code: sigv4.CodeInvalidSignature,
			msg: "Credential should be scoped to a valid region, not 'eu-west-1'. Credential should be scoped to correct service: 'kinesis'. "},
		{name: "scope date is not the request date",
			server: setAuthz(func(h string) string { return strings.Replace(h, "/20260301/", "/20260302/", 1) }),
			code:   sigv4.CodeInvalidSignature,
			msg:    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260302' != '20260301', from '20260301T120000Z'. "},
		{name: "wrong terminator",
			server: setAuthz(func(h string) string { return strings.Replace(h, "/aws4_request", "/aws5_request", 1) }),
			code:   sigv4.CodeInvalidSignature,
			msg:    "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "},
		{name: "other algorithm",
			server: setAuthz(func(h string) string { return strings.Replace(h, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1) }),
			code:   sigv4.CodeIncomplete, msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."},
		{name: "signed header missing",
			beforeSign: func(r *http.Request) { r.Header.Set("X-Custom", "v") },
			server:     func(r *http.Request, _ *[]byte) { r.Header.Del("X-Custom") },
			code:       sigv4.CodeInvalidSignature, msg: "Header 'x-custom' is named in SignedHeaders but is not present in the request."},
		{name: "signed header duplicated after signing",
			beforeSign: func(r *http.Request) { r.Header.Set("X-Custom", "v") },
			server:     func(r *http.Request, _ *[]byte) { r.Header.Add("X-Custom", "w") },
			code:       sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "host not signed",
			server: setAuthz(func(h string) string { return strings.Replace(h, ";host;", ";", 1) }),
			code:   sigv4.CodeInvalidSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "unparsable X-Amz-Date", server: func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Date", "2026-03-01T12:00:00Z") },
			code: sigv4.CodeIncomplete,
			msg:  "Date must be in ISO-8601 'basic format'. Got '2026-03-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "X-Amz-Date of 30 February", server: func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Date", "20260230T120000Z") },
			code: sigv4.CodeIncomplete},
		{name: "no date header", server: func(r *http.Request, _ *[]byte) { r.Header.Del("X-Amz-Date") },
			code: sigv4.CodeIncomplete, msgContains: ": Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential="},
		{name: "credential with 4 parts",
			server: setAuthz(func(h string) string { return strings.Replace(h, "/kinesis/", "/", 1) }),
			code:   sigv4.CodeIncomplete,
			msg:    "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20260301/us-east-1/aws4_request'"},
		{name: "signature in uppercase hex",
			server: setAuthz(func(h string) string {
				i := strings.Index(h, "Signature=") + len("Signature=")
				return h[:i] + strings.ToUpper(h[i:])
			}),
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "signature truncated",
			server: setAuthz(func(h string) string { return h[:len(h)-2] }),
			code:   sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "both header and query auth",
			server: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" },
			code:   sigv4.CodeInvalidSignature,
			msg:    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."},
		{name: "malformed query", server: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "a=%zz" },
			code: sigv4.CodeIncomplete},

		// Session tokens.
		{name: "temporary key with its token", creds: temporary},
		{name: "token mismatch", creds: aws.Credentials{AccessKeyID: tempAKID, SecretAccessKey: tempSecret, SessionToken: tempToken + "x"},
			code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "token replaced after signing", creds: temporary,
			server: func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Security-Token", "other") },
			code:   sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "token with a long-term key", creds: aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: tempToken},
			code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "temporary key without its token", creds: aws.Credentials{AccessKeyID: tempAKID, SecretAccessKey: tempSecret},
			code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "signed token removed", creds: temporary,
			server: func(r *http.Request, _ *[]byte) { r.Header.Del("X-Amz-Security-Token") },
			code:   sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
	}
	for _, m := range cases {
		t.Run(m.name, func(t *testing.T) { runMutation(t, m) })
	}
}

// TestIncompleteMessages checks Kinesis's wording for a header that lacks
// every part, and the echo of the header.
func TestIncompleteMessages(t *testing.T) {
	r, body := serverSide(t, kinesisRequest(t, "https://"+testHost+"/", "ListStreams", jsonType, nil))
	for _, tc := range []struct{ header, msg string }{
		{"AWS4-HMAC-SHA256", "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
			"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. " +
			"Authorization=AWS4-HMAC-SHA256"},
		{"AWS4-HMAC-SHA256 Credential=A/20260301/us-east-1/kinesis/aws4_request, Signature=00",
			"Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. " +
				"Authorization=AWS4-HMAC-SHA256 Credential=A/20260301/us-east-1/kinesis/aws4_request, Signature=00"},
		{"AWS4-HMAC-SHA256 FooBar, Baz=1",
			"'FooBar' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 FooBar, Baz=1'"},
		{"Bearer abc", "Unsupported AWS 'algorithm': 'Bearer'."},
	} {
		r.Header.Set("Authorization", tc.header)
		_, err := verifier(signTime).Verify(r, body)
		wantError(t, err, sigv4.CodeIncomplete, tc.msg)
	}
}

// TestPresignedRejections covers the query-string form's own failures.
func TestPresignedRejections(t *testing.T) {
	presigned := func(t *testing.T, expires string) (*http.Request, []byte) {
		req := kinesisRequest(t, "https://"+testHost+"/", "PutRecord", jsonType, testBody)
		return serverSide(t, sdkPresign(t, req, testBody, longTerm, expires))
	}
	setQuery := func(r *http.Request, k, v string) {
		q := r.URL.Query()
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		r.URL.RawQuery = q.Encode()
	}
	for _, tc := range []struct {
		name    string
		expires string
		now     time.Duration
		mutate  func(*http.Request, *[]byte)
		code    string
		msg     string
	}{
		{name: "expires 60, 60 s later", expires: "60", now: 60 * time.Second},
		{name: "expires 60, 61 s later", expires: "60", now: 61 * time.Second, code: sigv4.CodeInvalidSignature,
			msg: "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z (20260301T120101Z - 1 min.)"},
		{name: "expires 90, 91 s later", expires: "90", now: 91 * time.Second, code: sigv4.CodeInvalidSignature,
			msg: "Signature expired: 20260301T120000Z is now earlier than 20260301T120001Z (20260301T120131Z - 90 sec.)"},
		{name: "expires a week, 6 days later", expires: "604800", now: 6 * 24 * time.Hour},
		{name: "no expires, 6 min later", now: 6 * time.Minute, code: sigv4.CodeInvalidSignature,
			msg: "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120600Z - 5 min.)"},
		{name: "signed 6 min in the future", expires: "3600", now: -6 * time.Minute, code: sigv4.CodeInvalidSignature,
			msg: "Signature not yet current: 20260301T120000Z is still later than 20260301T115900Z (20260301T115400Z + 5 min.)"},
		{name: "expires 0", expires: "300", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Expires", "0") },
			code: sigv4.CodeIncomplete, msg: "X-Amz-Expires must be at least 1 second, got '0'."},
		{name: "expires over a week", expires: "300", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Expires", "604801") },
			code: sigv4.CodeIncomplete, msg: "X-Amz-Expires must be less than a week (in seconds) that is 604800"},
		{name: "expires not a number", expires: "300", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Expires", "5m") },
			code: sigv4.CodeIncomplete, msg: "X-Amz-Expires should be a number, got '5m'."},
		{name: "expires lengthened", expires: "300", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Expires", "3600") },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "no signature", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Signature", "") },
			code: sigv4.CodeIncomplete, msg: "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters."},
		{name: "no credential and date", mutate: func(r *http.Request, _ *[]byte) {
			setQuery(r, "X-Amz-Credential", "")
			setQuery(r, "X-Amz-Date", "")
		}, code: sigv4.CodeIncomplete,
			msg: "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters."},
		{name: "other algorithm", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256") },
			code: sigv4.CodeIncomplete, msg: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'."},
		{name: "parameter added", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "Extra", "1") },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "target changed", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Target", "Kinesis_20131202.DeleteStream") },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "body changed", mutate: func(_ *http.Request, b *[]byte) { (*b)[3] ^= 1 },
			code: sigv4.CodeInvalidSignature, msg: msgMismatch},
		{name: "also an Authorization header", mutate: func(r *http.Request, _ *[]byte) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 x=y") },
			code: sigv4.CodeInvalidSignature, msg: "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."},
		{name: "unknown key", mutate: func(r *http.Request, _ *[]byte) {
			setQuery(r, "X-Amz-Credential", strings.Replace(r.URL.Query().Get("X-Amz-Credential"), akid, "AKIDOTHER", 1))
		}, code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
		{name: "token with a long-term key", mutate: func(r *http.Request, _ *[]byte) { setQuery(r, "X-Amz-Security-Token", "t") },
			code: sigv4.CodeUnrecognizedClient, msg: msgInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := presigned(t, tc.expires)
			if tc.mutate != nil {
				tc.mutate(r, &body)
			}
			res, err := verifier(signTime.Add(tc.now)).Verify(r, body)
			if tc.code == "" {
				if err != nil || !res.Presigned {
					t.Fatalf("Verify = %+v, %v", res, err)
				}
				return
			}
			wantError(t, err, tc.code, tc.msg)
		})
	}
}

// TestVerifierDefaults: an unset Region accepts any region; a nil Lookup
// knows no key; Service and MaxSkew default to kinesis and 5 minutes.
func TestVerifierDefaults(t *testing.T) {
	req := kinesisRequest(t, "https://"+testHost+"/", "ListStreams", jsonType, nil)
	sdkSign(t, req, longTerm, hexSHA(nil), "kinesis", "ap-south-2", 0)
	r, body := serverSide(t, req)

	v := &sigv4.Verifier{Lookup: keys, Now: func() time.Time { return signTime.Add(5 * time.Minute) }}
	if _, err := v.Verify(r, body); err != nil {
		t.Fatalf("any region: %v", err)
	}
	v = &sigv4.Verifier{Lookup: keys, Now: func() time.Time { return signTime.Add(5*time.Minute + time.Second) }}
	_, err := v.Verify(r, body)
	wantError(t, err, sigv4.CodeInvalidSignature, "")
	_, err = (&sigv4.Verifier{Now: func() time.Time { return signTime }}).Verify(r, body)
	wantError(t, err, sigv4.CodeUnrecognizedClient, msgInvalidToken)
	v = &sigv4.Verifier{Lookup: keys, Service: "firehose", MaxSkew: time.Minute, Now: func() time.Time { return signTime.Add(2 * time.Minute) }}
	_, err = v.Verify(r, body)
	wantError(t, err, sigv4.CodeInvalidSignature, "Signature expired: 20260301T120000Z is now earlier than 20260301T120100Z (20260301T120200Z - 1 min.)")
	v.Now = func() time.Time { return signTime }
	_, err = v.Verify(r, body)
	wantError(t, err, sigv4.CodeInvalidSignature, "Credential should be scoped to correct service: 'firehose'. ")
}

// TestDegenerateRequests: requests no server delivers, built by hand, fail
// cleanly.
func TestDegenerateRequests(t *testing.T) {
	v := verifier(signTime)
	_, err := v.Verify(&http.Request{}, nil)
	wantError(t, err, sigv4.CodeMissingToken, "Missing Authentication Token")
	req := kinesisRequest(t, "https://"+testHost+"/", "ListStreams", jsonType, nil)
	sdkSign(t, req, longTerm, hexSHA(nil), "kinesis", testRegion, 0)
	r, body := serverSide(t, req)
	r.URL, r.Host, r.ContentLength = nil, "", -1
	_, err = v.Verify(r, body)
	wantError(t, err, sigv4.CodeInvalidSignature, "Header 'host' is named in SignedHeaders but is not present in the request.")
}
