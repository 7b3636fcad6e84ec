package bench

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Client is a Kinesis client built for load generation: it owns its HTTP
// connection pool (so that no two Clients share a connection), signs with the
// fake static credentials "shoal"/"shoal", works around the aws-sdk-go-v2
// "use of closed network connection" problem (see NewHTTPClient) and counts
// the retries its SDK retryer makes.
//
// A Client is safe for concurrent use, but the tool gives each load goroutine
// its own Client so that Retries can be attributed to that goroutine's calls.
type Client struct {
	*kinesis.Client
	retries atomic.Int64
}

// NewClient returns a Client that talks to the Kinesis-compatible endpoint
// (for example "http://127.0.0.1:4567") in region, making at most
// 1+retries attempts per call with the SDK's standard retryer (exponential
// backoff with jitter; client-side retry quotas are disabled so that a long
// run does not start failing fast once the quota bucket is empty). A negative
// retries is taken as 0.
func NewClient(endpoint, region string, retries int) *Client {
	if retries < 0 {
		retries = 0
	}
	c := &Client{}
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = retries + 1
		o.RateLimiter = ratelimit.None
	})
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", ""),
		HTTPClient:  NewHTTPClient(4),
	}
	c.Client = kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = &countingRetryer{RetryerV2: std, n: &c.retries}
	})
	return c
}

// Retries returns how many times the SDK has retried a call made with c
// (attempts after the first one), since c was created.
func (c *Client) Retries() int64 { return c.retries.Load() }

// countingRetryer wraps an SDK retryer and counts the retries it grants: the
// SDK's retry middleware asks RetryDelay once for each attempt it is about to
// make again.
type countingRetryer struct {
	aws.RetryerV2
	n *atomic.Int64
}

// RetryDelay counts a retry and delegates to the wrapped retryer.
func (r *countingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if derr == nil {
		r.n.Add(1)
	}
	return d, derr
}

// NewHTTPClient returns an *http.Client with its own tuned *http.Transport
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
func NewHTTPClient(maxIdle int) *http.Client {
	if maxIdle < 1 {
		maxIdle = 1
	}
	tr := &http.Transport{
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
	return &http.Client{Transport: bodyFixTransport{base: tr}, Timeout: time.Minute}
}

// bodyFixTransport is the RoundTripper installed by NewHTTPClient.
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
