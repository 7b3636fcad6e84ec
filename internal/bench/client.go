package bench

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/sdkhttp"
)

// Client is a Kinesis client built for load generation: it owns its HTTP
// connection pool (so that no two Clients share a connection), signs with the
// credentials it is given (the bench subcommands resolve them once per run
// with awscreds.Provider: the SDK's default chain, or --profile), works
// around the aws-sdk-go-v2 "use of closed network connection" problem (see
// NewHTTPClient) and counts the retries its SDK retryer makes.
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
//
// It signs with the placeholder credentials of awscreds.Placeholder, which
// only a server without --auth-config accepts; NewClientWithCredentials
// takes others.
func NewClient(endpoint, region string, retries int) *Client {
	return NewClientWithCredentials(endpoint, region, retries, nil)
}

// NewClientWithCredentials is NewClient signing with creds; nil means the
// placeholder credentials (awscreds.Placeholder).
func NewClientWithCredentials(endpoint, region string, retries int, creds aws.CredentialsProvider) *Client {
	return newClient(endpoint, region, retries, NewHTTPClient(4), creds)
}

// NewStreamingClient is NewClient for event streams (SubscribeToShard): its
// HTTP client has no overall timeout, which would cut a subscription short,
// and bounds only the wait for response headers (sdkhttp.NewStreamingClient).
func NewStreamingClient(endpoint, region string, retries int) *Client {
	return NewStreamingClientWithCredentials(endpoint, region, retries, nil)
}

// NewStreamingClientWithCredentials is NewStreamingClient signing with
// creds; nil means the placeholder credentials (awscreds.Placeholder).
func NewStreamingClientWithCredentials(endpoint, region string, retries int, creds aws.CredentialsProvider) *Client {
	return newClient(endpoint, region, retries, sdkhttp.NewStreamingClient(4), creds)
}

func newClient(endpoint, region string, retries int, hc *http.Client, creds aws.CredentialsProvider) *Client {
	if retries < 0 {
		retries = 0
	}
	if creds == nil {
		creds = awscreds.Placeholder()
	}
	c := &Client{}
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = retries + 1
		o.RateLimiter = ratelimit.None
	})
	cfg := aws.Config{
		Region:      region,
		Credentials: creds,
		HTTPClient:  hc,
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

// NewHTTPClient returns the *http.Client of sdkhttp.NewClient: its own tuned
// transport (up to maxIdle idle connections per host) behind a RoundTripper
// that hides the request body's WriteTo method, which works around
// aws-sdk-go-v2 issues #1825 and #2737 (see sdkhttp). It lives in its own
// package so that servertest, which the producer's tests use, need not
// import this one, which imports the producer.
func NewHTTPClient(maxIdle int) *http.Client { return sdkhttp.NewClient(maxIdle) }
