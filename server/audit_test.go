package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// auditLine is the part of an audit record the tests read.
type auditLine struct {
	EventName    string `json:"eventName"`
	EventSource  string `json:"eventSource"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	RequestID    string `json:"requestID"`
	ReadOnly     bool   `json:"readOnly"`
	Category     string `json:"eventCategory"`
	UserIdentity struct {
		Type, ARN, AccountID, AccessKeyID, UserName string
	} `json:"userIdentity"`
	RequestParameters map[string]any `json:"requestParameters"`
	Resources         []struct {
		ARN, Type string
	} `json:"resources"`
	RecipientAccountID string `json:"recipientAccountId"`
}

// readAudit reads an audit log written by a server that has shut down.
func readAudit(t *testing.T, path string) (lines []auditLine, raw []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, raw
}

// The audit log records management calls, and data calls only when asked,
// with who called and what was denied, never a record's payload or
// partition key.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	for _, data := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "audit.log")
		cfg := server.Config{AccountID: acctA, AuthConfigFile: writeAuthConfig(t, dir, admin, producerP), AuditLog: path, AuditDataEvents: data}
		srv := servertest.Start(t, cfg)
		ctx := context.Background()
		ad := servertest.Client(srv.Endpoint, asKey(admin))
		_, err := ad.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)})
		noErr(t, err, "CreateStream")
		payload := []byte("the-secret-payload-bytes")
		_, err = servertest.Client(srv.Endpoint, asKey(producerP)).PutRecord(ctx, &kinesis.PutRecordInput{
			StreamName: aws.String("orders"), PartitionKey: aws.String("customer-4711"), Data: payload})
		noErr(t, err, "PutRecord")
		_, err = servertest.Client(srv.Endpoint, asKey(producerP)).DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")})
		wantCode(t, err, "AccessDeniedException")
		if err := srv.Shutdown(ctx); err != nil { // flushes the log
			t.Fatal(err)
		}
		lines, raw := readAudit(t, path)
		for _, secret := range [][]byte{payload, []byte(base64.StdEncoding.EncodeToString(payload)), []byte("customer-4711"),
			[]byte(admin.secret), []byte(producerP.secret)} {
			if bytes.Contains(raw, secret) {
				t.Fatalf("the audit log holds %q", secret)
			}
		}
		var names []string
		for _, l := range lines {
			names = append(names, l.EventName)
			if l.EventSource != "kinesis.amazonaws.com" || l.RequestID == "" {
				t.Fatalf("record %+v", l)
			}
		}
		want := []string{"CreateStream", "DeleteStream"}
		if data {
			want = []string{"CreateStream", "PutRecord", "DeleteStream"}
		}
		if !slices.Equal(names, want) {
			t.Fatalf("audit events %v, want %v", names, want)
		}
		create, del := lines[0], lines[len(lines)-1]
		if create.UserIdentity.Type != "IAMUser" || create.UserIdentity.ARN != userARN(acctA, "admin") || create.UserIdentity.AccessKeyID != admin.id ||
			create.RequestParameters["streamName"] != "orders" || create.RequestParameters["shardCount"] != float64(1) || create.Category != "Management" {
			t.Fatalf("CreateStream record %+v", create)
		}
		if del.ErrorCode != "AccessDeniedException" || del.ErrorMessage != denied(userARN(acctA, "orders-producer"), "DeleteStream", streamARNIn(acctA, "orders")) {
			t.Fatalf("denied DeleteStream record %+v", del)
		}
		if data {
			put := lines[1]
			if put.Category != "Data" || put.ReadOnly || len(put.Resources) != 1 || put.Resources[0].ARN != streamARNIn(acctA, "orders") ||
				put.Resources[0].Type != "AWS::Kinesis::Stream" || put.RecipientAccountID != acctA {
				t.Fatalf("PutRecord record %+v", put)
			}
		}
	}
}

func asKey(p principal) func(*kinesis.Options) {
	return func(o *kinesis.Options) {
		o.Credentials = staticCreds(p.id, p.secret, p.token)
		o.RetryMaxAttempts = 1
	}
}
