package sdkhttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// writerToBody is a request body with a WriteTo method, like smithy-go's.
type writerToBody struct {
	io.Reader
	closed bool
}

func (b *writerToBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, b.Reader) }
func (b *writerToBody) Close() error                       { b.closed = true; return nil }

type captureRT struct{ got *http.Request }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func TestBodyFixHidesWriteTo(t *testing.T) {
	body := &writerToBody{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, "http://example.invalid/", body)
	if err != nil {
		t.Fatal(err)
	}
	inner := &captureRT{}
	resp, err := (bodyFixTransport{base: inner}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // http.NoBody
	if _, ok := inner.got.Body.(io.WriterTo); ok {
		t.Fatalf("body sent to the transport still has WriteTo (%T)", inner.got.Body)
	}
	if req.Body != body {
		t.Errorf("the caller's request was modified")
	}
	b, err := io.ReadAll(inner.got.Body)
	if err != nil || string(b) != "payload" {
		t.Errorf("read %q, %v through the wrapper", b, err)
	}
	if err := inner.got.Body.Close(); err != nil || !body.closed {
		t.Errorf("Close not passed on: %v, closed=%v", err, body.closed)
	}
	if inner.got.Header.Get("X-Test") != req.Header.Get("X-Test") || inner.got.URL != req.URL {
		t.Errorf("request not copied faithfully")
	}

	// Requests without a body pass through untouched.
	req2, _ := http.NewRequest(http.MethodGet, "http://example.invalid/", nil)
	resp2, err := (bodyFixTransport{base: inner}).RoundTrip(req2)
	if err != nil || inner.got != req2 {
		t.Fatalf("bodiless request not passed through as is: %v", err)
	}
	_ = resp2.Body.Close() // http.NoBody
}

func TestNewClientUsesBodyFix(t *testing.T) {
	c := NewClient(8)
	fix, ok := c.Transport.(bodyFixTransport)
	if !ok {
		t.Fatalf("transport is %T, want bodyFixTransport", c.Transport)
	}
	tr, ok := fix.base.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != 8 {
		t.Errorf("inner transport %T not tuned: %+v", fix.base, tr)
	}
}

// TestNewStreamingClientHasNoOverallTimeout: the streaming client must not
// bound a whole exchange (it would cut event streams), but must still bound
// the wait for response headers; NewClient keeps its overall Timeout.
func TestNewStreamingClientHasNoOverallTimeout(t *testing.T) {
	c := NewStreamingClient(4)
	if c.Timeout != 0 {
		t.Errorf("streaming client Timeout %v, want 0", c.Timeout)
	}
	fix, ok := c.Transport.(bodyFixTransport)
	if !ok {
		t.Fatalf("transport is %T, want bodyFixTransport", c.Transport)
	}
	tr, ok := fix.base.(*http.Transport)
	if !ok || tr.ResponseHeaderTimeout <= 0 || tr.MaxIdleConnsPerHost != 4 {
		t.Errorf("inner transport %T: %+v, want a ResponseHeaderTimeout and 4 idle conns", fix.base, tr)
	}
	if NewClient(4).Timeout <= 0 {
		t.Error("NewClient lost its overall Timeout")
	}
}
