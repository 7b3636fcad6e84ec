package bench

import (
	"context"
	"flag"
	"fmt"

	"github.com/shoalstream/shoal/internal/awscreds"
)

// registerProfile registers -profile, the shared config profile every
// subcommand's clients sign with, into *profile.
func registerProfile(fs *flag.FlagSet, profile *string) {
	fs.StringVar(profile, "profile", "", "AWS shared config profile to sign with; empty: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws files...), and placeholder credentials if it finds none, which only a server without --auth-config accepts")
}

// loadCredentials resolves, once for the run, the credentials that every
// client of c signs with: those of -profile or the SDK's default chain
// (awscreds.Provider). A profile that does not exist, or a configured
// source that fails, is an error.
func (c *common) loadCredentials(ctx context.Context) error {
	p, err := awscreds.Provider(ctx, c.profile)
	if err != nil {
		return fmt.Errorf("bench: credentials: %w", err)
	}
	c.creds = p
	return nil
}

// newClient is NewClient to endpoint with c's region and credentials, and
// retries SDK retries.
func (c *common) newClient(endpoint string, retries int) *Client {
	return NewClientWithCredentials(endpoint, c.region, retries, c.creds)
}

// newStreamingClient is NewStreamingClient to endpoint with c's region,
// retries and credentials.
func (c *common) newStreamingClient(endpoint string) *Client {
	return NewStreamingClientWithCredentials(endpoint, c.region, c.retries, c.creds)
}
