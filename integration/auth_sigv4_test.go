package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// amzDate is the X-Amz-Date format.
const amzDate = "20060102T150405Z"

// rawResponse is a Kinesis response read off the wire.
type rawResponse struct {
	status    int
	errType   string // __type of an error
	message   string
	requestID string
	body      []byte
}

// rawSigner signs Kinesis JSON requests by hand with aws-sdk-go-v2's SigV4
// signer, so that a test can change them after signing.
type rawSigner struct {
	endpoint string
	key      authKey
	hc       *http.Client
}

// request returns a request of operation target with body, signed for
// service at signedAt.
func (s rawSigner) request(ctx context.Context, t *testing.T, target string, body []byte, service string, signedAt time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+target)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.key.ID, SecretAccessKey: s.key.Secret, SessionToken: s.key.Token}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, authRegion, signedAt); err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req and reads the response.
func (s rawSigner) do(t *testing.T, req *http.Request) rawResponse {
	t.Helper()
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := rawResponse{status: resp.StatusCode, body: b, requestID: resp.Header.Get("x-amzn-RequestId")}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error response %d %q: %v", resp.StatusCode, b, err)
		}
		r.errType, r.message = e.Type, e.Message
	}
	return r
}

// want fails the test unless r is a 400 with code and message msg.
func (r rawResponse) want(t *testing.T, what, code, msg string) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.errType != code || r.message != msg || r.requestID == "" {
		t.Errorf("%s: HTTP %d %s %q (request id %q); want HTTP 400 %s %q", what, r.status, r.errType, r.message, r.requestID, code, msg)
	}
}

// setBody replaces req's body with b (same length: the signed
// Content-Length stays right).
func setBody(req *http.Request, b []byte) {
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.ContentLength = int64(len(b))
}

// TestAuthRawSigV4 sends requests signed with aws-sdk-go-v2's SigV4 signer
// over plain HTTP to a server that verifies them, changing what was signed:
// a request as signed passes (and a presigned one); a body changed after
// signing and an X-Amz-Target changed after signing are
// InvalidSignatureException with the signature-mismatch text and change
// nothing; with the server's clock 6 minutes ahead or behind, a request is
// "Signature expired" or "Signature not yet current" with the exact times;
// a signature scoped to dynamodb is refused naming kinesis.
func TestAuthRawSigV4(t *testing.T) {
	admin := authPrincipal{Name: "admin", Keys: []authKey{newAuthKey(t, "ADMIN")}, Statements: []map[string]any{allowAll}}
	// The server's clock: the real one, or a fixed instant a subtest sets.
	var fixedNow atomic.Pointer[time.Time]
	now := func() time.Time {
		if p := fixedNow.Load(); p != nil {
			return *p
		}
		return time.Now()
	}
	srv := servertest.Start(t, server.Config{AuthConfigFile: writeAuthConfig(t, admin), Now: now})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ac := keyedClient(srv.Endpoint, admin.Keys[0])
	const stream = "raw-signed"
	createStreams(ctx, t, ac, stream)
	s := rawSigner{endpoint: srv.Endpoint, key: admin.Keys[0], hc: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(s.hc.CloseIdleConnections)
	// Each request is signed one second before "now" (X-Amz-Date has whole
	// seconds): well inside the allowed skew, and the same on every run.
	signAt := func() time.Time { return now().UTC().Truncate(time.Second).Add(-time.Second) }
	streamExists := func(t *testing.T, name string) bool {
		t.Helper()
		_, err := ac.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		var rnf *types.ResourceNotFoundException
		switch {
		case err == nil:
			return true
		case errors.As(err, &rnf):
			return false
		}
		t.Fatalf("describe %s: %v", name, err)
		return false
	}

	t.Run("as signed", func(t *testing.T) {
		r := s.do(t, s.request(ctx, t, "DescribeStreamSummary", []byte(`{"StreamName":"`+stream+`"}`), "kinesis", signAt()))
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(streamARNOf(stream))) {
			t.Fatalf("a request as signed: HTTP %d %s", r.status, r.body)
		}
	})

	t.Run("presigned", func(t *testing.T) {
		body := []byte(`{"StreamName":"` + stream + `"}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.Endpoint+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.DescribeStreamSummary")
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: s.key.ID, SecretAccessKey: s.key.Secret}
		u, signed, err := v4.NewSigner().PresignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", authRegion, signAt())
		if err != nil {
			t.Fatal(err)
		}
		pre, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range signed {
			if !strings.EqualFold(k, "Host") {
				pre.Header[k] = vs
			}
		}
		// The signer hoisted X-Amz-Target into the signed query string.
		if pre.Header.Get("X-Amz-Target") != "" || pre.URL.Query().Get("X-Amz-Target") == "" {
			t.Fatalf("presigned request: headers %v, URL %s; want X-Amz-Target in the query only", pre.Header, u)
		}
		if r := s.do(t, pre); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(streamARNOf(stream))) {
			t.Errorf("a presigned request: HTTP %d %s", r.status, r.body)
		}
	})

	t.Run("body changed after signing", func(t *testing.T) {
		// Signed to create raw-a, sent to create raw-b (same length).
		req := s.request(ctx, t, "CreateStream", []byte(`{"StreamName":"raw-a","ShardCount":1}`), "kinesis", signAt())
		setBody(req, []byte(`{"StreamName":"raw-b","ShardCount":1}`))
		s.do(t, req).want(t, "tampered body", "InvalidSignatureException", msgSignatureMismatch)
		if streamExists(t, "raw-a") || streamExists(t, "raw-b") {
			t.Error("a request whose signature failed created a stream")
		}
	})

	t.Run("target changed after signing", func(t *testing.T) {
		// Signed to describe the stream, sent to delete it.
		req := s.request(ctx, t, "DescribeStreamSummary", []byte(`{"StreamName":"`+stream+`"}`), "kinesis", signAt())
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream")
		s.do(t, req).want(t, "tampered X-Amz-Target", "InvalidSignatureException", msgSignatureMismatch)
		if !streamExists(t, stream) {
			t.Error("a request whose signature failed deleted the stream")
		}
	})

	t.Run("server clock ahead", func(t *testing.T) {
		at := time.Now().UTC().Truncate(time.Second)
		server := at.Add(6 * time.Minute)
		fixedNow.Store(&server)
		defer fixedNow.Store(nil)
		want := fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			at.Format(amzDate), server.Add(-5*time.Minute).Format(amzDate), server.Format(amzDate))
		s.do(t, s.request(ctx, t, "ListStreams", []byte(`{}`), "kinesis", at)).want(t, "server 6 minutes ahead", "InvalidSignatureException", want)
	})

	t.Run("server clock behind", func(t *testing.T) {
		at := time.Now().UTC().Truncate(time.Second)
		server := at.Add(-6 * time.Minute)
		fixedNow.Store(&server)
		defer fixedNow.Store(nil)
		want := fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			at.Format(amzDate), server.Add(5*time.Minute).Format(amzDate), server.Format(amzDate))
		s.do(t, s.request(ctx, t, "ListStreams", []byte(`{}`), "kinesis", at)).want(t, "server 6 minutes behind", "InvalidSignatureException", want)
	})

	// The server's Date header follows its clock, so the SDK corrects its
	// own after the first InvalidSignatureException and retries.
	t.Run("sdk corrects skew", func(t *testing.T) {
		server := time.Now().UTC().Add(-6 * time.Minute)
		fixedNow.Store(&server)
		defer fixedNow.Store(nil)
		c := keyedClient(srv.Endpoint, admin.Keys[0], func(o *kinesis.Options) { o.RetryMaxAttempts = 3 })
		out, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		if err != nil {
			t.Fatalf("ListStreams with the server's clock 6 minutes behind, with SDK retries: %v", err)
		}
		attempts, _ := retry.GetAttemptResults(out.ResultMetadata)
		if n := len(attempts.Results); n != 2 {
			t.Fatalf("ListStreams took %d attempts; want 2 (refused, then signed with the corrected clock)", n)
		}
		if code, msg := apiError(attempts.Results[0].Err); code != "InvalidSignatureException" || !strings.HasPrefix(msg, "Signature not yet current: ") {
			t.Errorf("the first attempt: %v; want InvalidSignatureException: Signature not yet current", attempts.Results[0].Err)
		}
	})

	t.Run("scoped to dynamodb", func(t *testing.T) {
		s.do(t, s.request(ctx, t, "ListStreams", []byte(`{}`), "dynamodb", signAt())).
			want(t, "signed for dynamodb", "InvalidSignatureException", "Credential should be scoped to correct service: 'kinesis'. ")
	})
}
