package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/shoalstream/shoal/internal/testutil/wait"
)

// The shoal binary with --auth-config: keys rotated by rewriting the file
// and sending SIGHUP (TestAuthSIGHUP), and the --audit-log it writes
// (TestAuthAuditLog).

// startAuthServer starts "shoal server" with extra flags (--auth-config
// among them) on dataDir and waits until it serves ListStreams signed with
// ready. A port taken between choosing and binding it is retried.
func startAuthServer(t *testing.T, bin string, logs *logBook, label, dataDir string, ready authKey, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--data-dir", dataDir, "--log-level", "warn"}, extra...)
	return launchServer(t, bin, logs, label, args, func(p *proc) error {
		return p.waitReadyWith(keyedClient(p.endpoint, ready), time.Minute)
	})
}

// logEntry is one line of the server's JSON log.
type logEntry struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Error string `json:"error"`
}

// logEntries parses the JSON lines of a server's output (others are skipped).
func logEntries(out string) []logEntry {
	var es []logEntry
	for _, line := range strings.Split(out, "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg != "" {
			es = append(es, e)
		}
	}
	return es
}

// TestAuthSIGHUP runs the binary with --auth-config naming key K1, rewrites
// the file with K2 instead and sends SIGHUP: K1 becomes
// UnrecognizedClientException and K2 works. Then it writes a file that
// does not parse and sends SIGHUP again: K2 still works, K1 still fails, and
// the server's log names the file and the problem (and not the secret the
// broken file holds).
func TestAuthSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	bin := shoalBinary(t)
	logs := newLogBook(t)
	k1, k2 := newAuthKey(t, "KONE"), newAuthKey(t, "KTWO")
	app := func(k authKey) authPrincipal {
		return authPrincipal{Name: "app", Keys: []authKey{k}, Statements: []map[string]any{allow([]string{"ListStreams", "CreateStream"}, "*")}}
	}
	conf := writeAuthConfig(t, app(k1))
	p := startAuthServer(t, bin, logs, "sighup", t.TempDir(), k1, "--storage", "memory", "--auth-config", conf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c1, c2 := keyedClient(p.endpoint, k1), keyedClient(p.endpoint, k2)
	listWith := func(c *kinesis.Client) error {
		_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		return err
	}
	if err := listWith(c1); err != nil {
		t.Fatalf("K1 before the rotation: %v", err)
	}
	wantAPIError(t, "K2 before the rotation", listWith(c2), "UnrecognizedClientException", msgInvalidToken)
	if _, err := c1.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("survives"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}

	// Rotate: the file names K2 only.
	writeFileAtomic(t, conf, authConfigJSON(t, app(k2)))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 30*time.Second, func() error {
		if p.exited() {
			t.Fatalf("the server exited on SIGHUP: %v", p.waitErr)
		}
		if code, _ := apiError(listWith(c1)); code != "UnrecognizedClientException" {
			return fmt.Errorf("K1 still answers %q after SIGHUP", code)
		}
		return nil
	})
	wantAPIError(t, "K1 after the rotation", listWith(c1), "UnrecognizedClientException", msgInvalidToken)
	out, err := c2.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil || len(out.StreamNames) != 1 || out.StreamNames[0] != "survives" {
		t.Fatalf("K2 after the rotation: %v %v; want the account's stream", out, err)
	}

	// A broken file: an unknown field, next to a secret the log must not show.
	brokenSecret := randomHex(t, 20)
	broken := fmt.Sprintf(`{"principals": [{"name": "app", "accountId": %q, "accessKeys": [{"accessKeyId": %q, "secretKey": %q}]}]}`,
		authAccount, k1.ID, brokenSecret)
	writeFileAtomic(t, conf, []byte(broken))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	const wantMsg = "auth configuration not reloaded"
	wantErr := conf + `: principals[0].accessKeys[0]: unknown field "secretKey"`
	wait.Eventually(t, 30*time.Second, func() error {
		if p.exited() {
			t.Fatalf("the server exited on SIGHUP with a broken file: %v", p.waitErr)
		}
		out, _ := p.log.contents()
		for _, e := range logEntries(out) {
			if e.Msg == wantMsg {
				if e.Level != "error" || !strings.Contains(e.Error, wantErr) || !strings.Contains(e.Error, "the previous configuration stays in force") {
					t.Fatalf("server log: %+v; want level error, the error naming %q", e, wantErr)
				}
				return nil
			}
		}
		return fmt.Errorf("no %q in the server's log yet", wantMsg)
	})
	if out, _ := p.log.contents(); strings.Contains(out, brokenSecret) || strings.Contains(out, k2.Secret) || strings.Contains(out, k1.Secret) {
		t.Errorf("the server's log shows a secret access key:\n%s", out)
	}
	if err := listWith(c2); err != nil {
		t.Errorf("K2 after a broken file: %v; want the configuration in force to stay", err)
	}
	wantAPIError(t, "K1 after a broken file", listWith(c1), "UnrecognizedClientException", msgInvalidToken)
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	}
}

// auditLine is the part of an audit record the tests read.
type auditLine struct {
	EventVersion string `json:"eventVersion"`
	UserIdentity struct {
		Type        string `json:"type"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		AccessKeyID string `json:"accessKeyId"`
		UserName    string `json:"userName"`
	} `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	ErrorCode          string          `json:"errorCode"`
	ErrorMessage       string          `json:"errorMessage"`
	RequestParameters  map[string]any  `json:"requestParameters"`
	ResponseElements   map[string]any  `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventCategory      string          `json:"eventCategory"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	Resources          []auditResource `json:"resources"`
	TLSDetails         *struct {
		TLSVersion               string `json:"tlsVersion"`
		CipherSuite              string `json:"cipherSuite"`
		ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
	} `json:"tlsDetails"`
}

type auditResource struct {
	AccountID string `json:"accountId"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

// readAudit parses an audit log: every line must be one JSON object.
func readAudit(t *testing.T, path string) ([]auditLine, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseAudit(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Errorf("the audit log does not end with a newline")
	}
	return recs, raw
}

// parseAudit parses the complete lines of an audit log (a last line
// without its newline is being written): each must be one JSON object.
func parseAudit(raw []byte) ([]auditLine, error) {
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i+1]
	} else {
		raw = nil
	}
	var recs []auditLine
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			return nil, fmt.Errorf("audit log line %d is not a JSON object: %w\n%s", n, err, line)
		}
		var r auditLine
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w\n%s", n, err, line)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// requestIDOf is the x-amzn-RequestId of an SDK call's result or error.
func requestIDOf(t *testing.T, md middleware.Metadata, err error) string {
	t.Helper()
	if err != nil {
		var re *awshttp.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("no HTTP response in %v", err)
		}
		return re.ServiceRequestID()
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(md)
	if !ok || id == "" {
		t.Fatal("the response has no x-amzn-RequestId")
	}
	return id
}

// TestAuthAuditLog runs the binary with --auth-config, --audit-log FILE and
// --audit-data-events, makes a CreateStream, a PutRecord with a
// recognisable payload and partition key, a DescribeStreamSummary, a
// DeleteStream the policy denies and a call with a wrong secret, and stops
// the server: the file is one JSON object per line, eventSource
// kinesis.amazonaws.com, each call's record found by the x-amzn-RequestId of
// its response with the right eventName, category, identity and resource,
// the denied one with errorCode AccessDeniedException and IAM's message,
// the unauthenticated one with InvalidSignatureException and an Unknown
// identity; and nowhere in the file the payload (raw or base64), the
// partition key, or any secret access key.
func TestAuthAuditLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	bin := shoalBinary(t)
	logs := newLogBook(t)
	const stream = "audit-orders"
	arn := streamARNOf(stream)
	writer := authPrincipal{Name: "audit-writer", Keys: []authKey{newAuthKey(t, "WRITER")}, Statements: []map[string]any{
		allow([]string{"CreateStream", "PutRecord", "DescribeStreamSummary"}, streamARNOf("audit-*")),
		allow([]string{"ListStreams"}, "*"),
	}}
	other := authPrincipal{Name: "other", Keys: []authKey{newAuthKey(t, "OTHER")}, Statements: []map[string]any{allowAll}}
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	p := startAuthServer(t, bin, logs, "audit", t.TempDir(), writer.Keys[0], "--storage", "memory",
		"--auth-config", writeAuthConfig(t, writer, other), "--audit-log", auditFile, "--audit-data-events")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := keyedClient(p.endpoint, writer.Keys[0])

	payload := "card-4111-1111-" + randomHex(t, 6)
	partitionKey := "customer-ssn-" + randomHex(t, 6)
	created, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	createID := requestIDOf(t, created.ResultMetadata, nil)
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(partitionKey), Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	putID := requestIDOf(t, put.ResultMetadata, nil)
	desc, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	descID := requestIDOf(t, desc.ResultMetadata, nil)
	_, err = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	denied := deniedMessage(writer.arn(), "DeleteStream", arn)
	wantAPIError(t, "DeleteStream", err, "AccessDeniedException", denied)
	deniedID := requestIDOf(t, middleware.Metadata{}, err)
	wrong := writer.Keys[0].wrongSecret()
	_, err = keyedClient(p.endpoint, wrong).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, "ListStreams with a wrong secret", err, "InvalidSignatureException", msgSignatureMismatch)
	wrongID := requestIDOf(t, middleware.Metadata{}, err)

	// The writer flushes on shutdown.
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	}
	recs, raw := readAudit(t, auditFile)
	byID := map[string]auditLine{}
	for i, r := range recs {
		if r.EventSource != "kinesis.amazonaws.com" || r.EventVersion == "" || r.EventID == "" || r.AWSRegion != authRegion || r.SourceIPAddress != "127.0.0.1" {
			t.Errorf("record %d: %+v; want eventSource kinesis.amazonaws.com, region %s, source 127.0.0.1", i, r, authRegion)
		}
		if _, err := time.Parse(time.RFC3339, r.EventTime); err != nil {
			t.Errorf("record %d: eventTime %q: %v", i, r.EventTime, err)
		}
		if _, dup := byID[r.RequestID]; dup {
			t.Errorf("two records of request %s", r.RequestID)
		}
		byID[r.RequestID] = r
	}
	for _, w := range []struct {
		what, id, name, category, errCode, errMsg string
	}{
		{"CreateStream", createID, "CreateStream", "Management", "", ""},
		{"PutRecord", putID, "PutRecord", "Data", "", ""},
		{"DescribeStreamSummary", descID, "DescribeStreamSummary", "Management", "", ""},
		{"denied DeleteStream", deniedID, "DeleteStream", "Management", "AccessDeniedException", denied},
		{"ListStreams with a wrong secret", wrongID, "ListStreams", "Management", "InvalidSignatureException", msgSignatureMismatch},
	} {
		r, ok := byID[w.id]
		if !ok {
			t.Errorf("%s: no record with requestID %s (the response's x-amzn-RequestId)", w.what, w.id)
			continue
		}
		if r.EventName != w.name || r.EventCategory != w.category || r.ManagementEvent != (w.category == "Management") || r.ErrorCode != w.errCode || r.ErrorMessage != w.errMsg {
			t.Errorf("%s: record %+v; want eventName %s, category %s, error %q %q", w.what, r, w.name, w.category, w.errCode, w.errMsg)
		}
		if w.errCode == "InvalidSignatureException" {
			if r.UserIdentity.Type != "Unknown" || r.UserIdentity.AccessKeyID != "" {
				t.Errorf("%s: userIdentity %+v; want Unknown, no access key", w.what, r.UserIdentity)
			}
			continue
		}
		id := r.UserIdentity
		if id.Type != "IAMUser" || id.ARN != writer.arn() || id.UserName != writer.Name || id.AccessKeyID != writer.Keys[0].ID || id.AccountID != authAccount {
			t.Errorf("%s: userIdentity %+v; want IAMUser %s with key %s", w.what, id, writer.arn(), writer.Keys[0].ID)
		}
		if r.RecipientAccountID != authAccount || len(r.Resources) != 1 || r.Resources[0] != (auditResource{authAccount, "AWS::Kinesis::Stream", arn}) {
			t.Errorf("%s: recipient %s, resources %+v; want the stream %s", w.what, r.RecipientAccountID, r.Resources, arn)
		}
		if r.RequestParameters["streamName"] != stream {
			t.Errorf("%s: requestParameters %v; want streamName %s", w.what, r.RequestParameters, stream)
		}
	}
	for _, secret := range []struct{ what, s string }{
		{"the record's payload", payload},
		{"the record's payload in base64", base64.StdEncoding.EncodeToString([]byte(payload))},
		{"the record's payload in URL-safe base64", base64.URLEncoding.EncodeToString([]byte(payload))},
		{"the partition key", partitionKey},
		{"the writer's secret access key", writer.Keys[0].Secret},
		{"the other principal's secret access key", other.Keys[0].Secret},
		{"the wrong secret", wrong.Secret},
	} {
		if bytes.Contains(raw, []byte(secret.s)) {
			t.Errorf("the audit log holds %s (%q)", secret.what, secret.s)
		}
	}
	t.Logf("%d audit records, %d bytes", len(recs), len(raw))
}
