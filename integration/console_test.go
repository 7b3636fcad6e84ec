package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/testutil/nodetest"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// The web console's browser tests: the shoal binary serves the console on
// its admin listener, Debian's Chromium (driven by the npm playwright-core
// package, pinned with its lock file in console/) uses the page as a person
// would, and the Go side puts records and checks outcomes with
// aws-sdk-go-v2. A scenario script (console/*.mjs) and the test talk over a
// line protocol (console/lib.mjs): the script prints "STEP <json>" and
// waits for "GO <json>" once the Go side did its part, so records are put
// exactly when the page is ready for them; it ends with "RESULT <json>",
// what it saw, which the Go side checks. Every page visited is saved as a
// full-page screenshot (see consoleArtifacts).

// consoleChromium is Debian's Chromium (.ci/run installs the package).
const consoleChromium = "/usr/bin/chromium"

// consolePageWait bounds each wait of a scenario script on the page, and
// consoleLineWait each wait here for the script's next line: generous
// bounds on a hung browser or server, not measures of speed.
const (
	consolePageWait = 60 * time.Second
	consoleLineWait = 10 * time.Minute
)

// consoleEnv is what a browser scenario needs.
type consoleEnv struct {
	node    string // node executable
	modules string // the directory whose node_modules holds playwright-core
	scripts string // integration/console
	shots   string // where the screenshots go
}

// consoleSetup finds node, Chromium and playwright-core (installing it once
// into the user's cache with npm ci); without them it skips the test (it
// fails in CI).
func consoleSetup(t *testing.T) consoleEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the shoal binary and a browser")
	}
	node := nodetest.Node(t, 20)
	if _, err := os.Stat(consoleChromium); err != nil {
		nodetest.Missing(t, "Chromium not found (apt-get install chromium): %v", err)
	}
	scripts, err := filepath.Abs("console")
	if err != nil {
		t.Fatal(err)
	}
	modules := nodetest.InstallLocked(t, scripts)
	return consoleEnv{node: node, modules: modules, scripts: scripts, shots: consoleArtifacts(t)}
}

var consoleShotsLogged sync.Once

// consoleArtifacts is the screenshot directory: $SHOAL_ARTIFACTS_DIR/console
// when that is set, else shoal-console-artifacts in the system's temporary
// directory (kept after the test, for a person to look at).
func consoleArtifacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "shoal-console-artifacts")
	if d := os.Getenv("SHOAL_ARTIFACTS_DIR"); d != "" {
		dir = filepath.Join(d, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	consoleShotsLogged.Do(func() { t.Logf("console screenshots go to %s", dir) })
	return dir
}

// consoleServer is a shoal binary with its console.
type consoleServer struct {
	*proc
	console string // http://<admin-addr>/console/
}

// consoleStart is the common start of a browser test: the node and
// Chromium set-up, a logged shoal server (no auth) named label, a context
// for the test's SDK calls and a client of the server.
func consoleStart(t *testing.T, label string) (consoleEnv, *consoleServer, context.Context, *kinesis.Client) {
	t.Helper()
	env := consoleSetup(t)
	srv := startConsoleServer(t, newLogBook(t), label, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return env, srv, ctx, servertest.Client(srv.endpoint)
}

// startConsoleServer starts the binary with the admin listener on a free
// port and waits until the console answers GET /console/api/session. With
// ready set, the server has --auth-config among extra and is ready once it
// serves ListStreams signed with that key.
func startConsoleServer(t *testing.T, logs *logBook, label string, ready *authKey, extra ...string) *consoleServer {
	t.Helper()
	admin := freeAddr(t)
	args := append([]string{"--admin-addr", admin}, extra...)
	var p *proc
	if ready != nil {
		p = startAuthServer(t, shoalBinary(t), logs, label, t.TempDir(), *ready, args...)
	} else {
		p = startServer(t, shoalBinary(t), logs, label, t.TempDir(), args...)
	}
	s := &consoleServer{proc: p, console: "http://" + admin + "/console/"}
	hc := &http.Client{Timeout: 5 * time.Second}
	wait.Eventually(t, time.Minute, func() error {
		resp, err := hc.Get(s.console + "api/session")
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return fmt.Errorf("GET /console/api/session: %s %s", resp.Status, bytes.TrimSpace(body))
		}
		return nil
	})
	return s
}

// scriptLine is one line a scenario script printed: its kind and JSON.
type scriptLine struct {
	kind string
	body json.RawMessage
}

// browserScript is a running scenario script.
type browserScript struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan scriptLine // closed when its standard output ends
	stderr *procLog
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

// runScript starts the scenario script (a file of integration/console) on
// the console at url, with cfg as its config.
func (e consoleEnv) runScript(t *testing.T, script, url string, cfg any) *browserScript {
	t.Helper()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.node, filepath.Join(e.scripts, script))
	cmd.Env = append(os.Environ(),
		"SHOAL_CONSOLE_URL="+url,
		"SHOAL_CHROMIUM="+consoleChromium,
		"SHOAL_PW_MODULES="+e.modules,
		"SHOAL_SHOTS="+e.shots,
		"SHOAL_SCENARIO_CONFIG="+string(cfgJSON),
		fmt.Sprintf("SHOAL_TIMEOUT_MS=%d", consolePageWait.Milliseconds()),
	)
	s := &browserScript{t: t, name: script, cmd: cmd, lines: make(chan scriptLine, 64), stderr: &procLog{label: script}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			kind, body, _ := strings.Cut(sc.Text(), " ")
			s.lines <- scriptLine{kind: kind, body: json.RawMessage(body)}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			out, _ := s.stderr.contents()
			t.Logf("--- %s standard error ---\n%s", script, out)
		}
	})
	return s
}

// next returns the script's next STEP or RESULT line, logging the SHOT
// and LOG lines before it. A FAIL line, the end of the script or a silence
// of consoleLineWait fails the test.
func (s *browserScript) next() scriptLine {
	s.t.Helper()
	timeout := time.After(consoleLineWait)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				<-s.done
				out, _ := s.stderr.contents()
				s.t.Fatalf("%s ended without a result (%v); standard error:\n%s", s.name, s.err, out)
			}
			switch l.kind {
			case "SHOT":
				var shot struct{ Path string }
				_ = json.Unmarshal(l.body, &shot)
				s.t.Logf("screenshot: %s", shot.Path)
			case "LOG":
				s.t.Logf("%s: %s", s.name, l.body)
			case "FAIL":
				var f struct {
					Message, Stack string
					Problems       json.RawMessage
				}
				_ = json.Unmarshal(l.body, &f)
				s.t.Fatalf("%s failed in the browser: %s\n%s\npage problems: %s", s.name, f.Message, f.Stack, f.Problems)
			case "STEP", "RESULT":
				return l
			default:
				s.t.Logf("%s printed: %s %s", s.name, l.kind, l.body)
			}
		case <-timeout:
			s.t.Fatalf("%s printed nothing for %v", s.name, consoleLineWait)
		}
	}
}

// step waits for the script to reach the step name and returns its data.
func (s *browserScript) step(name string) json.RawMessage {
	s.t.Helper()
	l := s.next()
	var st struct {
		Name string
		Data json.RawMessage
	}
	if err := json.Unmarshal(l.body, &st); err != nil || l.kind != "STEP" || st.Name != name {
		s.t.Fatalf("%s: want STEP %s, got %s %s", s.name, name, l.kind, l.body)
	}
	return st.Data
}

// proceed lets the script go on past its step, with v as the step's answer.
func (s *browserScript) proceed(v any) {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(s.stdin, "GO %s\n", b); err != nil {
		s.t.Fatalf("%s: write GO: %v", s.name, err)
	}
}

// pageProblems are what the page did wrong, whatever the scenario.
type pageProblems struct {
	ConsoleErrors []string `json:"consoleErrors"`
	PageErrors    []string `json:"pageErrors"`
	CSPViolations []string `json:"cspViolations"`
}

// result waits for the script's RESULT, decodes it into v and checks that
// the page logged no errors, threw nothing and broke no CSP rule.
func (s *browserScript) result(v any) {
	s.t.Helper()
	l := s.next()
	if l.kind != "RESULT" {
		s.t.Fatalf("%s: want RESULT, got %s %s", s.name, l.kind, l.body)
	}
	if err := json.Unmarshal(l.body, v); err != nil {
		s.t.Fatalf("%s: RESULT: %v\n%s", s.name, err, l.body)
	}
	var p struct {
		Problems pageProblems `json:"problems"`
	}
	if err := json.Unmarshal(l.body, &p); err != nil {
		s.t.Fatal(err)
	}
	if len(p.Problems.ConsoleErrors)+len(p.Problems.PageErrors)+len(p.Problems.CSPViolations) > 0 {
		s.t.Errorf("%s: the page had problems: %+v", s.name, p.Problems)
	}
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.t.Fatalf("%s did not exit after its result", s.name)
	}
	if s.err != nil {
		s.t.Errorf("%s exited with %v", s.name, s.err)
	}
}

// uiError is an error as the page shows it.
type uiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// visibleError is an error slot showing something.
type visibleError struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// wantOnlyError checks that the only error slot showing is id.
func wantOnlyError(t *testing.T, what string, visible []visibleError, id string) {
	t.Helper()
	if len(visible) != 1 || visible[0].ID != id {
		t.Errorf("%s: error slots showing: %+v; want %s only", what, visible, id)
	}
}

// wantSameError checks that the page showed exactly the error the server
// answers the SDK with for the same call.
func wantSameError(t *testing.T, what string, got uiError, sdkErr error) {
	t.Helper()
	if sdkErr == nil {
		t.Fatalf("%s: the SDK call succeeded; the test needs it to fail", what)
	}
	code, msg := apiError(sdkErr)
	if got.Code != code || got.Message != msg {
		t.Errorf("%s: the page shows %s: %q; the server answers the SDK %s: %q", what, got.Code, got.Message, code, msg)
	} else {
		t.Logf("%s: the page shows %s: %s", what, got.Code, got.Message)
	}
}

// viewRecord is a record row of the data viewer (recordRows in lib.mjs).
type viewRecord struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int    `json:"subSequenceNumber"`
	Aggregated        bool   `json:"aggregated"`
	AggregatedBadge   bool   `json:"aggregatedBadge"`
	Source            string `json:"source"`
	PartitionKey      string `json:"partitionKey"`
	Data              string `json:"data"`
}

func (r viewRecord) key() string { return fmt.Sprintf("%s/%d", r.SequenceNumber, r.SubSequenceNumber) }

// consoleHTML is record data that would run script if the page rendered it
// as markup.
const consoleHTML = `<img src=x onerror="window.__xss='img'"><script>window.__xss='script'</script><b>bold</b>`

// TestConsoleViewer creates a stream in the page, puts records with the
// SDK and reads them in the data viewer: plain, JSON (pretty-printed),
// binary (hex, base64), HTML (shown as text, never run) and a KPL aggregate
// (its user records, marked aggregated with sub-sequence numbers), paging
// with "Next page"; then filters by partition key and puts a record from
// the page, which the SDK reads back.
func TestConsoleViewer(t *testing.T) {
	env, srv, ctx, c := consoleStart(t, "console-viewer")
	const stream = "orders"
	s := env.runScript(t, "viewer.mjs", srv.console, map[string]any{"stream": stream, "shards": 2})

	var listed struct {
		OpenShards, Mode, Retention, Encryption string
	}
	if err := json.Unmarshal(s.step("created"), &listed); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("the stream the page created: %v", err)
	}
	d := sum.StreamDescriptionSummary
	if aws.ToInt32(d.OpenShardCount) != 2 || d.StreamStatus != types.StreamStatusActive || d.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("the stream the page created: %d shards, %s, %s", aws.ToInt32(d.OpenShardCount), d.StreamStatus, d.StreamModeDetails.StreamMode)
	}
	if listed.OpenShards != "2" || listed.Mode != "PROVISIONED" || listed.Encryption != "NONE" || !strings.HasPrefix(listed.Retention, "24") {
		t.Errorf("the list shows %+v", listed)
	}

	// The records, put with the SDK.
	before := time.Now().Add(-time.Second)
	jsonData := `{"a":1,"b":[true,null,"x"],"c":{"d":"e"}}`
	binData := []byte{0, 1, 2, 0xff, 'h', 'i'}
	plain := []struct {
		pk   string
		data []byte
	}{
		{"alpha", []byte("hello console")},
		{"beta", []byte(jsonData)},
		{"gamma", []byte(consoleHTML)},
		{"delta", binData},
	}
	type want struct {
		SequenceNumber    string `json:"sequenceNumber"`
		SubSequenceNumber int    `json:"subSequenceNumber"`
		pk                string
		data              []byte
		aggregated        bool
		shard             string
	}
	var wants []want
	for _, p := range plain {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(p.pk), Data: p.data})
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{SequenceNumber: aws.ToString(out.SequenceNumber), pk: p.pk, data: p.data, shard: aws.ToString(out.ShardId)})
	}
	agg, err := aggregation.NewAggregator(aggregation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	users := []aggregation.UserRecord{
		{PartitionKey: "kpl-a", Data: []byte("user record 0")},
		{PartitionKey: "kpl-b", Data: []byte(`{"user":1}`)},
		{PartitionKey: "kpl-c", Data: []byte("user record 2")},
	}
	for _, u := range users {
		if err := agg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	aggRec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(aggRec.PartitionKey), Data: aggRec.Data}
	if aggRec.ExplicitHashKey != "" {
		in.ExplicitHashKey = aws.String(aggRec.ExplicitHashKey)
	}
	aggOut, err := c.PutRecord(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		wants = append(wants, want{SequenceNumber: aws.ToString(aggOut.SequenceNumber), SubSequenceNumber: i, pk: u.PartitionKey, data: u.Data, aggregated: true, shard: aws.ToString(aggOut.ShardId)})
	}
	const putKey, putData = "from-the-page", "a record put from the console"
	s.proceed(map[string]any{"expect": wants, "filterKey": "kpl-b", "putKey": putKey, "putData": putData,
		"atSequence": map[string]string{"shardId": wants[1].shard, "sequenceNumber": wants[1].SequenceNumber},
		"atTime":     before.UTC().Format(time.RFC3339Nano)})

	var res struct {
		Rows       []viewRecord            `json:"rows"`
		Pages      int                     `json:"pages"`
		Formats    map[string][]viewRecord `json:"formats"`
		Filtered   []viewRecord            `json:"filtered"`
		AtSequence []viewRecord            `json:"atSequence"`
		AtTime     []viewRecord            `json:"atTime"`
		XSS        struct {
			Flag          *string `json:"flag"`
			Images        int     `json:"images"`
			ScriptsInBody int     `json:"scriptsInBody"`
			Bold          int     `json:"bold"`
		} `json:"xss"`
		Put struct {
			ShardID        string `json:"shardId"`
			SequenceNumber string `json:"sequenceNumber"`
		} `json:"put"`
		Charts int            `json:"charts"`
		Errors []visibleError `json:"errors"`
	}
	s.result(&res)

	// Every record, once, as put.
	byKey := func(rows []viewRecord) map[string]viewRecord {
		m := make(map[string]viewRecord)
		for _, r := range rows {
			if _, dup := m[r.key()]; dup {
				t.Errorf("record %s shown twice", r.key())
			}
			m[r.key()] = r
		}
		return m
	}
	shown := byKey(res.Rows)
	if len(res.Rows) != len(wants) {
		t.Errorf("the viewer shows %d records; %d were put", len(res.Rows), len(wants))
	}
	t.Logf("read %d records in %d pages of 2", len(res.Rows), res.Pages)
	formats := map[string]map[string]viewRecord{}
	for f, rows := range res.Formats {
		formats[f] = byKey(rows)
	}
	for _, w := range wants {
		k := fmt.Sprintf("%s/%d", w.SequenceNumber, w.SubSequenceNumber)
		r, ok := shown[k]
		if !ok {
			t.Errorf("record %s (%s) not shown", k, w.pk)
			continue
		}
		if r.PartitionKey != w.pk || r.ShardID != w.shard || r.Aggregated != w.aggregated || r.AggregatedBadge != w.aggregated || r.Source != "read" {
			t.Errorf("record %s shown as %+v; want key %s, shard %s, aggregated %v", k, r, w.pk, w.shard, w.aggregated)
		}
		if b64 := formats["base64"][k].Data; b64 != base64.StdEncoding.EncodeToString(w.data) {
			t.Errorf("record %s as base64: %q", k, b64)
		}
		if !bytes.Equal(w.data, binData) && r.Data != string(w.data) {
			t.Errorf("record %s as text: %q; want %q", k, r.Data, w.data)
		}
	}
	// The HTML is text, and nothing of it ran.
	if r := shown[wants[2].SequenceNumber+"/0"]; r.Data != consoleHTML {
		t.Errorf("the HTML record shows %q", r.Data)
	}
	if res.XSS.Flag != nil || res.XSS.Images != 0 || res.XSS.ScriptsInBody != 0 || res.XSS.Bold != 0 {
		t.Errorf("record data became markup: %+v", res.XSS)
	}
	// JSON pretty-printed, binary as hex.
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(jsonData), "", "  "); err != nil {
		t.Fatal(err)
	}
	if got := formats["json"][wants[1].SequenceNumber+"/0"].Data; got != pretty.String() {
		t.Errorf("the JSON record as JSON:\n%s\nwant\n%s", got, pretty.String())
	}
	if got := formats["hex"][wants[3].SequenceNumber+"/0"].Data; !strings.Contains(got, "00 01 02 ff 68 69") || !strings.Contains(got, "|....hi|") {
		t.Errorf("the binary record as hex: %q", got)
	}
	if got := formats["hex"][wants[0].SequenceNumber+"/0"].Data; !strings.Contains(got, "68 65 6c 6c 6f") {
		t.Errorf("the text record as hex: %q", got)
	}
	// The filter keeps the one user record of key kpl-b.
	if len(res.Filtered) != 1 || res.Filtered[0].PartitionKey != "kpl-b" || res.Filtered[0].SubSequenceNumber != 1 ||
		res.Filtered[0].SequenceNumber != aws.ToString(aggOut.SequenceNumber) || !res.Filtered[0].Aggregated {
		t.Errorf("filtered by kpl-b: %+v", res.Filtered)
	}
	// From a sequence number of one shard: that record, then the later
	// ones of its shard only.
	var shardWants []string
	from, _ := new(big.Int).SetString(wants[1].SequenceNumber, 10)
	for _, w := range wants {
		if n, _ := new(big.Int).SetString(w.SequenceNumber, 10); w.shard == wants[1].shard && n.Cmp(from) >= 0 {
			shardWants = append(shardWants, fmt.Sprintf("%s/%d", w.SequenceNumber, w.SubSequenceNumber))
		}
	}
	var gotAtSeq []string
	for _, r := range res.AtSequence {
		gotAtSeq = append(gotAtSeq, r.key())
	}
	if !slices.Equal(gotAtSeq, shardWants) {
		t.Errorf("from %s at %s: %v; want %v", wants[1].shard, wants[1].SequenceNumber, gotAtSeq, shardWants)
	}
	// From a time before the first put: every record.
	if len(res.AtTime) != len(wants) {
		t.Errorf("from %s: %d records; want %d", before.UTC().Format(time.RFC3339Nano), len(res.AtTime), len(wants))
	}
	// The record put from the page is in the stream.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(res.Put.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(res.Put.SequenceNumber)})
	if err != nil {
		t.Fatalf("the page's put %+v: %v", res.Put, err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) == 0 || aws.ToString(got.Records[0].PartitionKey) != putKey || string(got.Records[0].Data) != putData {
		t.Errorf("the page's put %+v reads back as %+v", res.Put, got.Records)
	}
	if res.Charts != 8 {
		t.Errorf("the metrics page draws %d charts; want 8", res.Charts)
	}
	if len(res.Errors) != 0 {
		t.Errorf("error slots showing at the end: %+v", res.Errors)
	}
}

// TestConsoleTail starts the live tail in the page and puts records with
// the SDK one at a time: each must appear, pushed by the server. The time
// from each put to the row's insertion is logged, not asserted (it depends
// on the machine); the wait for each is bounded at 30 s.
func TestConsoleTail(t *testing.T) {
	env, srv, ctx, c := consoleStart(t, "console-tail")
	const stream = "ticks"
	createStreams(ctx, t, c, stream)
	waitActive(ctx, t, c, stream)
	const samples = 5
	pageMarker := "put from the page " + randomHex(t, 4)
	s := env.runScript(t, "tail.mjs", srv.console, map[string]any{"stream": stream, "samples": samples, "pageMarker": pageMarker})
	seqs := make(map[string]string)
	for i := range samples {
		s.step("put")
		marker := fmt.Sprintf("tick %d %s", i, randomHex(t, 4))
		start := time.Now()
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("tick"), Data: []byte(marker)})
		end := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		seqs[marker] = aws.ToString(out.SequenceNumber)
		s.proceed(map[string]any{"marker": marker, "sequenceNumber": aws.ToString(out.SequenceNumber),
			"putStartMs": start.UnixMilli(), "putEndMs": end.UnixMilli()})
	}
	var res struct {
		Samples []struct {
			Marker          string `json:"marker"`
			SequenceNumber  string `json:"sequenceNumber"`
			Data            string `json:"data"`
			PutToShownMs    int64  `json:"putToShownMs"`
			ReturnToShownMs int64  `json:"returnToShownMs"`
		} `json:"samples"`
		PagePut struct {
			SequenceNumber string `json:"sequenceNumber"`
			PartitionKey   string `json:"partitionKey"`
		} `json:"pagePut"`
		StatusWhileLive string         `json:"statusWhileLive"`
		Errors          []visibleError `json:"errors"`
	}
	s.result(&res)
	if len(res.Samples) != samples {
		t.Fatalf("%d samples; want %d", len(res.Samples), samples)
	}
	var lat []int64
	for _, sm := range res.Samples {
		if sm.Data != sm.Marker || seqs[sm.Marker] != sm.SequenceNumber {
			t.Errorf("tailed row %+v; put %q at %s", sm, sm.Marker, seqs[sm.Marker])
		}
		lat = append(lat, sm.PutToShownMs)
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	t.Logf("live tail, SDK put to row shown in the page (ms): %v; min %d, median %d, max %d (put returned to shown: %v)",
		lat, sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1], func() []int64 {
			var r []int64
			for _, sm := range res.Samples {
				r = append(r, sm.ReturnToShownMs)
			}
			return r
		}())
	if res.PagePut.PartitionKey != "from-the-page" || res.PagePut.SequenceNumber == "" {
		t.Errorf("the page's own put, tailed: %+v", res.PagePut)
	}
	if !strings.Contains(res.StatusWhileLive, "received") {
		t.Errorf("tail status while live: %q", res.StatusWhileLive)
	}
	if len(res.Errors) != 0 {
		t.Errorf("error slots showing: %+v", res.Errors)
	}
}

// lineageJSON is the shard map's lineage graph as the page draws it.
type lineageJSON struct {
	Nodes []struct {
		ShardID string `json:"shardId"`
		Open    bool   `json:"open"`
		Depth   int    `json:"depth"`
	} `json:"nodes"`
	Edges []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"edges"`
	Bars []string `json:"bars"`
}

// edges lists "from>to" of the graph, sorted.
func (l lineageJSON) edges() []string {
	var e []string
	for _, x := range l.Edges {
		e = append(e, x.From+">"+x.To)
	}
	sort.Strings(e)
	return e
}

// sdkLineage lists "parent>child" of every shard of stream, sorted, and
// the open shards.
func sdkLineage(ctx context.Context, t *testing.T, c *kinesis.Client, stream string) (edges, open []string, shards []types.Shard) {
	t.Helper()
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range out.Shards {
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if aws.ToString(p) != "" {
				edges = append(edges, aws.ToString(p)+">"+aws.ToString(sh.ShardId))
			}
		}
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, aws.ToString(sh.ShardId))
		}
	}
	sort.Strings(edges)
	sort.Strings(open)
	return edges, open, out.Shards
}

// TestConsoleSplit splits a stream's one shard from the shard map at the
// default key, its midpoint, and sees the lineage: the parent closed, two
// children under it, as ListShards says. Clicking on a child's bar picks
// the key under the pointer; merging the two children from the map shows a
// shard with both as parents.
func TestConsoleSplit(t *testing.T) {
	env, srv, ctx, c := consoleStart(t, "console-split")
	const stream = "reshard"
	createStreams(ctx, t, c, stream)
	waitActive(ctx, t, c, stream)
	s := env.runScript(t, "split.mjs", srv.console, map[string]any{"stream": stream})

	var split struct {
		Parent     string      `json:"parent"`
		DefaultKey string      `json:"defaultKey"`
		Lineage    lineageJSON `json:"lineage"`
		Result     string      `json:"result"`
	}
	if err := json.Unmarshal(s.step("split"), &split); err != nil {
		t.Fatal(err)
	}
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	if split.DefaultKey != half.String() {
		t.Errorf("default split key %s; want the midpoint %s", split.DefaultKey, half)
	}
	edges, open, shards := sdkLineage(ctx, t, c, stream)
	if len(shards) != 3 || len(open) != 2 {
		t.Fatalf("after the split, ListShards: %d shards, %d open", len(shards), len(open))
	}
	if got := split.Lineage.edges(); !slices.Equal(got, edges) {
		t.Errorf("the lineage shows %v; ListShards says %v", got, edges)
	}
	for _, e := range edges {
		if !strings.HasPrefix(e, split.Parent+">") {
			t.Errorf("edge %s: not from the parent %s", e, split.Parent)
		}
	}
	bars := slices.Clone(split.Lineage.Bars)
	sort.Strings(bars)
	if !slices.Equal(bars, open) {
		t.Errorf("bars %v; open shards %v", bars, open)
	}
	for _, n := range split.Lineage.Nodes {
		wantDepth, wantOpen := 1, true
		if n.ShardID == split.Parent {
			wantDepth, wantOpen = 0, false
		}
		if n.Depth != wantDepth || n.Open != wantOpen {
			t.Errorf("lineage node %+v", n)
		}
	}
	t.Logf("the page says: %s", split.Result)
	// The children, lower and upper by hash range.
	var lower, upper types.Shard
	for _, sh := range shards {
		switch {
		case aws.ToString(sh.ParentShardId) != split.Parent:
		case aws.ToString(sh.HashKeyRange.StartingHashKey) == "0":
			lower = sh
		default:
			upper = sh
		}
	}
	if aws.ToString(upper.HashKeyRange.StartingHashKey) != half.String() {
		t.Errorf("the upper child starts at %s; want %s", aws.ToString(upper.HashKeyRange.StartingHashKey), half)
	}
	s.proceed(map[string]any{"lower": aws.ToString(lower.ShardId), "upper": aws.ToString(upper.ShardId)})

	var res struct {
		MidKey         string         `json:"midKey"`
		PickedKey      string         `json:"pickedKey"`
		PickedFraction float64        `json:"pickedFraction"`
		AfterMerge     lineageJSON    `json:"afterMerge"`
		Errors         []visibleError `json:"errors"`
	}
	s.result(&res)
	// The lower child is [0, 2^127-1]: its midpoint is 2^126, and a click a
	// quarter of the way along its bar picks about 2^125.
	if quarter := new(big.Int).Lsh(big.NewInt(1), 126); res.MidKey != quarter.String() {
		t.Errorf("the lower child's midpoint shows as %s; want %s", res.MidKey, quarter)
	}
	picked, ok := new(big.Int).SetString(res.PickedKey, 10)
	if !ok {
		t.Fatalf("picked key %q", res.PickedKey)
	}
	wantPick := new(big.Int).Lsh(big.NewInt(1), 125)
	slack := new(big.Int).Lsh(big.NewInt(1), 121) // 1/16 of the lower child's range each way, for the pixels
	if diff := new(big.Int).Abs(new(big.Int).Sub(picked, wantPick)); diff.Cmp(slack) > 0 || picked.Sign() <= 0 || picked.Cmp(half) >= 0 {
		t.Errorf("clicking a quarter along the lower child picked %s; want about %s", picked, wantPick)
	}
	edges, open, shards = sdkLineage(ctx, t, c, stream)
	if len(shards) != 4 || len(open) != 1 {
		t.Fatalf("after the merge, ListShards: %d shards, %d open", len(shards), len(open))
	}
	if got := res.AfterMerge.edges(); !slices.Equal(got, edges) {
		t.Errorf("after the merge the lineage shows %v; ListShards says %v", got, edges)
	}
	for _, n := range res.AfterMerge.Nodes {
		if n.ShardID == open[0] && n.Depth != 2 {
			t.Errorf("the merged shard's node: %+v", n)
		}
	}
	if len(res.Errors) != 0 {
		t.Errorf("error slots showing: %+v", res.Errors)
	}
}

// TestConsoleErrors gives the page bad input and checks that each error is
// the server's own, code and message as the SDK gets them for the same
// call, shown next to the control used and nowhere else.
func TestConsoleErrors(t *testing.T) {
	env, srv, ctx, c := consoleStart(t, "console-errors")
	const stream = "two"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, c, stream)
	_, _, shards := sdkLineage(ctx, t, c, stream)
	first := shards[0]
	for _, sh := range shards {
		if aws.ToString(sh.HashKeyRange.StartingHashKey) == "0" {
			first = sh
		}
	}
	// A key of the other shard: outside the first shard's range.
	end, _ := new(big.Int).SetString(aws.ToString(first.HashKeyRange.EndingHashKey), 10)
	badKey := new(big.Int).Add(end, big.NewInt(12345)).String()
	s := env.runScript(t, "errors.mjs", srv.console, map[string]any{
		"newStream": "zero", "stream": stream, "shard": aws.ToString(first.ShardId), "badKey": badKey,
	})
	var res struct {
		Create               uiError        `json:"create"`
		CreateVisible        []visibleError `json:"createVisible"`
		CreateNextToForm     bool           `json:"createNextToForm"`
		Split                uiError        `json:"split"`
		SplitVisible         []visibleError `json:"splitVisible"`
		SplitNextToForm      bool           `json:"splitNextToForm"`
		BarsAfterSplit       int            `json:"barsAfterSplit"`
		ShardCount           uiError        `json:"shardCount"`
		ShardCountVisible    []visibleError `json:"shardCountVisible"`
		ShardCountNextToForm bool           `json:"shardCountNextToForm"`
	}
	s.result(&res)

	// The same calls with the SDK: refused, changing nothing.
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("zero"), ShardCount: aws.Int32(0)})
	wantSameError(t, "create with 0 shards", res.Create, err)
	wantOnlyError(t, "create with 0 shards", res.CreateVisible, "create-error")
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: first.ShardId, NewStartingHashKey: aws.String(badKey)})
	wantSameError(t, "split outside the range", res.Split, err)
	wantOnlyError(t, "split outside the range", res.SplitVisible, "split-error")
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(0), ScalingType: types.ScalingTypeUniformScaling})
	wantSameError(t, "shard count 0", res.ShardCount, err)
	wantOnlyError(t, "shard count 0", res.ShardCountVisible, "shard-count-error")
	if !res.CreateNextToForm || !res.SplitNextToForm || !res.ShardCountNextToForm {
		t.Errorf("an error is not right after its form: create %v, split %v, shard count %v", res.CreateNextToForm, res.SplitNextToForm, res.ShardCountNextToForm)
	}
	if res.BarsAfterSplit != 2 {
		t.Errorf("%d shards on the map after the refused split; want 2", res.BarsAfterSplit)
	}
	if _, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("zero")}); err == nil {
		t.Error("the stream of 0 shards exists")
	}
	if _, open, _ := sdkLineage(ctx, t, c, stream); len(open) != 2 {
		t.Errorf("%d open shards after the refused changes; want 2", len(open))
	}
}

// TestConsoleAuth runs the server with --auth-config. The page asks for a
// key; a wrong secret shows the server's refusal; a principal without
// kinesis:DeleteStream signs in, sees the stream and tries to delete it:
// the page shows the AccessDeniedException the SDK gets for the same call,
// and the stream still exists. The secret shows nowhere in the page and
// never in the server's log.
func TestConsoleAuth(t *testing.T) {
	env := consoleSetup(t)
	logs := newLogBook(t)
	admin := newAuthKey(t, "ADMIN")
	viewer := newAuthKey(t, "VIEWER")
	conf := writeAuthConfig(t,
		authPrincipal{Name: "admin", Keys: []authKey{admin}, Statements: []map[string]any{allowAll}},
		authPrincipal{Name: "viewer", Keys: []authKey{viewer}, Statements: []map[string]any{
			allow([]string{"List*", "Describe*", "Get*", "PutRecord", "PutRecords"}, "*"),
		}})
	srv := startConsoleServer(t, logs, "console-auth", &admin, "--auth-config", conf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ac := keyedClient(srv.endpoint, admin)
	const stream = "guarded"
	createStreams(ctx, t, ac, stream)
	waitActive(ctx, t, ac, stream)

	s := env.runScript(t, "auth.mjs", srv.console, map[string]any{
		"stream": stream, "accessKeyId": viewer.ID, "secret": viewer.Secret, "wrongSecret": viewer.wrongSecret().Secret,
	})
	var denied uiError
	if err := json.Unmarshal(s.step("denied"), &denied); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err != nil {
		t.Errorf("after the refused delete: %v", err)
	}
	s.proceed(map[string]any{})
	var res struct {
		Wrong                   uiError        `json:"wrong"`
		SecretClearedAfterWrong bool           `json:"secretClearedAfterWrong"`
		SecretAfterSignIn       []string       `json:"secretAfterSignIn"`
		Denied                  uiError        `json:"denied"`
		DeniedVisible           []visibleError `json:"deniedVisible"`
		StillOnStreamPage       bool           `json:"stillOnStreamPage"`
		SecretAtEnd             []string       `json:"secretAtEnd"`
	}
	s.result(&res)

	_, err := keyedClient(srv.endpoint, viewer.wrongSecret()).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantSameError(t, "sign in with a wrong secret", res.Wrong, err)
	if !res.SecretClearedAfterWrong {
		t.Error("the secret input kept the secret after submitting")
	}
	_, err = keyedClient(srv.endpoint, viewer).DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	wantSameError(t, "delete without kinesis:DeleteStream", res.Denied, err)
	if res.Denied.Code != "AccessDeniedException" {
		t.Errorf("the refused delete shows %s; want AccessDeniedException", res.Denied.Code)
	}
	wantOnlyError(t, "the refused delete", res.DeniedVisible, "delete-error")
	if !res.StillOnStreamPage {
		t.Error("the page left the stream after the refused delete")
	}
	if len(res.SecretAfterSignIn)+len(res.SecretAtEnd) > 0 {
		t.Errorf("the secret is in the page: after signing in %v, at the end %v", res.SecretAfterSignIn, res.SecretAtEnd)
	}
	if _, err := ac.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err != nil {
		t.Errorf("the stream is gone: %v", err)
	}
	if out, _ := srv.log.contents(); strings.Contains(out, viewer.Secret) || strings.Contains(out, viewer.wrongSecret().Secret) {
		t.Error("the server's log holds the secret")
	}
}

// TestConsoleStream uses the stream page's forms: a tag (whose value is
// markup, shown as text), retention, a consumer, encryption, enhanced
// monitoring and the capacity mode, each checked with the SDK; the shard map
// and the metrics page then show per-shard rates; deregistering the
// consumer, removing the tag and deleting the stream (once its name is
// typed) are checked with the SDK too.
func TestConsoleStream(t *testing.T) {
	env, srv, ctx, c := consoleStart(t, "console-stream")
	const stream = "settings"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(ctx, t, c, stream)
	const tagValue = "<b>ops</b>"
	s := env.runScript(t, "stream.mjs", srv.console, map[string]any{"stream": stream, "tagValue": tagValue})

	var changed struct {
		TagShown string `json:"tagShown"`
	}
	if err := json.Unmarshal(s.step("changed"), &changed); err != nil {
		t.Fatal(err)
	}
	if changed.TagShown != tagValue {
		t.Errorf("the tag's value shows as %q", changed.TagShown)
	}
	tags, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" || aws.ToString(tags.Tags[0].Value) != tagValue {
		t.Errorf("tags after adding one: %+v", tags.Tags)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	d := sum.StreamDescriptionSummary
	var metrics []string
	for _, em := range d.EnhancedMonitoring {
		for _, m := range em.ShardLevelMetrics {
			metrics = append(metrics, string(m))
		}
	}
	if aws.ToInt32(d.RetentionPeriodHours) != 48 || d.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.KeyId) != "alias/aws/kinesis" ||
		d.StreamModeDetails.StreamMode != types.StreamModeOnDemand || len(metrics) != 7 || aws.ToInt32(d.ConsumerCount) != 1 {
		t.Errorf("after the changes: retention %d, encryption %s %s, mode %s, enhanced monitoring %v, %d consumers",
			aws.ToInt32(d.RetentionPeriodHours), d.EncryptionType, aws.ToString(d.KeyId), d.StreamModeDetails.StreamMode, metrics, aws.ToInt32(d.ConsumerCount))
	}
	// Records for the rates.
	for i := range 5 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte("rate")}); err != nil {
			t.Fatal(err)
		}
	}
	s.proceed(map[string]any{})

	s.step("removed")
	cons, err := c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamDescriptionSummary.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range cons.Consumers {
		if cs.ConsumerStatus != types.ConsumerStatusDeleting {
			t.Errorf("consumer after deregistering: %s %s", aws.ToString(cs.ConsumerName), cs.ConsumerStatus)
		}
	}
	if tags, err = c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(stream)}); err != nil || len(tags.Tags) != 0 {
		t.Errorf("tags after removing the tag: %+v %v", tags, err)
	}
	s.proceed(map[string]any{})

	var res struct {
		RateCells       int            `json:"rateCells"`
		ShardMetricRows int            `json:"shardMetricRows"`
		DisabledBefore  bool           `json:"disabledBefore"`
		ListedAfter     int            `json:"listedAfter"`
		Errors          []visibleError `json:"errors"`
	}
	s.result(&res)
	if res.RateCells != 2 || res.ShardMetricRows != 2 {
		t.Errorf("per-shard rates: %d cells on the shard map, %d rows on the metrics page; want 2 each", res.RateCells, res.ShardMetricRows)
	}
	if !res.DisabledBefore {
		t.Error("the delete button was enabled before the name was typed")
	}
	if res.ListedAfter != 0 {
		t.Error("the deleted stream is still listed")
	}
	if out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err == nil &&
		out.StreamDescriptionSummary.StreamStatus != types.StreamStatusDeleting {
		t.Errorf("after deleting, the stream is %s", out.StreamDescriptionSummary.StreamStatus)
	}
	if len(res.Errors) != 0 {
		t.Errorf("error slots showing: %+v", res.Errors)
	}
}

// TestConsoleApplications gives the binary a lease table in PostgreSQL
// (pgtest: skipped without the database, failed under CI=true) holding a
// consumer application's lease, and reads it on the applications page:
// shard, owner, checkpoint and the lag against the stream.
func TestConsoleApplications(t *testing.T) {
	env := consoleSetup(t)
	pool, schema := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	store, err := checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: schema, Table: "leases"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logs := newLogBook(t)
	srv := startConsoleServer(t, logs, "console-applications", nil,
		"--lease-database-url", pgtest.URL(), "--lease-schema", schema, "--lease-table", "leases")
	c := servertest.Client(srv.endpoint)
	const stream, app = "orders", "orders-app"
	createStreams(ctx, t, c, stream)
	waitActive(ctx, t, c, stream)
	var seq, shard string
	for range 3 {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if seq == "" {
			seq, shard = aws.ToString(out.SequenceNumber), aws.ToString(out.ShardId)
		}
	}
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: shard, Checkpoint: checkpoint.Checkpoint{SequenceNumber: checkpoint.TrimHorizon}}); err != nil {
		t.Fatal(err)
	}
	l, err := store.GetLease(ctx, app, shard)
	if err != nil {
		t.Fatal(err)
	}
	if l, err = store.TakeLease(ctx, l, "worker-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Checkpoint(ctx, l, checkpoint.Checkpoint{SequenceNumber: seq}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: "billing", ShardID: shard}); err != nil {
		t.Fatal(err)
	}

	s := env.runScript(t, "applications.mjs", srv.console, map[string]any{"application": app, "stream": stream, "shard": shard})
	var res struct {
		Applications []string       `json:"applications"`
		Cells        []string       `json:"cells"`
		Rows         int            `json:"rows"`
		URL          string         `json:"url"`
		Errors       []visibleError `json:"errors"`
	}
	s.result(&res)
	if !slices.Equal(res.Applications, []string{"billing", app}) {
		t.Errorf("applications listed: %q", res.Applications)
	}
	// Shard, owner (and "expired" once the lease, renewed by no one here,
	// has run out), counter, checkpoint, lag, last renewal, expires, parents.
	if res.Rows != 1 || len(res.Cells) < 5 || res.Cells[0] != shard || strings.TrimSuffix(res.Cells[1], " expired") != "worker-1" || !strings.HasPrefix(res.Cells[3], seq) || res.Cells[4] == "–" {
		t.Errorf("the lease shows as %q (%d rows)", res.Cells, res.Rows)
	}
	if !strings.HasSuffix(res.URL, "#/applications/"+app+"?stream="+stream) {
		t.Errorf("the page's address %s does not keep the stream", res.URL)
	}
	if len(res.Errors) != 0 {
		t.Errorf("error slots showing: %+v", res.Errors)
	}
}
