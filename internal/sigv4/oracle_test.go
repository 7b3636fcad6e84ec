package sigv4_test

import (
	"bytes"

	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shoalstream/shoal/internal/sigv4"
)

// putRecordsBody is a JSON PutRecords body of about n bytes.
func putRecordsBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"StreamName":"bench","Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("record-payload-"), 6))
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Data":"%s","PartitionKey":"pk-%d"}`, data, i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// cborBody is a CBOR PutRecord body: binary, with bytes no JSON body has.
var cborBody = []byte{0xbf, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 's',
	0x64, 'D', 'a', 't', 'a', 0x44, 0x00, 0xff, 0x0d, 0x0a, 0xff}

type bodyCase struct {
	name, target, contentType string
	body                      []byte
}

var bodyCases = []bodyCase{
	{"json", "PutRecord", jsonType, []byte(`{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k"}`)},
	{"empty", "ListStreams", jsonType, nil},
	{"cbor", "PutRecord", cborType, cborBody},
	{"putrecords-70KB", "PutRecords", jsonType, putRecordsBody(70 << 10)},
}

// TestSDKSignedInProcess signs requests with aws-sdk-go-v2, in both forms,
// with and without a session token, and verifies them as the HTTP/1.1 server
// parses them.
func TestSDKSignedInProcess(t *testing.T) {
	for _, bc := range bodyCases {
		for _, creds := range []aws.Credentials{longTerm, temporary} {
			for _, form := range []string{"header", "presigned", "presigned-expires"} {
				t.Run(fmt.Sprintf("%s/%s/%s", bc.name, creds.AccessKeyID, form), func(t *testing.T) {
					req := kinesisRequest(t, "https://"+testHost+"/", bc.target, bc.contentType, bc.body)
					switch form {
					case "header":
						sdkSign(t, req, creds, hexSHA(bc.body), "kinesis", testRegion, 0)
					case "presigned":
						req = sdkPresign(t, req, bc.body, creds, "")
					default:
						req = sdkPresign(t, req, bc.body, creds, "300")
					}
					r, body := serverSide(t, req)
					res, err := verifier(signTime.Add(30*time.Second)).Verify(r, body)
					if err != nil {
						t.Fatalf("Verify: %v\nrequest: %s %s %v", err, r.Method, r.URL, r.Header)
					}
					want := sigv4.Result{
						AccessKeyID:  creds.AccessKeyID,
						SignedAt:     signTime,
						Presigned:    form != "header",
						SessionToken: creds.SessionToken != "",
					}
					if res != want {
						t.Fatalf("Result = %+v, want %+v", res, want)
					}
				})
			}
		}
	}
}

// TestSDKSignedPathAndQuery covers a path that needs escaping and a query
// string under the header form.
func TestSDKSignedPathAndQuery(t *testing.T) {
	body := []byte(`{}`)
	req := kinesisRequest(t, "https://"+testHost+"/a path/%7Eb+c/?b=2&a=1%202&a=0&empty=&sp=x+y", "ListStreams", jsonType, body)
	sdkSign(t, req, longTerm, hexSHA(body), "kinesis", testRegion, 0)
	r, got := serverSide(t, req)
	if _, err := verifier(signTime).Verify(r, got); err != nil {
		t.Fatalf("Verify: %v (path %q, query %q)", err, r.URL.EscapedPath(), r.URL.RawQuery)
	}
}

// protocol is one way of serving the test requests over a real connection.
type protocol struct {
	name      string
	tls       bool
	wantMajor int
	start     func(*httptest.Server) *http.Client
}

var protocols = []protocol{
	{"http1", false, 1, func(s *httptest.Server) *http.Client { s.Start(); return s.Client() }},
	{"h2c", false, 2, func(s *httptest.Server) *http.Client {
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
		s.Start()
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return &http.Client{Transport: &http.Transport{Protocols: p}}
	}},
	{"https1", true, 1, func(s *httptest.Server) *http.Client { s.StartTLS(); return s.Client() }},
	{"h2", true, 2, func(s *httptest.Server) *http.Client {
		s.EnableHTTP2 = true
		s.StartTLS()
		return s.Client()
	}},
}

// verifyServer starts a server whose handler reads the body, verifies it
// with v, and answers "ok <proto major>" or 400 "<code>: <message>".
func verifyServer(t *testing.T, p protocol, v *sigv4.Verifier) (*httptest.Server, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := v.Verify(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := fmt.Fprintf(w, "ok %d", r.ProtoMajor); err != nil {
			t.Error(err)
		}
	}))
	client := p.start(srv)
	t.Cleanup(srv.Close)
	t.Cleanup(client.CloseIdleConnections)
	return srv, client
}

func roundTrip(t *testing.T, client *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // the body is read in full below
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestSDKSignedRoundTrip sends SDK-signed requests over real HTTP/1.1, h2c,
// HTTPS and HTTP/2 connections and verifies them in the handler.
func TestSDKSignedRoundTrip(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv, client := verifyServer(t, p, verifier(signTime.Add(time.Second)))
			for _, bc := range bodyCases {
				for _, creds := range []aws.Credentials{longTerm, temporary} {
					for _, presign := range []bool{false, true} {
						req := kinesisRequest(t, srv.URL+"/", bc.target, bc.contentType, bc.body)
						if presign {
							req = sdkPresign(t, req, bc.body, creds, "60")
						} else {
							sdkSign(t, req, creds, hexSHA(bc.body), "kinesis", testRegion, 0)
						}
						status, got := roundTrip(t, client, req)
						if want := fmt.Sprintf("ok %d", p.wantMajor); status != http.StatusOK || got != want {
							t.Errorf("%s/%s/presign=%v: %d %q, want %q", bc.name, creds.AccessKeyID, presign, status, got, want)
						}
					}
				}
			}
		})
	}
}

// TestUnsignedPayloadNeedsTLS: Java SDK v2 sends x-amz-content-sha256:
// UNSIGNED-PAYLOAD over HTTPS. It verifies over TLS only.
func TestUnsignedPayloadNeedsTLS(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv, client := verifyServer(t, p, verifier(signTime))
			body := putRecordsBody(2000)
			req := kinesisRequest(t, srv.URL+"/", "PutRecords", jsonType, body)
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			sdkSign(t, req, longTerm, "UNSIGNED-PAYLOAD", "kinesis", testRegion, 0)
			status, got := roundTrip(t, client, req)
			if p.tls {
				if status != http.StatusOK {
					t.Fatalf("over TLS: %d %q, want ok", status, got)
				}
				return
			}
			if status != http.StatusBadRequest || !strings.HasPrefix(got, sigv4.CodeInvalidSignature+": x-amz-content-sha256 'UNSIGNED-PAYLOAD' is accepted only over HTTPS") {
				t.Fatalf("over plain HTTP: %d %q, want InvalidSignatureException", status, got)
			}
		})
	}
}

// TestUnsignedPayloadInProcess checks the same rule on r.TLS directly.
func TestUnsignedPayloadInProcess(t *testing.T) {
	body := []byte(`{"StreamName":"s"}`)
	req := kinesisRequest(t, "https://"+testHost+"/", "DescribeStream", jsonType, body)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	sdkSign(t, req, longTerm, "UNSIGNED-PAYLOAD", "kinesis", testRegion, 0)
	r, got := serverSide(t, req)
	v := verifier(signTime)
	_, err := v.Verify(r, got)
	wantError(t, err, sigv4.CodeInvalidSignature, "x-amz-content-sha256 'UNSIGNED-PAYLOAD' is accepted only over HTTPS; "+
		"over plain HTTP sign the payload (send no x-amz-content-sha256, or the hex SHA-256 of the body).")
	r.TLS = &tls.ConnectionState{}
	if _, err := v.Verify(r, got); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	// The body is not covered: another body verifies too, which is what
	// UNSIGNED-PAYLOAD means (TLS protects it in transit).
	if _, err := v.Verify(r, []byte("other")); err != nil {
		t.Fatalf("over TLS, other body: %v", err)
	}
}

// TestHexContentSHA256 is Java SDK v2 over plain HTTP: the header carries the
// body's digest, and must match it.
func TestHexContentSHA256(t *testing.T) {
	body := []byte(`{"StreamName":"s"}`)
	for _, tc := range []struct {
		name, header, code, msg string
	}{
		{"match", hexSHA(body), "", ""},
		{"match-uppercase", strings.ToUpper(hexSHA(body)), "", ""},
		{"mismatch", hexSHA([]byte("other")), sigv4.CodeInvalidSignature,
			"The provided 'x-amz-content-sha256' header does not match what was computed."},
		{"malformed", "abc", sigv4.CodeInvalidSignature, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value."},
		{"streaming-events", "STREAMING-AWS4-HMAC-SHA256-EVENTS", sigv4.CodeInvalidSignature, ""},
		{"streaming-payload", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", sigv4.CodeInvalidSignature, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kinesisRequest(t, "http://"+testHost+"/", "DescribeStream", jsonType, body)
			req.Header.Set("X-Amz-Content-Sha256", tc.header)
			sdkSign(t, req, longTerm, tc.header, "kinesis", testRegion, 0)
			r, got := serverSide(t, req)
			r.TLS = &tls.ConnectionState{} // TLS changes nothing for these
			_, err := verifier(signTime).Verify(r, got)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantError(t, err, tc.code, tc.msg)
		})
	}
}

// TestVerifyDoesNotTouchRequest: Verify must not read r.Body nor modify r.
func TestVerifyDoesNotTouchRequest(t *testing.T) {
	body := []byte(`{"StreamName":"s"}`)
	req := kinesisRequest(t, "https://"+testHost+"/?x=1", "DescribeStream", jsonType, body)
	sdkSign(t, req, longTerm, hexSHA(body), "kinesis", testRegion, 0)
	r, got := serverSide(t, req)
	sentinel := &failingBody{}
	r.Body = sentinel
	before := r.Header.Clone()
	url := r.URL.String()
	if _, err := verifier(signTime).Verify(r, got); err != nil {
		t.Fatal(err)
	}
	if sentinel.read {
		t.Fatal("Verify read r.Body")
	}
	if fmt.Sprint(before) != fmt.Sprint(r.Header) || r.URL.String() != url {
		t.Fatal("Verify modified the request")
	}
}

type failingBody struct{ read bool }

func (b *failingBody) Read([]byte) (int, error) { b.read = true; return 0, io.ErrUnexpectedEOF }
func (b *failingBody) Close() error             { return nil }

// TestPresignedSessionTokenInHeader: a presigner may leave the token out of
// the query and send it as a header.
func TestPresignedSessionTokenInHeader(t *testing.T) {
	body := []byte(`{}`)
	req := kinesisRequest(t, "https://"+testHost+"/", "ListStreams", jsonType, body)
	creds := temporary
	creds.SessionToken = ""
	req = sdkPresign(t, req, body, creds, "")
	req.Header.Set("X-Amz-Security-Token", tempToken)
	r, got := serverSide(t, req)
	res, err := verifier(signTime).Verify(r, got)
	if err != nil || !res.SessionToken || !res.Presigned {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}
