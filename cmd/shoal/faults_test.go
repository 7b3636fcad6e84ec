package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// TestFaultsHandler drives /faults of the admin listener: GET lists the
// rules and their counters, PUT and POST replace them (a bad rule set is
// refused with an error naming the member, and the old set stays), DELETE
// clears them.
func TestFaultsHandler(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, server.Config{})
	hs := httptest.NewServer(faultsHandler(srv.Server))
	t.Cleanup(hs.Close)
	do := func(method, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, hs.URL+"/faults", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := do("GET", ""); code != 200 || body != `{"rules":[]}` {
		t.Fatalf("GET with no rules: %d %s", code, body)
	}
	code, body := do("PUT", `{"seed":42,"rules":[{"operation":"ListStreams","kind":"internal","every":2}]}`)
	if want := `{"seed":42,"rules":[{"operation":"ListStreams","kind":"internal","every":2,"matched":0,"injected":0}]}`; code != 200 || body != want {
		t.Fatalf("PUT: %d %s, want 200 %s", code, body, want)
	}
	c := srv.Client(func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	for range 4 {
		_, _ = c.ListStreams(t.Context(), &kinesis.ListStreamsInput{})
	}
	if code, body := do("GET", ""); code != 200 || !strings.Contains(body, `"matched":4,"injected":2`) {
		t.Fatalf("GET after 4 calls: %d %s, want matched 4, injected 2", code, body)
	}
	if code, body := do("POST", `{"rules":[{"kind":"latency"}]}`); code != 400 || !strings.Contains(body, "rules[0].latency") {
		t.Fatalf("POST of a bad rule: %d %s, want 400 naming rules[0].latency", code, body)
	}
	if code, body := do("PUT", `{"rules":[{"kind":"internal","when":"now"}]}`); code != 400 || !strings.Contains(body, `rules[0]: unknown field "when"`) {
		t.Fatalf("PUT with an unknown field: %d %s", code, body)
	}
	if code, body := do("GET", ""); code != 200 || !strings.Contains(body, `"ListStreams"`) {
		t.Fatalf("the refused sets replaced the rules: %d %s", code, body)
	}
	if code, body := do("DELETE", ""); code != 200 || body != `{"rules":[]}` {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if _, err := c.ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("ListStreams after DELETE: %v", err)
	}
	if code, _ := do("PATCH", "{}"); code != http.StatusMethodNotAllowed {
		t.Fatalf("PATCH: %d, want 405", code)
	}
}

// TestConfigFaults: the config file's "faults" reach the start-up
// configuration; bad rules are errors that name the member.
func TestConfigFaults(t *testing.T) {
	t.Parallel()
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--config", writeFile(t, `{"faults": {"seed": 9, "rules": [
		{"operation": "PutRecords", "stream": "orders", "kind": "throttle", "probability": 0.1, "fraction": 0.5},
		{"kind": "slow-fsync", "latency": "50ms", "every": 10}]}}`)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := applyConfig(f.fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	fc := cfg.faults
	if fc.Seed == nil || *fc.Seed != 9 || len(fc.Rules) != 2 || fc.Rules[0].Fraction != 0.5 || fc.Rules[1].Latency != server.FaultDuration(50e6) {
		t.Fatalf("faults %+v", fc)
	}
	for _, tc := range []struct{ file, want string }{
		{`{"faults": {"rules": [{"kind": "boom"}]}}`, `faults: rules[0].kind: "boom" is not a fault kind`},
		{`{"faults": {"rules": [{"kind": "internal", "probability": 2}]}}`, `faults: rules[0].probability`},
		{`{"faults": {"rulez": []}}`, `faults: unknown field "rulez"`},
		{`{"faults": []}`, `faults`},
	} {
		f := newTestFlags()
		if err := f.fs.Parse([]string{"--config", writeFile(t, tc.file)}); err != nil {
			t.Fatal(err)
		}
		if _, err := applyConfig(f.fs, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %s: %v; want an error containing %q", tc.file, err, tc.want)
		}
	}
}
