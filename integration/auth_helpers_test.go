package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// Helpers of the authentication, authorization and audit tests (auth_*_test.go):
// auth config files, keys, signed clients, and the texts the server answers
// with.

const (
	authRegion  = "us-east-1"
	authAccount = "111122223333" // the account of every test principal but the partner
	// partnerAccount is another account, reaching authAccount's streams
	// through resource policies only.
	partnerAccount = "444455556666"
)

// The messages of the authentication failures, as Kinesis sends them.
const (
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken = "The security token included in the request is invalid."
	msgMissingToken = "Missing Authentication Token"
)

// authKey is one access key of a test principal.
type authKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	Token  string `json:"token,omitempty"`
}

// newAuthKey returns a key with a fresh random id and secret (40
// characters, as AWS's), so that a test can look for the secret anywhere.
func newAuthKey(t testing.TB, prefix string) authKey {
	t.Helper()
	return authKey{ID: randomKeyID(t, prefix), Secret: randomHex(t, 20)}
}

// randomKeyID is prefix (upper case) padded with random upper-case hex to
// the 20 characters of an AWS access key id.
func randomKeyID(t testing.TB, prefix string) string {
	t.Helper()
	id := "AKIA" + strings.ToUpper(prefix) + strings.ToUpper(randomHex(t, 10))
	return id[:20]
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// wrongSecret is k with another secret.
func (k authKey) wrongSecret() authKey {
	first := "0"
	if k.Secret[0] == '0' {
		first = "1"
	}
	k.Secret = first + k.Secret[1:]
	return k
}

// env is the environment variables of the SDKs' default credential chain
// for k.
func (k authKey) env() []string {
	e := []string{"AWS_ACCESS_KEY_ID=" + k.ID, "AWS_SECRET_ACCESS_KEY=" + k.Secret}
	if k.Token != "" {
		e = append(e, "AWS_SESSION_TOKEN="+k.Token)
	}
	return e
}

// authPrincipal is one principal of an auth config file.
type authPrincipal struct {
	Name       string
	Account    string // "" is authAccount
	Keys       []authKey
	Statements []map[string]any // of its one identity policy; none: no policy at all
}

// arn is the principal's IAM user ARN.
func (p authPrincipal) arn() string {
	return "arn:aws:iam::" + p.account() + ":user/" + p.Name
}

func (p authPrincipal) account() string {
	if p.Account == "" {
		return authAccount
	}
	return p.Account
}

// allow is an Allow statement of actions (without the "kinesis:" prefix)
// on resources.
func allow(actions []string, resources ...string) map[string]any {
	acts := make([]string, len(actions))
	for i, a := range actions {
		acts[i] = "kinesis:" + a
	}
	return map[string]any{"Effect": "Allow", "Action": acts, "Resource": resources}
}

// allowAll is kinesis:* on every resource.
var allowAll = map[string]any{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}

// authConfigJSON is the auth config file naming ps.
func authConfigJSON(t testing.TB, ps ...authPrincipal) []byte {
	t.Helper()
	type keyJSON struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken,omitempty"`
	}
	type principalJSON struct {
		Name       string           `json:"name"`
		AccountID  string           `json:"accountId"`
		AccessKeys []keyJSON        `json:"accessKeys"`
		Policies   []map[string]any `json:"policies"`
	}
	var f struct {
		Principals []principalJSON `json:"principals"`
	}
	for _, p := range ps {
		pj := principalJSON{Name: p.Name, AccountID: p.account(), Policies: []map[string]any{}}
		for _, k := range p.Keys {
			pj.AccessKeys = append(pj.AccessKeys, keyJSON{k.ID, k.Secret, k.Token})
		}
		if len(p.Statements) > 0 {
			pj.Policies = append(pj.Policies, map[string]any{"Version": "2012-10-17", "Statement": p.Statements})
		}
		f.Principals = append(f.Principals, pj)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeAuthConfig writes the auth config of ps to a new file and returns
// its path.
func writeAuthConfig(t testing.TB, ps ...authPrincipal) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFileAtomic(t, path, authConfigJSON(t, ps...))
	return path
}

// writeFileAtomic replaces path with data through a rename, so that a
// reader (the server on SIGHUP) sees the old file or the new one, never
// half of it.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// keyedClient is a servertest client of endpoint signing with k, without
// SDK retries (an error must come from the first attempt).
func keyedClient(endpoint string, k authKey, optFns ...func(*kinesis.Options)) *kinesis.Client {
	opts := append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(k.ID, k.Secret, k.Token)
		o.RetryMaxAttempts = 1
	}}, optFns...)
	return servertest.Client(endpoint, opts...)
}

// keyedStreamingClient is keyedClient for event streams (no overall HTTP
// timeout), with the SDK's default retries.
func keyedStreamingClient(endpoint string, k authKey) *kinesis.Client {
	return servertest.StreamingClient(endpoint, func(o *kinesis.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(k.ID, k.Secret, k.Token)
	})
}

// streamARNOf is the ARN of authAccount's stream name.
func streamARNOf(name string) string {
	return "arn:aws:kinesis:" + authRegion + ":" + authAccount + ":stream/" + name
}

// deniedMessage is IAM's text for a principal that no identity policy
// allows action (without "kinesis:") on resource.
func deniedMessage(principalARN, action, resource string) string {
	return "User: " + principalARN + " is not authorized to perform: kinesis:" + action + " on resource: " + resource +
		" because no identity-based policy allows the kinesis:" + action + " action"
}

// apiError returns the code and message of an SDK error ("", "" when err
// is not an API error).
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// wantAPIError fails the test unless err is the API error code with
// message msg ("" for any message).
func wantAPIError(t testing.TB, what string, err error, code, msg string) {
	t.Helper()
	c, m := apiError(err)
	if c != code || (msg != "" && m != msg) {
		t.Errorf("%s: got %v; want %s: %q", what, err, code, msg)
	}
}

// isolatedAWSEnv is the environment without any AWS_ variable, and with the
// shared config files pointing nowhere and the EC2 metadata service off:
// a child process finds the credentials it is given in extra and no others.
func isolatedAWSEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	none := filepath.Join(t.TempDir(), "no-such-aws-file")
	env = append(env, "AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_EC2_METADATA_DISABLED=true")
	return append(env, extra...)
}

// runTool runs a client program with env until it exits or ctx ends and
// returns its standard output, standard error and exit error.
func runTool(ctx context.Context, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// exitCode is the exit status in err from exec (0 for nil, -1 when the
// program did not exit by itself).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// createStreams creates each stream (one shard) with c.
func createStreams(ctx context.Context, t testing.TB, c *kinesis.Client, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(n), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatalf("create stream %s: %v", n, err)
		}
	}
}

// mustJSON unmarshals a script's output into v.
func mustJSON(t testing.TB, what string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s output: %v\n%s", what, err, b)
	}
}

// scriptError is an expected failure as a script reports it.
type scriptError struct {
	Code      *string `json:"code"`
	Message   string  `json:"message"`
	Status    int     `json:"status"`
	RequestID string  `json:"requestId"`
	Attempts  int     `json:"attempts"`
	Succeeded bool    `json:"succeeded"`
}

// check fails the test unless e is a 400 with code and message msg, from
// one attempt, with a request id.
func (e scriptError) check(t testing.TB, what, code, msg string) {
	t.Helper()
	switch {
	case e.Succeeded || e.Code == nil:
		t.Errorf("%s: the call succeeded; want %s", what, code)
	case *e.Code != code || e.Message != msg || e.Status != 400 || e.RequestID == "" || e.Attempts != 1:
		t.Errorf("%s: %s %q (HTTP %d, request id %q, %d attempts); want %s %q (HTTP 400, a request id, 1 attempt)",
			what, *e.Code, e.Message, e.Status, e.RequestID, e.Attempts, code, msg)
	}
}

func (e scriptError) String() string {
	if e.Code == nil {
		return "<no error>"
	}
	return fmt.Sprintf("%s: %s", *e.Code, e.Message)
}
