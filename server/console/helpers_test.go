package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

// TestMain fails the package's tests if goroutines outlive them: every
// console a test starts must be closed, and Close must stop its goroutines.
// Ignored, on the client side of the tests' HTTP connections, net/http's
// keep-alive goroutines, which end once the server closed the connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}

// env is a server, a console serving it on loopback, and a browser: an
// HTTP client with a cookie jar.
type env struct {
	t       *testing.T
	ctx     context.Context
	srv     *servertest.Server
	con     *console.Console
	web     *httptest.Server
	browser *http.Client
	sdk     *kinesis.Client // the test's own client of the server
	csrf    string
}

// newEnv starts a server with cfg, a console for it with ccfg (its Server
// set here), and a browser session (GET session).
func newEnv(t *testing.T, cfg server.Config, ccfg console.Config) *env {
	t.Helper()
	if cfg.Fsync == server.FsyncAlways {
		cfg.Fsync = server.FsyncNever
	}
	if ccfg.History != nil && cfg.Metrics == nil {
		cfg.Metrics = ccfg.History
	}
	srv := servertest.Start(t, cfg)
	ccfg.Server = srv.Server
	if ccfg.Logger == nil {
		ccfg.Logger = zaptest.NewLogger(t)
	}
	con, err := console.New(ccfg)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	web := httptest.NewServer(con.Handler())
	t.Cleanup(func() {
		if err := con.Close(); err != nil {
			t.Errorf("console Close: %v", err)
		}
		web.Close()
	})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), srv: srv, con: con, web: web, sdk: srv.Client(),
		browser: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(e.browser.CloseIdleConnections)
	// One call over loopback, answered or refused: servertest's Shutdown
	// must find the server serving its listener.
	_, _ = e.sdk.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	var s struct {
		CSRF string `json:"csrf"`
	}
	e.mustDo(http.MethodGet, "/console/api/session", nil, http.StatusOK, &s)
	e.csrf = s.CSRF
	return e
}

// answer is one HTTP answer of the console.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error answer.
func (a answer) code() string {
	var b struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(a.body, &b)
	return b.Code
}

// do sends a request as the browser does: POSTs carry the CSRF token.
func (e *env) do(method, path string, body any) answer {
	e.t.Helper()
	return e.doWith(method, path, body, func(r *http.Request) {
		if method == http.MethodPost {
			r.Header.Set("X-Shoal-CSRF", e.csrf)
			r.Header.Set("Origin", e.web.URL)
		}
	})
}

// doWith sends a request, changed by edit before it goes.
func (e *env) doWith(method, path string, body any, edit func(*http.Request)) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.web.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	res, err := e.browser.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// mustDo sends a request, fails the test unless it is answered with
// status, and decodes the body into out (when not nil).
func (e *env) mustDo(method, path string, body any, status int, out any) answer {
	e.t.Helper()
	a := e.do(method, path, body)
	if a.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, a.status, status, a.body)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, a.body, err)
		}
	}
	return a
}

// createStream creates a stream with the test's own SDK client.
func (e *env) createStream(name string, shards int32) {
	e.t.Helper()
	if _, err := e.sdk.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		e.t.Fatalf("CreateStream: %v", err)
	}
}

// streamExists reports whether the server still has the stream.
func (e *env) streamExists(name string) bool {
	e.t.Helper()
	_, err := e.sdk.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	return err == nil
}

// put puts a record with the test's own SDK client and returns its shard.
func (e *env) put(stream, key string, data []byte) string {
	e.t.Helper()
	out, err := e.sdk.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(key), Data: data})
	if err != nil {
		e.t.Fatalf("PutRecord: %v", err)
	}
	return aws.ToString(out.ShardId)
}

// record is a Record of the console's API.
type record struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	Aggregated        bool   `json:"aggregated"`
	PartitionKey      string `json:"partitionKey"`
	ExplicitHashKey   string `json:"explicitHashKey"`
	Arrival           string `json:"arrival"`
	Data              []byte `json:"data"`
}

// page is an answer of GET records.
type page struct {
	Records            []record `json:"records"`
	Cursor             string   `json:"cursor"`
	CaughtUp           bool     `json:"caughtUp"`
	MillisBehindLatest int64    `json:"millisBehindLatest"`
}

// readAll pages through a read from query until it has caught up, and
// returns every record.
func (e *env) readAll(stream, query string) []record {
	e.t.Helper()
	var all []record
	path := "/console/api/streams/" + stream + "/records?" + query
	for i := 0; ; i++ {
		if i > 200 {
			e.t.Fatalf("read of %s not caught up after 200 pages", stream)
		}
		var p page
		e.mustDo(http.MethodGet, path, nil, http.StatusOK, &p)
		all = append(all, p.Records...)
		if p.CaughtUp {
			return all
		}
		limit := ""
		for _, kv := range strings.Split(query, "&") {
			if strings.HasPrefix(kv, "limit=") || strings.HasPrefix(kv, "key=") {
				limit += "&" + kv
			}
		}
		path = "/console/api/streams/" + stream + "/records?cursor=" + p.Cursor + limit
	}
}

// authPrincipal is one principal of an auth configuration.
type authPrincipal struct {
	name, id, secret string
	policy           string // an identity policy document
}

// writeAuthConfig writes an auth configuration of principals and returns
// its path.
func writeAuthConfig(t *testing.T, ps ...authPrincipal) string {
	t.Helper()
	type key struct {
		ID     string `json:"accessKeyId"`
		Secret string `json:"secretAccessKey"`
	}
	type entry struct {
		Name     string            `json:"name"`
		Keys     []key             `json:"accessKeys"`
		Policies []json.RawMessage `json:"policies"`
	}
	var doc struct {
		Principals []entry `json:"principals"`
	}
	for _, p := range ps {
		doc.Principals = append(doc.Principals, entry{Name: p.name, Keys: []key{{p.id, p.secret}}, Policies: []json.RawMessage{json.RawMessage(p.policy)}})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// as returns an SDK client of the server signing with p's key.
func (e *env) as(p authPrincipal) *kinesis.Client {
	return e.srv.Client(func(o *kinesis.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(p.id, p.secret, "")
	})
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data string
}

// readEvent reads the next event (skipping comment lines), or returns
// false at the end of the stream.
func readEvent(r *bufio.Reader) (sseEvent, bool) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, false
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}
