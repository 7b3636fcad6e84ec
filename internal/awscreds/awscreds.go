package awscreds

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// The placeholder credentials (see Placeholder). The access key names
// itself, so that a server with --auth-config that refuses it says which
// key it did not know.
const (
	PlaceholderAccessKeyID     = "shoal-placeholder"
	PlaceholderSecretAccessKey = "shoal-placeholder"
)

// PlaceholderSource is the Source of the placeholder credentials.
const PlaceholderSource = "ShoalPlaceholder"

// imdsDisabledEnv is the SDK's environment variable that turns the EC2
// instance metadata client off ("true") or on ("false").
const imdsDisabledEnv = "AWS_EC2_METADATA_DISABLED"

// profileEnv names the shared config profile to use, as profile does.
const profileEnv = "AWS_PROFILE"

// Provider returns the credentials provider of aws-sdk-go-v2's default
// chain (config.LoadDefaultConfig), for the shared config profile profile
// when it is not "" (config.WithSharedConfigProfile: its credentials are
// used even when AWS_ACCESS_KEY_ID is set, as with the AWS CLI's
// --profile), else for AWS_PROFILE or the "default" profile. The EC2
// instance metadata service is consulted only when
// AWS_EC2_METADATA_DISABLED=false (see the package documentation).
//
// Provider retrieves the credentials once, under ctx, before it returns, so
// that a configured source that fails (an expired SSO session, a missing
// web identity token file, a credential_process that exits with an error)
// is reported now; the provider returned caches them and refreshes them
// when they expire.
//
// When the chain finds no credentials at all and neither profile nor
// AWS_PROFILE names a profile, it returns Placeholder(), which a shoal
// server without --auth-config accepts. A named profile that does not
// exist or holds no credentials is an error.
func Provider(ctx context.Context, profile string) (aws.CredentialsProvider, error) {
	named := profile
	if named == "" {
		named = os.Getenv(profileEnv)
	}
	opts := []func(*config.LoadOptions) error{}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	imdsOn := strings.EqualFold(os.Getenv(imdsDisabledEnv), "false")
	if !imdsOn {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var notExist config.SharedConfigProfileNotExistError
		switch {
		case errors.As(err, &notExist):
			return nil, fmt.Errorf("awscreds: AWS profile %q is in neither the shared config file nor the shared credentials file: %w", notExist.Profile, err)
		case named != "":
			return nil, fmt.Errorf("awscreds: AWS profile %q: %w", named, err)
		}
		return nil, fmt.Errorf("awscreds: load the AWS configuration: %w", err)
	}
	if cfg.Credentials == nil { // not seen: LoadDefaultConfig always sets one
		return nil, errors.New("awscreds: the AWS configuration has no credentials provider")
	}
	if onlyIMDS(cfg.Credentials) && !imdsOn {
		// The chain fell through to its last step, which is off.
		if named != "" {
			return nil, fmt.Errorf("awscreds: AWS profile %q has no credentials (and the EC2 instance metadata service is not consulted unless %s=false)", named, imdsDisabledEnv)
		}
		return Placeholder(), nil
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if named != "" {
			return nil, fmt.Errorf("awscreds: AWS profile %q: retrieve credentials: %w", named, err)
		}
		return nil, fmt.Errorf("awscreds: retrieve AWS credentials: %w", err)
	}
	return cfg.Credentials, nil
}

// onlyIMDS reports whether p is the SDK chain's last resort: the EC2
// instance metadata provider that it falls back to when no other source has
// credentials, rather than one a profile chose (credential_source =
// Ec2InstanceMetadata), whose sources name the profile too.
func onlyIMDS(p aws.CredentialsProvider) bool {
	if !aws.IsCredentialsProvider(p, (*ec2rolecreds.Provider)(nil)) {
		return false
	}
	src, ok := p.(aws.CredentialProviderSource)
	if !ok {
		return true
	}
	return slices.Equal(src.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceIMDS})
}

// Placeholder returns the provider of the fixed placeholder credentials
// PlaceholderAccessKeyID / PlaceholderSecretAccessKey, with no session
// token. A shoal server without --auth-config accepts them, as it accepts
// any; one with --auth-config refuses them.
func Placeholder() aws.CredentialsProvider { return placeholder{} }

// IsPlaceholder reports whether p is, or caches, the provider Placeholder
// returns.
func IsPlaceholder(p aws.CredentialsProvider) bool {
	return p != nil && aws.IsCredentialsProvider(p, placeholder{})
}

// placeholder is the provider of the placeholder credentials.
type placeholder struct{}

// Retrieve returns the placeholder credentials; they do not expire.
func (placeholder) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{
		AccessKeyID:     PlaceholderAccessKeyID,
		SecretAccessKey: PlaceholderSecretAccessKey,
		Source:          PlaceholderSource,
	}, nil
}
