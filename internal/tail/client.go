package tail

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/sdkhttp"
)

// maxIdleConns is the idle connections the client keeps: readers of many
// shards call at once.
const maxIdleConns = 32

// NewClient returns a Kinesis client for endpoint (AWS's own for region
// when "") that signs with the credentials of profile or the SDK's default
// chain (awscreds.Provider), or with placeholder credentials when the chain
// has none, which a shoal server without --auth-config accepts; AWS would
// refuse them, so without an endpoint that is an error. Its HTTP client is
// sdkhttp.NewClient's.
func NewClient(ctx context.Context, endpoint, region, profile string) (*kinesis.Client, error) {
	creds, err := awscreds.Provider(ctx, profile)
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	if endpoint == "" && awscreds.IsPlaceholder(creds) {
		return nil, errors.New("tail: no AWS credentials found for AWS itself (no --endpoint): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile")
	}
	cfg := aws.Config{Region: region, Credentials: creds, HTTPClient: sdkhttp.NewClient(maxIdleConns)}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
