package server_test

// Helpers of the authentication and authorization tests: an auth
// configuration written to a file, clients signing as its principals, and
// raw calls signed with aws-sdk-go-v2's signer.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/server"
)

const (
	acctA = "111122223333" // the server's own account in these tests
	acctB = "444455556666"
)

// principal is one entry of an auth configuration.
type principal struct {
	name, account, id, secret, token string
	policies                         []string // identity policy documents
}

// writeAuthConfig writes principals as an auth configuration file and
// returns its path.
func writeAuthConfig(t testing.TB, dir string, ps ...principal) string {
	t.Helper()
	type key struct {
		ID     string `json:"accessKeyId"`
		Secret string `json:"secretAccessKey"`
		Token  string `json:"sessionToken,omitempty"`
	}
	type entry struct {
		Name     string            `json:"name"`
		Account  string            `json:"accountId,omitempty"`
		Keys     []key             `json:"accessKeys"`
		Policies []json.RawMessage `json:"policies"`
	}
	var doc struct {
		Principals []entry `json:"principals"`
	}
	for _, p := range ps {
		e := entry{Name: p.name, Account: p.account, Keys: []key{{p.id, p.secret, p.token}}, Policies: []json.RawMessage{}}
		for _, pol := range p.policies {
			e.Policies = append(e.Policies, json.RawMessage(pol))
		}
		doc.Principals = append(doc.Principals, e)
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// allow is an identity policy allowing actions on resources.
func allow(actions, resources string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":` + actions + `,"Resource":` + resources + `}]}`
}

// newAuthEnv starts a server of account acctA verifying requests with the
// configuration of ps.
func newAuthEnv(t testing.TB, cfg server.Config, ps ...principal) *env {
	t.Helper()
	cfg.AccountID = acctA
	cfg.AuthConfigFile = writeAuthConfig(t, t.TempDir(), ps...)
	return newEnv(t, cfg)
}

// as returns a client signing with p's key, one attempt per call.
func (e *env) as(p principal, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return e.withKey(p.id, p.secret, p.token, optFns...)
}

func staticCreds(id, secret, token string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(id, secret, token)
}

func (e *env) withKey(id, secret, token string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	fns := append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.Credentials = staticCreds(id, secret, token)
		o.RetryMaxAttempts = 1
	}}, optFns...)
	return e.newClient(fns...)
}

// rawAnswer is the outcome of a raw call.
type rawAnswer struct {
	status        int
	code, message string
	requestID     string
}

// signedCall sends op with body, signed by p's key as aws-sdk-go-v2 signs
// (at signedAt; the zero time means now), and with tamper applied to the
// request after signing.
func (e *env) signedCall(p principal, op, body string, signedAt time.Time, tamper func(*http.Request)) rawAnswer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	sum := sha256.Sum256([]byte(body))
	if signedAt.IsZero() {
		signedAt = time.Now()
	}
	creds := aws.Credentials{AccessKeyID: p.id, SecretAccessKey: p.secret, SessionToken: p.token}
	if err := v4.NewSigner().SignHTTP(e.ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", signedAt); err != nil {
		e.t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var eb struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &eb)
	return rawAnswer{status: resp.StatusCode, code: eb.Type, message: eb.Message, requestID: resp.Header.Get("x-amzn-RequestId")}
}

// setBody replaces a request's body after signing.
func setBody(body string) func(*http.Request) {
	return func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader([]byte(body)))
		r.ContentLength = int64(len(body))
	}
}

// ctxWithTimeout bounds a test call.
func ctxWithTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
