package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

// Example mounts the console beside a server and drives its API as the
// page does: GET the session (and its CSRF token), then POST with it.
func Example() {
	eng := memengine.New(memengine.Config{})
	defer func() { _ = eng.Close() }()
	hist := console.NewHistory(nil)
	srv, err := server.New(server.Config{Engine: eng, Metrics: hist})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background()) //nolint:errcheck // an example
	con, err := console.New(console.Config{Server: srv, History: hist})
	if err != nil {
		panic(err)
	}
	defer con.Close() //nolint:errcheck // always nil without a lease database

	mux := http.NewServeMux()
	mux.Handle("/console/", con.Handler())
	web := httptest.NewServer(mux)
	defer web.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	defer browser.CloseIdleConnections()

	call := func(method, path, csrf, body string) string {
		req, _ := http.NewRequest(method, web.URL+path, strings.NewReader(body))
		if csrf != "" {
			req.Header.Set("X-Shoal-CSRF", csrf)
		}
		res, err := browser.Do(req)
		if err != nil {
			panic(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	var session struct {
		CSRF string `json:"csrf"`
	}
	_ = json.Unmarshal([]byte(strings.TrimPrefix(call("GET", "/console/api/session", "", ""), "200 ")), &session)

	fmt.Print(call("POST", "/console/api/streams", "", `{"name":"orders","mode":"PROVISIONED","shardCount":2}`))
	created := call("POST", "/console/api/streams", session.CSRF, `{"name":"orders","mode":"PROVISIONED","shardCount":2}`)
	fmt.Println(created[:3], strings.Contains(created, `"openShards":2`))
	fmt.Print(call("POST", "/console/api/streams/orders/shard-count", session.CSRF, `{"count":0}`))
	// Output:
	// 403 {"code":"ConsoleCSRF","message":"The request lacks the console's CSRF token (X-Shoal-CSRF, from GET /console/api/session) or comes from another origin."}
	// 200 true
	// 400 {"code":"ValidationException","message":"1 validation error detected: Value 0 at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"}
}
