package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/nodetest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// End-to-end tests of SigV4 verification and IAM-style authorization with
// real clients over loopback: boto3 and the AWS CLI (TestAuthBoto3), the AWS
// SDK for JavaScript v3 over h2c and HTTP/1.1 (TestAuthJSSDK). Each runs
// against an in-process server with Config.AuthConfigFile.

// botoOutput is what testdata/auth/boto3_auth.py prints.
type botoOutput struct {
	Boto3    string `json:"boto3"`
	Botocore string `json:"botocore"`
	OK       struct {
		CredentialMethod string `json:"credentialMethod"`
		CredentialKeyID  string `json:"credentialKeyId"`
		Region           string `json:"region"`
		CreateStatus     int    `json:"createStatus"`
		Summary          struct {
			ARN        string `json:"arn"`
			Status     string `json:"status"`
			OpenShards int    `json:"openShards"`
		} `json:"summary"`
		DescribeShards int      `json:"describeShards"`
		ListStreams    []string `json:"listStreams"`
		PutRecord      struct {
			ShardID        string `json:"shardId"`
			SequenceNumber string `json:"sequenceNumber"`
		} `json:"putRecord"`
		PutRecords struct {
			Failed int `json:"failed"`
			Count  int `json:"count"`
		} `json:"putRecords"`
		Shards     []string `json:"shards"`
		GetRecords []struct {
			SequenceNumber string `json:"sequenceNumber"`
			PartitionKey   string `json:"partitionKey"`
			Data           []byte `json:"data"`
		} `json:"getRecords"`
		Tags            map[string]string `json:"tags"`
		TagsAfterRemove map[string]string `json:"tagsAfterRemove"`
		Consumer        struct {
			ARN    string   `json:"arn"`
			Status string   `json:"status"`
			Listed []string `json:"listed"`
		} `json:"consumer"`
		Subscribe struct {
			Status  int      `json:"status"`
			Records [][]byte `json:"records"`
		} `json:"subscribe"`
		PutPolicyStatus         int    `json:"putPolicyStatus"`
		Policy                  string `json:"policy"`
		PolicySent              string `json:"policySent"`
		PartnerSummaryARN       string `json:"partnerSummaryArn"`
		PolicyAfterDelete       string `json:"policyAfterDelete"`
		SessionTokenListStreams int    `json:"sessionTokenListStreams"`
	} `json:"ok"`
	Errors map[string]scriptError `json:"errors"`
}

// python3WithBoto3 returns the python3 that imports boto3, or skips the
// test (fails it under CI=true) when there is none.
func python3WithBoto3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		nodetest.Missing(t, "python3 not found (the boto3 test needs python3 with boto3): %v", err)
	}
	if out, err := exec.Command(py, "-c", "import boto3, botocore").CombinedOutput(); err != nil {
		nodetest.Missing(t, "%s cannot import boto3 (pip install boto3): %v\n%s", py, err, out)
	}
	return py
}

// TestAuthBoto3 runs testdata/auth/boto3_auth.py, with its principal's keys
// in the environment, against a server with an auth config: every
// operation the principal's policy allows passes (stream, records, shards,
// tags, consumer and SubscribeToShard, resource policies, a partner account
// let in by one, a key with a session token), and a wrong secret, an
// unknown key, an unsigned request, another region, a session token that is
// not the key's, and a denied action or resource each fail with Kinesis's
// code and exact message. Then the AWS CLI, with the same environment,
// describes the stream and is refused DeleteStream with the IAM message.
func TestAuthBoto3(t *testing.T) {
	py := python3WithBoto3(t)
	script, err := filepath.Abs(filepath.Join("testdata", "auth", "boto3_auth.py"))
	if err != nil {
		t.Fatal(err)
	}
	const stream, otherStream = "boto-auth", "other-stream"
	streamPattern := streamARNOf("boto-*")
	admin := authPrincipal{Name: "admin", Keys: []authKey{newAuthKey(t, "ADMIN")}, Statements: []map[string]any{allowAll}}
	user := authPrincipal{Name: "boto-user", Keys: []authKey{newAuthKey(t, "BOTO")}, Statements: []map[string]any{
		allow([]string{"CreateStream", "DescribeStream", "DescribeStreamSummary", "PutRecord", "PutRecords", "ListShards",
			"GetShardIterator", "GetRecords", "AddTagsToStream", "ListTagsForStream", "RemoveTagsFromStream",
			"RegisterStreamConsumer", "ListStreamConsumers", "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy"}, streamPattern),
		allow([]string{"DescribeStreamConsumer", "SubscribeToShard"}, streamPattern+"/consumer/*"),
		allow([]string{"ListStreams"}, "*"),
	}}
	partner := authPrincipal{Name: "partner", Account: partnerAccount, Keys: []authKey{newAuthKey(t, "PARTNER")},
		Statements: []map[string]any{allow([]string{"DescribeStreamSummary", "ListShards"}, "arn:aws:kinesis:*:"+authAccount+":stream/*")}}
	sessionKey := newAuthKey(t, "TEMP")
	sessionKey.Token = "session-token-" + randomHex(t, 16)
	temp := authPrincipal{Name: "temporary", Keys: []authKey{sessionKey}, Statements: []map[string]any{allow([]string{"ListStreams"}, "*")}}
	srv := servertest.Start(t, server.Config{AuthConfigFile: writeAuthConfig(t, admin, user, partner, temp)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ac := keyedClient(srv.Endpoint, admin.Keys[0])
	createStreams(ctx, t, ac, otherStream)

	userKey := user.Keys[0]
	payload := "boto3 payload " + randomHex(t, 8)
	input := map[string]any{
		"endpoint": srv.Endpoint, "region": authRegion, "otherRegion": "eu-west-1",
		"streamName": stream, "consumerName": "boto-efo", "otherStream": otherStream, "payload": payload,
		"partnerKey": partner.Keys[0], "partnerAccount": partnerAccount, "sessionKey": sessionKey,
		"wrongSecretKey": userKey.wrongSecret(), "unknownKey": newAuthKey(t, "UNKNOWN"),
	}
	inFile := filepath.Join(t.TempDir(), "input.json")
	b, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := isolatedAWSEnv(t, append(userKey.env(), "AWS_DEFAULT_REGION="+authRegion)...)
	start := time.Now()
	stdout, stderr, err := runTool(ctx, env, py, script, inFile)
	if err != nil {
		t.Fatalf("python3 boto3_auth.py: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	t.Logf("boto3_auth.py ran in %v", time.Since(start).Round(time.Millisecond))
	var out botoOutput
	mustJSON(t, "boto3_auth.py", []byte(stdout), &out)
	t.Logf("boto3 %s, botocore %s", out.Boto3, out.Botocore)
	arn := streamARNOf(stream)

	t.Run("allowed", func(t *testing.T) {
		ok := out.OK
		if ok.CredentialMethod != "env" || ok.CredentialKeyID != userKey.ID || ok.Region != authRegion {
			t.Errorf("boto3 signed with %s credentials of %s in %s; want env credentials of %s in %s",
				ok.CredentialMethod, ok.CredentialKeyID, ok.Region, userKey.ID, authRegion)
		}
		if ok.CreateStatus != 200 || ok.Summary.ARN != arn || ok.Summary.Status != "ACTIVE" || ok.Summary.OpenShards != 2 || ok.DescribeShards != 2 {
			t.Errorf("create %d, summary %+v, %d shards described; want 200, %s ACTIVE with 2 shards", ok.CreateStatus, ok.Summary, ok.DescribeShards, arn)
		}
		if !slices.Equal(ok.ListStreams, []string{stream, otherStream}) {
			t.Errorf("ListStreams %v; want the account's streams [%s %s]", ok.ListStreams, stream, otherStream)
		}
		if ok.PutRecords.Failed != 0 || ok.PutRecords.Count != 5 || len(ok.Shards) != 2 {
			t.Errorf("PutRecords %+v, shards %v; want 5 records stored, 2 shards", ok.PutRecords, ok.Shards)
		}
		if len(ok.GetRecords) != 1 || string(ok.GetRecords[0].Data) != payload || ok.GetRecords[0].SequenceNumber != ok.PutRecord.SequenceNumber {
			t.Errorf("GetRecords read %+v; want the record put, %s %q", ok.GetRecords, ok.PutRecord.SequenceNumber, payload)
		}
		if ok.Tags["team"] != "boto" || ok.Tags["env"] != "test" || len(ok.TagsAfterRemove) != 1 || ok.TagsAfterRemove["team"] != "boto" {
			t.Errorf("tags %v, after removing env %v", ok.Tags, ok.TagsAfterRemove)
		}
		if c := ok.Consumer; c.Status != "ACTIVE" || !strings.HasPrefix(c.ARN, arn+"/consumer/boto-efo:") || !slices.Equal(c.Listed, []string{c.ARN}) {
			t.Errorf("consumer %+v", c)
		}
		if s := ok.Subscribe; s.Status != 200 || len(s.Records) == 0 || !slices.ContainsFunc(s.Records, func(d []byte) bool { return string(d) == payload }) {
			t.Errorf("SubscribeToShard: HTTP %d, first event's records %q; want 200 and the payload", s.Status, s.Records)
		}
		if ok.PutPolicyStatus != 200 || ok.Policy != ok.PolicySent || ok.PolicyAfterDelete != "{}" {
			t.Errorf("resource policy: put %d, got back %q (sent %q), after delete %q", ok.PutPolicyStatus, ok.Policy, ok.PolicySent, ok.PolicyAfterDelete)
		}
		if ok.PartnerSummaryARN != arn {
			t.Errorf("the partner account, let in by the resource policy, described %q; want %s", ok.PartnerSummaryARN, arn)
		}
		if ok.SessionTokenListStreams != 2 {
			t.Errorf("ListStreams with the session token: %d streams, want 2", ok.SessionTokenListStreams)
		}
	})

	t.Run("refused", func(t *testing.T) {
		partnerDenied := "User: " + partner.arn() + " is not authorized to perform: kinesis:DescribeStreamSummary on resource: " + arn +
			" because no resource-based policy allows the kinesis:DescribeStreamSummary action"
		for _, c := range []struct{ name, code, msg string }{
			{"deniedAction", "AccessDeniedException", deniedMessage(user.arn(), "DeleteStream", arn)},
			{"deniedResource", "AccessDeniedException", deniedMessage(user.arn(), "DescribeStreamSummary", streamARNOf(otherStream))},
			{"wrongSecret", "InvalidSignatureException", msgSignatureMismatch},
			{"unknownKey", "UnrecognizedClientException", msgInvalidToken},
			{"unsigned", "MissingAuthenticationTokenException", msgMissingToken},
			{"otherRegion", "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. "},
			{"wrongSessionToken", "UnrecognizedClientException", msgInvalidToken},
			{"missingSessionToken", "UnrecognizedClientException", msgInvalidToken},
			{"partnerBeforePolicy", "AccessDeniedException", partnerDenied},
			{"partnerAfterDelete", "AccessDeniedException", partnerDenied},
		} {
			e, ok := out.Errors[c.name]
			if !ok {
				t.Errorf("%s: not reported", c.name)
				continue
			}
			e.check(t, c.name, c.code, c.msg)
		}
	})

	// What boto3 did, as the admin reads it with aws-sdk-go-v2.
	t.Run("go", func(t *testing.T) {
		got, err := ac.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: &out.OK.PutRecord.ShardID,
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: &out.OK.PutRecord.SequenceNumber})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := ac.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: got.ShardIterator, Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs.Records) != 1 || string(recs.Records[0].Data) != payload || aws.ToString(recs.Records[0].PartitionKey) != "boto-key" {
			t.Errorf("Go read %+v; want boto3's record", recs.Records)
		}
		tags, err := ac.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
			t.Errorf("Go reads tags %+v; want team only", tags.Tags)
		}
		if _, err := ac.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: &out.OK.Consumer.ARN}); err != nil {
			t.Errorf("Go describes boto3's consumer: %v", err)
		}
	})

	t.Run("aws-cli", func(t *testing.T) {
		awsCLI, err := exec.LookPath("aws")
		if err != nil {
			nodetest.Missing(t, "the AWS CLI (aws) not found: %v", err)
		}
		common := []string{"--endpoint-url", srv.Endpoint, "--region", authRegion, "--output", "json", "--cli-connect-timeout", "30"}
		o, e, err := runTool(ctx, env, awsCLI, append([]string{"kinesis", "describe-stream-summary", "--stream-name", stream}, common...)...)
		if err != nil {
			t.Fatalf("aws kinesis describe-stream-summary: %v\n%s", err, e)
		}
		var sum struct {
			StreamDescriptionSummary struct{ StreamARN, StreamStatus string }
		}
		mustJSON(t, "aws kinesis describe-stream-summary", []byte(o), &sum)
		if s := sum.StreamDescriptionSummary; s.StreamARN != arn || s.StreamStatus != "ACTIVE" {
			t.Errorf("aws kinesis describe-stream-summary: %s; want %s", o, arn)
		}
		_, e, err = runTool(ctx, env, awsCLI, append([]string{"kinesis", "delete-stream", "--stream-name", stream}, common...)...)
		want := "An error occurred (AccessDeniedException) when calling the DeleteStream operation: " + deniedMessage(user.arn(), "DeleteStream", arn)
		if code := exitCode(err); code != 254 && code != 255 || strings.TrimSpace(e) != want {
			t.Errorf("aws kinesis delete-stream: exit %d (%v), stderr %q; want exit 254 or 255 (CLI v2, v1) and %q", code, err, e, want)
		}
		if _, err := ac.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err != nil {
			t.Errorf("the stream is gone after a denied DeleteStream: %v", err)
		}
	})
}

// jsAuthOutput is what testdata/js-sdk/auth.js prints.
type jsAuthOutput struct {
	SDKVersion     string `json:"sdkVersion"`
	NodeVersion    string `json:"nodeVersion"`
	RequestHandler string `json:"requestHandler"`
	OK             struct {
		CredentialKeyID string `json:"credentialKeyId"`
		CreateStatus    int    `json:"createStatus"`
		Summary         struct {
			ARN    string `json:"arn"`
			Status string `json:"status"`
		} `json:"summary"`
		PutRecord struct {
			ShardID        string `json:"shardId"`
			SequenceNumber string `json:"sequenceNumber"`
		} `json:"putRecord"`
		Shards []string `json:"shards"`
		Read   []struct {
			SequenceNumber string `json:"sequenceNumber"`
			Data           string `json:"data"`
		} `json:"read"`
	} `json:"ok"`
	// OKError is the first allowed call that failed (none: nil).
	OKError *struct {
		Step string `json:"step"`
		scriptError
	} `json:"okError"`
	Errors    map[string]scriptError `json:"errors"`
	Transport jsTransport            `json:"transport"`
}

// TestAuthJSSDK runs testdata/js-sdk/auth.js with the AWS SDK for
// JavaScript v3 (the pinned install TestInteropJSSDK uses) against a server
// with an auth config, over h2c (the Kinesis client's NodeHttp2Handler) and
// over HTTP/1.1 (NodeHttpHandler): with the principal's keys in the
// environment, CreateStream, PutRecord, ListShards, GetShardIterator and
// GetRecords pass; DeleteStream, which its policy does not allow, is
// AccessDeniedException with IAM's message; a wrong secret, an unknown key
// and another region fail with Kinesis's codes and messages.
func TestAuthJSSDK(t *testing.T) {
	node := nodetest.Node(t, jsSDKMinNode)
	lockDir, err := filepath.Abs(filepath.Join("testdata", "js-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	modules := nodetest.InstallLocked(t, lockDir)
	admin := authPrincipal{Name: "admin", Keys: []authKey{newAuthKey(t, "ADMIN")}, Statements: []map[string]any{allowAll}}
	user := authPrincipal{Name: "js-user", Keys: []authKey{newAuthKey(t, "JSUSER")}, Statements: []map[string]any{
		allow([]string{"CreateStream", "DescribeStreamSummary", "PutRecord", "ListShards", "GetShardIterator", "GetRecords"}, streamARNOf("js-*")),
	}}
	srv := servertest.Start(t, server.Config{AuthConfigFile: writeAuthConfig(t, admin, user)})
	ac := keyedClient(srv.Endpoint, admin.Keys[0])
	// The script's processes find the principal's keys in the environment.
	for _, kv := range isolatedAWSEnv(t, user.Keys[0].env()...) {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k) // restored by t.Setenv's cleanup
	}

	for _, tc := range []struct {
		name, handler string
		http2         bool
	}{
		{"h2c", "default", true},
		{"http1", "http1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream := "js-auth-" + tc.name
			payload := "js payload " + randomHex(t, 8)
			input := map[string]any{
				"endpoint": srv.Endpoint, "handler": tc.handler, "region": authRegion, "otherRegion": "eu-west-1",
				"streamName": stream, "payload": payload,
				"wrongSecretKey": user.Keys[0].wrongSecret(), "unknownKey": newAuthKey(t, "UNKNOWN"),
			}
			b, err := json.Marshal(input)
			if err != nil {
				t.Fatal(err)
			}
			inFile := filepath.Join(t.TempDir(), "input.json")
			if err := os.WriteFile(inFile, b, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			stdout := nodetest.Run(ctx, t, node, modules, filepath.Join(lockDir, "auth.js"), inFile)
			t.Logf("auth.js ran in %v", time.Since(start).Round(time.Millisecond))
			var out jsAuthOutput
			mustJSON(t, "auth.js", stdout, &out)
			t.Logf("@aws-sdk/client-kinesis %s on node %s, %s", out.SDKVersion, out.NodeVersion, out.RequestHandler)

			arn := streamARNOf(stream)
			ok := out.OK
			if ok.CredentialKeyID != user.Keys[0].ID {
				t.Errorf("the SDK's default chain found key %q; want the environment's %s", ok.CredentialKeyID, user.Keys[0].ID)
			}
			if e := out.OKError; e != nil {
				t.Errorf("%s, which the principal's policy allows, failed over %s: %v", e.Step, out.RequestHandler, e.scriptError)
			} else if ok.CreateStatus != 200 || ok.Summary.ARN != arn || ok.Summary.Status != "ACTIVE" || len(ok.Shards) != 1 || ok.Shards[0] != ok.PutRecord.ShardID {
				t.Errorf("allowed calls: %+v; want stream %s ACTIVE with one shard holding the record", ok, arn)
			} else if len(ok.Read) != 1 || ok.Read[0].Data != payload || ok.Read[0].SequenceNumber != ok.PutRecord.SequenceNumber {
				t.Errorf("GetRecords read %+v; want %s %q", ok.Read, ok.PutRecord.SequenceNumber, payload)
			}
			for _, c := range []struct{ name, code, msg string }{
				{"deniedAction", "AccessDeniedException", deniedMessage(user.arn(), "DeleteStream", arn)},
				{"wrongSecret", "InvalidSignatureException", msgSignatureMismatch},
				{"unknownKey", "UnrecognizedClientException", msgInvalidToken},
				{"otherRegion", "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. "},
			} {
				e, found := out.Errors[c.name]
				if !found {
					t.Errorf("%s: not reported", c.name)
					continue
				}
				e.check(t, c.name, c.code, c.msg)
			}

			// The record, as the admin reads it with aws-sdk-go-v2.
			if out.OKError == nil {
				recs := readShardAll(ctx, t, ac, stream, ok.PutRecord.ShardID)
				if len(recs) != 1 || string(recs[0].Data) != payload {
					t.Errorf("Go read %d records from %s; want the script's one", len(recs), stream)
				}
			}

			tr := out.Transport
			if tc.http2 {
				if tr.HTTP1Requests != 0 || tr.HTTP2Sessions == 0 || slices.ContainsFunc(tr.ALPNProtocols, func(p string) bool { return p != "h2c" }) {
					t.Errorf("transport %+v; want h2c sessions only", tr)
				}
			} else if tr.HTTP2Sessions != 0 || tr.HTTP1Requests == 0 {
				t.Errorf("transport %+v; want HTTP/1.1 requests only", tr)
			}
		})
	}
}
