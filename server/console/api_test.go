package console_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

const wantCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// checkHeaders checks the headers every answer carries, and that only the
// page is HTML.
func checkHeaders(t *testing.T, what string, a answer, page bool) {
	t.Helper()
	h := a.header
	if got := h.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("%s: Content-Security-Policy %q", what, got)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("%s: X-Content-Type-Options %q, Referrer-Policy %q", what, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
	}
	ct := h.Get("Content-Type")
	if page {
		if !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q, want text/html", what, ct)
		}
		return
	}
	if strings.Contains(ct, "html") {
		t.Errorf("%s: Content-Type %q: only the page may be HTML", what, ct)
	}
	if strings.HasPrefix(what, "GET /console/api/") || strings.HasPrefix(what, "POST /console/api/") {
		if ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", what, h.Get("Cache-Control"))
		}
	}
}

func TestStatusCodes(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("orders", 2)
	e.put("orders", "k", []byte("hello"))
	type tc struct {
		method, path string
		body         any
		status       int
		code         string
	}
	for _, c := range []tc{
		{"GET", "/console/api/session", nil, 200, ""},
		{"GET", "/console/api/streams", nil, 200, ""},
		{"POST", "/console/api/streams", map[string]any{"name": "created", "mode": "PROVISIONED", "shardCount": 1}, 200, ""},
		{"POST", "/console/api/streams", map[string]any{"name": "created", "mode": "PROVISIONED", "shardCount": 1}, 400, "ResourceInUseException"},
		{"POST", "/console/api/streams", map[string]any{"name": "x", "bogus": 1}, 400, "ConsoleBadRequest"},
		{"GET", "/console/api/streams/orders", nil, 200, ""},
		{"GET", "/console/api/streams/nosuch", nil, 400, "ResourceNotFoundException"},
		{"POST", "/console/api/streams/orders/retention", map[string]any{"hours": 48}, 200, ""},
		{"POST", "/console/api/streams/orders/retention", map[string]any{"hours": 24}, 200, ""},
		{"POST", "/console/api/streams/orders/retention", map[string]any{"hours": 1}, 400, "InvalidArgumentException"},
		{"POST", "/console/api/streams/orders/shard-count", map[string]any{"count": 0}, 400, "ValidationException"},
		{"POST", "/console/api/streams/orders/shard-count", map[string]any{"count": 4}, 200, ""},
		{"POST", "/console/api/streams/orders/tags", map[string]any{"add": map[string]string{"team": "a", "x": "y"}, "remove": []string{"x"}}, 200, ""},
		{"POST", "/console/api/streams/orders/monitoring", map[string]any{"metrics": []string{"IncomingBytes"}}, 200, ""},
		{"POST", "/console/api/streams/orders/monitoring", map[string]any{"metrics": []string{"Bogus"}}, 400, "ValidationException"},
		{"POST", "/console/api/streams/orders/encryption", map[string]any{"keyId": ""}, 200, ""},
		{"GET", "/console/api/streams/orders/shards", nil, 200, ""},
		{"POST", "/console/api/streams/created/split", map[string]any{"shardId": "shardId-000000000000", "newStartingHashKey": "1"}, 200, ""},
		{"POST", "/console/api/streams/created/split", map[string]any{"shardId": "shardId-000000000001", "newStartingHashKey": "0"}, 400, "InvalidArgumentException"},
		{"POST", "/console/api/streams/created/merge", map[string]any{"shardId": "shardId-000000000001", "adjacentShardId": "shardId-000000000002"}, 200, ""},
		{"POST", "/console/api/streams/created/mode", map[string]any{"mode": "ON_DEMAND"}, 200, ""},
		{"GET", "/console/api/streams/orders/records?from=TRIM_HORIZON", nil, 200, ""},
		{"GET", "/console/api/streams/orders/records?from=SOMEWHERE", nil, 400, "ConsoleBadRequest"},
		{"GET", "/console/api/streams/orders/records?limit=0", nil, 400, "ConsoleBadRequest"},
		{"GET", "/console/api/streams/orders/records?cursor=forged", nil, 400, "ConsoleBadRequest"},
		{"GET", "/console/api/streams/orders/records?shard=shardId-000000000099", nil, 400, "ResourceNotFoundException"},
		{"POST", "/console/api/streams/orders/records", map[string]any{"partitionKey": "k", "data": "aGk="}, 200, ""},
		{"POST", "/console/api/streams/orders/records", map[string]any{"partitionKey": "", "data": "aGk="}, 400, "ValidationException"},
		{"GET", "/console/api/streams/orders/consumers", nil, 200, ""},
		{"POST", "/console/api/streams/orders/consumers", map[string]any{"name": "app"}, 200, ""},
		{"POST", "/console/api/streams/orders/consumers/app/delete", nil, 200, ""},
		{"POST", "/console/api/streams/orders/consumers/nosuch/delete", nil, 400, "ResourceNotFoundException"},
		{"GET", "/console/api/streams/orders/metrics", nil, 404, "ConsoleNotConfigured"},
		{"GET", "/console/api/applications", nil, 404, "ConsoleNotConfigured"},
		{"GET", "/console/api/applications/app", nil, 404, "ConsoleNotConfigured"},
		{"POST", "/console/api/login", map[string]any{"accessKeyId": "A", "secretAccessKey": "B"}, 400, "ConsoleBadRequest"},
		{"POST", "/console/api/logout", nil, 200, ""},
		{"GET", "/console/api/nosuch", nil, 404, "ConsoleNotFound"},
		{"GET", "/console/nosuch", nil, 404, "ConsoleNotFound"},
		{"GET", "/console/assets/", nil, 404, "ConsoleNotFound"},
		{"DELETE", "/console/api/streams/orders", nil, 405, "ConsoleMethodNotAllowed"},
		{"GET", "/console/api/streams/orders/delete", nil, 405, "ConsoleMethodNotAllowed"},
		{"POST", "/console/api/streams/created/delete", map[string]any{"enforceConsumerDeletion": true}, 200, ""},
	} {
		what := c.method + " " + c.path
		a := e.do(c.method, c.path, c.body)
		if a.status != c.status || a.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s: %s", what, a.status, a.code(), c.status, c.code, a.body)
		}
		checkHeaders(t, what, a, false)
	}
	if e.streamExists("created") {
		t.Errorf("created still exists after its delete")
	}

	// The page and /console's redirect.
	a := e.do(http.MethodGet, "/console/", nil)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), "<html") {
		t.Errorf("GET /console/: %d %s", a.status, a.body)
	}
	checkHeaders(t, "GET /console/", a, true)
	a = e.do(http.MethodGet, "/console", nil)
	if a.status != http.StatusMovedPermanently || a.header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d, Location %q", a.status, a.header.Get("Location"))
	}
	checkHeaders(t, "GET /console", a, false)
	a = e.do(http.MethodGet, "/console/assets/index.html", nil)
	if a.status != http.StatusOK {
		t.Errorf("GET /console/assets/index.html: %d", a.status)
	}
	checkHeaders(t, "GET /console/assets/index.html", a, true)
}

// TestCSRFRefusal: a POST without the token, with a wrong one, or from
// another origin is refused with 403 ConsoleCSRF, and changes nothing.
func TestCSRFRefusal(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("keep", 1)
	for name, edit := range map[string]func(*http.Request){
		"no token":    func(*http.Request) {},
		"wrong token": func(r *http.Request) { r.Header.Set("X-Shoal-CSRF", e.csrf+"x") },
		"other origin": func(r *http.Request) {
			r.Header.Set("X-Shoal-CSRF", e.csrf)
			r.Header.Set("Origin", "http://evil.example")
		},
		"null origin": func(r *http.Request) { r.Header.Set("X-Shoal-CSRF", e.csrf); r.Header.Set("Origin", "null") },
		"no cookie": func(r *http.Request) {
			r.Header.Set("X-Shoal-CSRF", e.csrf)
			r.Header.Del("Cookie")
		},
	} {
		for _, path := range []string{"/console/api/streams/keep/delete", "/console/api/streams/keep/shard-count", "/console/api/logout"} {
			req := edit
			if name == "no cookie" {
				// Without the jar: the session cookie stays behind.
				a := func() answer {
					saved := e.browser.Jar
					e.browser.Jar = nil
					defer func() { e.browser.Jar = saved }()
					return e.doWith(http.MethodPost, path, map[string]any{}, req)
				}()
				if a.status != http.StatusForbidden || a.code() != "ConsoleCSRF" {
					t.Errorf("%s, %s: %d %s", name, path, a.status, a.body)
				}
				continue
			}
			a := e.doWith(http.MethodPost, path, map[string]any{"enforceConsumerDeletion": true}, req)
			if a.status != http.StatusForbidden || a.code() != "ConsoleCSRF" {
				t.Errorf("%s, %s: %d %s", name, path, a.status, a.body)
			}
			checkHeaders(t, "POST "+path, a, false)
		}
	}
	if !e.streamExists("keep") {
		t.Fatal("a refused delete deleted the stream")
	}
	// The same request with the token goes through.
	e.mustDo(http.MethodPost, "/console/api/streams/keep/delete", map[string]any{}, http.StatusOK, nil)
	if e.streamExists("keep") {
		t.Fatal("the stream survived its delete")
	}
}

// TestRecordDataNeverHTML: a record holding markup comes back only as
// base64 inside JSON, from the viewer and the stream list alike.
func TestRecordDataNeverHTML(t *testing.T) {
	e := newEnv(t, server.Config{}, console.Config{})
	e.createStream("xss", 1)
	const evil = "<script>alert(1)</script>"
	e.put("xss", "<b>key</b>", []byte(evil))
	for _, path := range []string{
		"/console/api/streams/xss/records?from=TRIM_HORIZON",
		"/console/api/streams/xss/records?from=TRIM_HORIZON&shard=shardId-000000000000",
	} {
		a := e.do(http.MethodGet, path, nil)
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, a.status, a.body)
		}
		checkHeaders(t, "GET "+path, a, false)
		if strings.Contains(string(a.body), "<script>") || strings.Contains(string(a.body), "<b>") {
			t.Errorf("GET %s: raw markup in the answer: %s", path, a.body)
		}
		if !strings.Contains(string(a.body), base64.StdEncoding.EncodeToString([]byte(evil))) {
			t.Errorf("GET %s: data not in base64: %s", path, a.body)
		}
	}
	recs := e.readAll("xss", "from=TRIM_HORIZON")
	if len(recs) != 1 || string(recs[0].Data) != evil || recs[0].PartitionKey != "<b>key</b>" {
		t.Fatalf("records %+v", recs)
	}
}
