package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

var (
	admin = authPrincipal{name: "admin", id: "AKIAADMIN00000000001", secret: "admin-secret-value-123",
		policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`}
	noDelete = authPrincipal{name: "operator", id: "AKIAOPERATOR00000001", secret: "operator-secret-value-456",
		policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"kinesis:DeleteStream","Resource":"*"}]}`}
	// elsewhere may act only from 10.0.0.0/8: never the test's browser.
	elsewhere = authPrincipal{name: "remote", id: "AKIAREMOTE0000000001", secret: "remote-secret-value-789",
		policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`}
	// here may act only from the loopback address.
	here = authPrincipal{name: "local", id: "AKIALOCAL00000000001", secret: "local-secret-value-012",
		policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}]}`}
)

type sessionAnswer struct {
	Auth        bool   `json:"auth"`
	SignedIn    bool   `json:"signedIn"`
	AccessKeyID string `json:"accessKeyId"`
	CSRF        string `json:"csrf"`
	Account     string `json:"account"`
}

// newAuthEnv starts a server verifying requests, and a console whose logs
// are observed.
func newAuthEnv(t *testing.T) (*env, *observer.ObservedLogs) {
	t.Helper()
	cfg := server.Config{AuthConfigFile: writeAuthConfig(t, admin, noDelete, elsewhere, here)}
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, cfg, console.Config{Logger: zap.New(core)})
	e.sdk = e.as(admin)
	return e, logs
}

func (e *env) login(p authPrincipal) answer {
	e.t.Helper()
	return e.do(http.MethodPost, "/console/api/login", map[string]string{"accessKeyId": p.id, "secretAccessKey": p.secret})
}

func (e *env) sessionCookie() string {
	u, _ := url.Parse(e.web.URL + "/console/")
	for _, c := range e.browser.Jar.Cookies(u) {
		if c.Name == "shoal_console" {
			return c.Value
		}
	}
	return ""
}

func TestLogin(t *testing.T) {
	e, logs := newAuthEnv(t)
	e.createStream("orders", 1)

	var s sessionAnswer
	e.mustDo(http.MethodGet, "/console/api/session", nil, http.StatusOK, &s)
	if !s.Auth || s.SignedIn || s.AccessKeyID != "" || s.CSRF == "" {
		t.Fatalf("signed-out session %+v", s)
	}
	if a := e.do(http.MethodGet, "/console/api/streams", nil); a.status != http.StatusUnauthorized || a.code() != "ConsoleSignedOut" {
		t.Fatalf("signed out: %d %s", a.status, a.body)
	}

	// A wrong secret and an unknown key: the server's own errors.
	bad := admin
	bad.secret = "not-the-secret"
	if a := e.login(bad); a.status != http.StatusBadRequest || a.code() != "InvalidSignatureException" {
		t.Errorf("wrong secret: %d %s", a.status, a.body)
	}
	unknown := admin
	unknown.id = "AKIANOSUCHKEY0000001"
	if a := e.login(unknown); a.status != http.StatusBadRequest || a.code() != "UnrecognizedClientException" {
		t.Errorf("unknown key: %d %s", a.status, a.body)
	}
	if a := e.do(http.MethodGet, "/console/api/streams", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("after failed logins: %d %s", a.status, a.body)
	}

	before := e.sessionCookie()
	a := e.login(admin)
	if a.status != http.StatusOK {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	if err := json.Unmarshal(a.body, &s); err != nil || !s.SignedIn || s.AccessKeyID != admin.id || s.Account != "000000000000" {
		t.Fatalf("signed-in session %+v %v", s, err)
	}
	if after := e.sessionCookie(); after == before || after == "" {
		t.Errorf("the session id did not change at login")
	}
	var list struct {
		Streams []struct {
			Name string `json:"name"`
		} `json:"streams"`
	}
	e.mustDo(http.MethodGet, "/console/api/streams", nil, http.StatusOK, &list)
	if len(list.Streams) != 1 || list.Streams[0].Name != "orders" {
		t.Errorf("streams %+v", list)
	}
	e.mustDo(http.MethodPost, "/console/api/logout", nil, http.StatusOK, &s)
	if s.SignedIn {
		t.Errorf("after logout: %+v", s)
	}
	if a := e.do(http.MethodGet, "/console/api/streams", nil); a.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d %s", a.status, a.body)
	}

	// No secret in any log line.
	for _, entry := range logs.All() {
		line, _ := json.Marshal(entry.ContextMap())
		for _, p := range []authPrincipal{admin, bad} {
			if strings.Contains(entry.Message+string(line), p.secret) {
				t.Errorf("a secret in the log: %s %s", entry.Message, line)
			}
		}
	}
}

// TestAuthorizedAsPrincipal: the console acts as the signed-in principal,
// under its policies: a principal without DeleteStream is refused with
// AccessDeniedException, and the stream survives; a condition on
// aws:SourceIp sees the browser's address.
func TestAuthorizedAsPrincipal(t *testing.T) {
	e, _ := newAuthEnv(t)
	e.createStream("orders", 1)
	if a := e.login(noDelete); a.status != http.StatusOK {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	a := e.do(http.MethodPost, "/console/api/streams/orders/delete", map[string]any{})
	if a.status != http.StatusBadRequest || a.code() != "AccessDeniedException" || !strings.Contains(string(a.body), "kinesis:DeleteStream") {
		t.Errorf("delete as %s: %d %s", noDelete.name, a.status, a.body)
	}
	if !e.streamExists("orders") {
		t.Fatal("the refused delete deleted the stream")
	}
	// What the policy allows works.
	e.mustDo(http.MethodPost, "/console/api/streams/orders/records", map[string]any{"partitionKey": "k", "data": "aGk="}, http.StatusOK, nil)

	// The browser is on 127.0.0.1: a principal allowed only from
	// 10.0.0.0/8 signs in (its key is valid) but may do nothing; one
	// allowed only from 127.0.0.1 may.
	if a := e.login(elsewhere); a.status != http.StatusOK {
		t.Fatalf("login as %s: %d %s", elsewhere.name, a.status, a.body)
	}
	if a := e.do(http.MethodGet, "/console/api/streams/orders", nil); a.status != http.StatusBadRequest || a.code() != "AccessDeniedException" {
		t.Errorf("as %s from 127.0.0.1: %d %s", elsewhere.name, a.status, a.body)
	}
	if a := e.login(here); a.status != http.StatusOK {
		t.Fatalf("login as %s: %d %s", here.name, a.status, a.body)
	}
	e.mustDo(http.MethodGet, "/console/api/streams/orders", nil, http.StatusOK, nil)
	// The SDK's own call as elsewhere, from the test (127.0.0.1), is refused
	// as well: the console changed nothing.
	if _, err := e.as(elsewhere).DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")}); err == nil {
		t.Errorf("the SDK as %s from 127.0.0.1 was allowed", elsewhere.name)
	}
}
