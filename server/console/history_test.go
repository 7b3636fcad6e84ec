package console_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
)

type metricsAnswer struct {
	Step   int                           `json:"step"`
	Start  string                        `json:"start"`
	Series map[string][]int64            `json:"series"`
	Shards map[string]map[string][]int64 `json:"shards"`
}

func (e *env) metrics(stream string, minutes int) metricsAnswer {
	e.t.Helper()
	var m metricsAnswer
	e.mustDo(http.MethodGet, fmt.Sprintf("/console/api/streams/%s/metrics?minutes=%d", stream, minutes), nil, http.StatusOK, &m)
	return m
}

// last returns the newest n values of a series.
func last(s []int64, n int) []int64 { return s[len(s)-n:] }

// TestHistory: the server's measurements land in 10-second buckets of the
// History's clock, are kept an hour, and go with their stream.
func TestHistory(t *testing.T) {
	start := time.Unix(1_700_000_000, 0) // a multiple of 10 s
	clock := fakeclock.New(start)
	hist := console.NewHistory(clock.Now)
	e := newEnv(t, server.Config{}, console.Config{History: hist, Now: clock.Now})
	e.createStream("hist", 1)

	e.put("hist", "k", []byte("abc")) // 4 bytes with the key
	e.put("hist", "k", []byte("abc"))
	clock.Advance(10 * time.Second)
	e.put("hist", "k", []byte("abcdef"))
	it, err := e.sdk.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("hist"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sdk.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator}); err != nil {
		t.Fatal(err)
	}
	hist.Throttled("hist", true, 3)
	hist.Throttled("hist", false, 1)
	hist.PutRecords("hist", 5, 3, 2, 1)

	m := e.metrics("hist", 1)
	if m.Step != 10 || len(m.Series["IncomingRecords"]) != 6 {
		t.Fatalf("step %d, %d values", m.Step, len(m.Series["IncomingRecords"]))
	}
	if want := start.Add(10*time.Second - 50*time.Second).UTC().Format("2006-01-02T15:04:05.000Z"); m.Start != want {
		t.Errorf("start %s, want %s", m.Start, want)
	}
	for name, want := range map[string][]int64{
		"IncomingRecords":                    {2, 1},
		"IncomingBytes":                      {8, 7},
		"OutgoingRecords":                    {0, 3},
		"OutgoingBytes":                      {0, 15},
		"WriteProvisionedThroughputExceeded": {0, 3},
		"ReadProvisionedThroughputExceeded":  {0, 1},
		"PutRecords.FailedRecords":           {0, 2},
	} {
		if got := last(m.Series[name], 2); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if age := last(m.Series["IteratorAgeMilliseconds"], 1)[0]; age < 0 {
		t.Errorf("iterator age %d", age)
	}
	if len(m.Shards) != 0 {
		t.Errorf("shard series without enhanced monitoring: %v", m.Shards)
	}

	// Enhanced monitoring: the shard-level series of the enabled metrics.
	e.mustDo(http.MethodPost, "/console/api/streams/hist/monitoring", map[string]any{"metrics": []string{"IncomingRecords"}}, http.StatusOK, nil)
	e.put("hist", "k", []byte("x"))
	m = e.metrics("hist", 1)
	sh := m.Shards["shardId-000000000000"]
	if len(sh) != 1 || last(sh["IncomingRecords"], 1)[0] != 1 {
		t.Errorf("shard series %v", m.Shards)
	}

	// An hour later the buckets are gone.
	clock.Advance(time.Hour)
	m = e.metrics("hist", 60)
	for name, s := range m.Series {
		for _, v := range s {
			if v != 0 {
				t.Fatalf("%s after an hour: %v", name, s)
			}
		}
	}

	// A deleted stream's series go with it.
	e.put("hist", "k", []byte("x"))
	if _, err := e.sdk.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("hist")}); err != nil {
		t.Fatal(err)
	}
	e.createStream("hist", 1)
	m = e.metrics("hist", 1)
	if got := last(m.Series["IncomingRecords"], 1)[0]; got != 0 {
		t.Errorf("a re-created stream inherited %d records", got)
	}
	if a := e.do(http.MethodGet, "/console/api/streams/hist/metrics?minutes=61", nil); a.status != http.StatusBadRequest || a.code() != "ConsoleBadRequest" {
		t.Errorf("minutes=61: %d %s", a.status, a.body)
	}
}

// TestSessionExpiry: a session idle for longer than the timeout is gone;
// requests keep it alive.
func TestSessionExpiry(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	e := newEnv(t, server.Config{AuthConfigFile: writeAuthConfig(t, admin)}, console.Config{Now: clock.Now})
	if a := e.login(admin); a.status != http.StatusOK {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	for range 3 {
		clock.Advance(11 * time.Hour)
		e.mustDo(http.MethodGet, "/console/api/streams", nil, http.StatusOK, nil)
	}
	clock.Advance(12*time.Hour + time.Second)
	if a := e.do(http.MethodGet, "/console/api/streams", nil); a.status != http.StatusUnauthorized || a.code() != "ConsoleSignedOut" {
		t.Fatalf("after 12 idle hours: %d %s", a.status, a.body)
	}
	// The token of the expired session is worth nothing either.
	if a := e.do(http.MethodPost, "/console/api/logout", nil); a.status != http.StatusForbidden {
		t.Fatalf("POST with an expired session: %d %s", a.status, a.body)
	}
	var s sessionAnswer
	e.mustDo(http.MethodGet, "/console/api/session", nil, http.StatusOK, &s)
	if s.SignedIn || s.CSRF == e.csrf {
		t.Fatalf("new session %+v", s)
	}
}
