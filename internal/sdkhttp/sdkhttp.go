// Package sdkhttp builds the *http.Client that shoal's tools and tests give
// aws-sdk-go-v2's Kinesis clients. It depends on nothing of shoal's, so
// that any package (the load tool, the test server helpers) can use it.
package sdkhttp

import (
	"io"
	"net"
	"net/http"
	"time"
)

// NewClient returns an *http.Client with its own tuned *http.Transport
// (keeping up to maxIdle idle connections per host, no HTTP/2, no transparent
// compression, 64 KiB socket buffers) behind a RoundTripper that hides the
// request body's WriteTo method.
//
// Hiding WriteTo works around aws-sdk-go-v2 issues #1825 and #2737: smithy-go
// closes the request body as soon as Do returns, and its body's WriteTo then
// reports io.EOF; net/http's connection writer takes that for a failed write
// and closes the connection under a response that is still being read, so a
// call that the server answered with 200 rarely fails with "deserialization
// failed ... use of closed network connection". Through a body that only has
// Read and Close, net/http copies with Read and never sees that error.
func NewClient(maxIdle int) *http.Client {
	return &http.Client{Transport: bodyFixTransport{base: newTransport(maxIdle)}, Timeout: time.Minute}
}

// NewStreamingClient is NewClient without the client's overall Timeout,
// which bounds a whole exchange, body included, and so would cut an
// enhanced fan-out event stream (SubscribeToShard, up to 5 minutes) after a
// minute. Instead the transport bounds the wait for the response headers
// (ResponseHeaderTimeout, a minute); a request's ctx bounds the rest.
func NewStreamingClient(maxIdle int) *http.Client {
	tr := newTransport(maxIdle)
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: bodyFixTransport{base: tr}}
}

func newTransport(maxIdle int) *http.Transport {
	if maxIdle < 1 {
		maxIdle = 1
	}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          maxIdle,
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}

// bodyFixTransport is the RoundTripper installed by NewClient.
// Wrap returns base behind the same RoundTripper as NewClient's: one that
// hides the request body's WriteTo (see NewClient), for callers that need
// a transport of their own (TLS settings, HTTP/2).
func Wrap(base http.RoundTripper) http.RoundTripper { return bodyFixTransport{base: base} }

type bodyFixTransport struct {
	base http.RoundTripper
}

// RoundTrip sends a shallow copy of req whose Body exposes only Read and
// Close; req itself is not modified, as the RoundTripper contract requires.
func (t bodyFixTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	r2 := new(http.Request)
	*r2 = *req
	r2.Body = readCloserOnly{req.Body}
	return t.base.RoundTrip(r2)
}

// readCloserOnly exposes only the Read and Close methods of the body it
// wraps (in particular not WriteTo).
type readCloserOnly struct {
	rc io.ReadCloser
}

func (b readCloserOnly) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readCloserOnly) Close() error               { return b.rc.Close() }
