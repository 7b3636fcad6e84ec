// Package awscreds gives shoal's client programs (shoal bench, shoal
// leases, the examples) the credentials they sign their Kinesis requests
// with: those of aws-sdk-go-v2's default credential chain, as any AWS
// program finds them, or fixed placeholder credentials when the chain finds
// none at all.
//
// A shoal server started with --auth-config verifies every request's SigV4
// signature against the access keys its configuration lists, so a client
// needs real keys for a principal the configuration allows: export
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if the
// key has one), or name a profile of the shared config and credentials
// files (AWS_PROFILE, or the programs' --profile flag). A server started
// without --auth-config checks no signature and accepts any credentials,
// the placeholder ones included: against it the programs work with no AWS
// setup at all.
//
// # The chain
//
// Provider loads the chain with config.LoadDefaultConfig, in the SDK's
// order: the environment variables, a web identity token file, then the
// profile (--profile, which wins over keys in the environment, else
// AWS_PROFILE, else "default") of
// ~/.aws/config and ~/.aws/credentials (or AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE): static keys, assume role, SSO, login,
// credential_process, then container credentials (ECS, EKS Pod Identity).
// It retrieves the credentials once before it returns, so that an expired
// SSO session or a failing credential_process is reported at start, with
// the SDK's message, rather than on the first call.
//
// The last step of the SDK's chain, the EC2 instance metadata service
// (IMDS), is skipped unless AWS_EC2_METADATA_DISABLED=false: away from
// EC2, on a developer's machine or in CI, asking 169.254.169.254 for a role
// takes seconds of timeouts and retries before it fails, and every program
// start would pay them just to end up with the placeholder credentials. On
// an EC2 instance whose role should sign the requests, set
// AWS_EC2_METADATA_DISABLED=false (a profile with credential_source =
// Ec2InstanceMetadata needs it too); containers on ECS or EKS get their
// credentials from the container endpoint or a web identity token, which
// are not affected.
//
// # The placeholder
//
// When nothing in the chain holds credentials (no keys in the environment,
// no web identity token, no usable profile, no container endpoint, IMDS
// skipped) and no profile was asked for (neither --profile nor
// AWS_PROFILE), Provider returns Placeholder: the fixed access key
// PlaceholderAccessKeyID with secret PlaceholderSecretAccessKey. A server
// without --auth-config accepts it like any other; a server with
// --auth-config refuses it (UnrecognizedClientException: its access key is
// in no configuration), which tells the user to set credentials. A profile
// that was asked for and does not exist, or holds no credentials, is an
// error instead, and so is a configured source that fails: the placeholder
// never hides a mistake in the AWS setup.
//
// Nothing is cached between calls: every Provider call reads the
// environment and the files again.
package awscreds
