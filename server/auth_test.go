package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/server"
)

// wantAPIError asserts err's code and exact message.
func wantAPIError(t testing.TB, err error, code, message string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s: %s", err, code, message)
	}
	if ae.ErrorCode() != code || ae.ErrorMessage() != message {
		t.Fatalf("got %s: %q\nwant %s: %q", ae.ErrorCode(), ae.ErrorMessage(), code, message)
	}
}

// denied is the AccessDeniedException message of IAM's implicit deny.
func denied(user, action, resource string) string {
	return "User: " + user + " is not authorized to perform: kinesis:" + action + " on resource: " + resource +
		" because no identity-based policy allows the kinesis:" + action + " action"
}

func userARN(account, name string) string { return "arn:aws:iam::" + account + ":user/" + name }

func streamARNIn(account, name string) string {
	return "arn:aws:kinesis:us-east-1:" + account + ":stream/" + name
}

var (
	admin = principal{name: "admin", id: "AKIAADMIN00000000001", secret: "admin-secret-0123456789",
		policies: []string{allow(`"kinesis:*"`, `"*"`)}}
	producerP = principal{name: "orders-producer", account: acctA, id: "AKIAORDERSPRODUCER01", secret: "producer-secret-0123456789",
		policies: []string{allow(`["kinesis:PutRecord","kinesis:PutRecords","kinesis:ListShards"]`, `"arn:aws:kinesis:*:111122223333:stream/orders"`)}}
	nobody = principal{name: "nobody", id: "AKIANOBODY0000000001", secret: "nobody-secret-0123456789"}
	tokenP = principal{name: "temporary", id: "ASIATEMPORARY0000001", secret: "temporary-secret-0123456789", token: "the-session-token",
		policies: []string{allow(`"kinesis:ListStreams"`, `"*"`)}}
)

// Requests with a bad or missing signature get Kinesis's errors, through
// the SDK's own signing.
func TestAuthSignatureErrors(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newAuthEnv(t, server.Config{Now: clock.Now}, admin, tokenP)
	ctx := ctxWithTimeout(t)

	_, err := e.as(admin).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams with the right key")

	_, err = e.withKey(admin.id, "not-the-secret-0123456", "").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")

	_, err = e.withKey("AKIAUNKNOWN000000001", "whatever-secret-0123", "").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")

	_, err = e.newClient(func(o *kinesis.Options) { o.Credentials = aws.AnonymousCredentials{}; o.RetryMaxAttempts = 1 }).
		ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "MissingAuthenticationTokenException", "Missing Authentication Token")

	_, err = e.as(admin, func(o *kinesis.Options) { o.Region = "eu-west-1" }).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. ")

	// Session tokens: a temporary key needs its token; a long-term key
	// takes none.
	_, err = e.as(tokenP).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams with the session token")
	_, err = e.withKey(tokenP.id, tokenP.secret, "another-token").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err = e.withKey(tokenP.id, tokenP.secret, "").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err = e.withKey(admin.id, admin.secret, "a-token").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")

	// A body or target changed after signing.
	body := `{"Limit":5}`
	if a := e.signedCall(admin, "ListStreams", body, time.Time{}, nil); a.status != http.StatusOK {
		t.Fatalf("raw signed ListStreams: %+v", a)
	}
	a := e.signedCall(admin, "ListStreams", body, time.Time{}, setBody(`{"Limit":6}`))
	if a.status != http.StatusBadRequest || a.code != "InvalidSignatureException" {
		t.Fatalf("tampered body: %+v", a)
	}
	a = e.signedCall(admin, "ListStreams", body, time.Time{}, func(r *http.Request) {
		r.Header.Set("X-Amz-Target", "Kinesis_20131202.DescribeLimits")
	})
	if a.status != http.StatusBadRequest || a.code != "InvalidSignatureException" {
		t.Fatalf("X-Amz-Target changed after signing: %+v", a)
	}

	// The server's clock 6 minutes ahead: a client that makes one attempt
	// sees the skew error; the SDK's retries correct their clock from the
	// response's Date header and succeed.
	clock.Advance(6 * time.Minute)
	_, err = e.as(admin).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantCode(t, err, "InvalidSignatureException")
	if !strings.Contains(err.Error(), "Signature expired: ") || !strings.Contains(err.Error(), " - 5 min.)") {
		t.Fatalf("skew error %v", err)
	}
	_, err = e.as(admin, func(o *kinesis.Options) { o.RetryMaxAttempts = 3 }).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams with the SDK's skew correction")
}

// The policy matrix: each call is decided by its action and resource as
// IAM's evaluation logic does.
func TestAuthPolicyMatrix(t *testing.T) {
	t.Parallel()
	noDelete := principal{name: "no-delete", id: "AKIANODELETE00000001", secret: "nodelete-secret-01234567",
		policies: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"kinesis:DeleteStream","Resource":"*"}]}`}}
	guarded := principal{name: "guarded", id: "AKIAGUARDED000000001", secret: "guarded-secret-012345678",
		policies: []string{allow(`"kinesis:*"`, `"*"`),
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kinesis:Delete*","Resource":"arn:aws:kinesis:us-east-1:111122223333:stream/prod-*"}]}`}}
	reader := principal{name: "reader", id: "AKIAREADER0000000001", secret: "reader-secret-0123456789",
		policies: []string{allow(`["KINESIS:get*","kinesis:Describe?tream*","kinesis:ListShards"]`, `"arn:aws:kinesis:us-east-1:111122223333:stream/orders*"`)}}
	offsite := principal{name: "offsite", id: "AKIAOFFSITE000000001", secret: "offsite-secret-012345678",
		policies: []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`}}
	scaler := principal{name: "scaler", id: "AKIASCALER0000000001", secret: "scaler-secret-0123456789",
		policies: []string{allow(`"kinesis:UpdateShardCount"`, `"arn:aws:kinesis:us-east-1:111122223333:stream/orders"`)}}
	e := newAuthEnv(t, server.Config{}, admin, producerP, nobody, noDelete, guarded, reader, offsite, scaler)
	ctx := ctxWithTimeout(t)
	ad := e.as(admin)
	for _, name := range []string{"orders", "payments", "prod-a", "dev-a"} {
		_, err := ad.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)})
		noErr(t, err, "CreateStream "+name)
	}
	orders := streamARNIn(acctA, "orders")
	put := func(c *kinesis.Client, stream string) error {
		_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("v")})
		return err
	}

	// An allow on one stream's ARN.
	pr := e.as(producerP)
	noErr(t, put(pr, "orders"), "producer PutRecord orders")
	_, err := pr.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("orders")})
	noErr(t, err, "producer ListShards orders")
	wantAPIError(t, put(pr, "payments"), "AccessDeniedException", denied(userARN(acctA, "orders-producer"), "PutRecord", streamARNIn(acctA, "payments")))
	_, err = pr.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "orders-producer"), "GetShardIterator", orders))
	_, err = pr.ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "orders-producer"), "ListStreams", "*"))

	// No policy: everything is denied, even what does not exist.
	wantAPIError(t, put(e.as(nobody), "missing"), "AccessDeniedException", denied(userARN(acctA, "nobody"), "PutRecord", streamARNIn(acctA, "missing")))

	// Wildcards, case-insensitive actions, '?'.
	rd := e.as(reader)
	it, err := rd.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	noErr(t, err, "reader GetShardIterator")
	recs, err := rd.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	noErr(t, err, "reader GetRecords")
	if len(recs.Records) != 1 {
		t.Fatalf("reader read %d records, want 1", len(recs.Records))
	}
	_, err = rd.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	noErr(t, err, "reader DescribeStreamSummary")
	wantAPIError(t, put(rd, "orders"), "AccessDeniedException", denied(userARN(acctA, "reader"), "PutRecord", orders))
	_, err = rd.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("payments")})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "reader"), "DescribeStreamSummary", streamARNIn(acctA, "payments")))

	// NotAction.
	nd := e.as(noDelete)
	noErr(t, put(nd, "payments"), "no-delete PutRecord")
	_, err = nd.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("dev-a")})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "no-delete"), "DeleteStream", streamARNIn(acctA, "dev-a")))

	// An explicit deny beats an allow.
	gd := e.as(guarded)
	_, err = gd.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("prod-a")})
	wantAPIError(t, err, "AccessDeniedException", "User: "+userARN(acctA, "guarded")+" is not authorized to perform: kinesis:DeleteStream on resource: "+
		streamARNIn(acctA, "prod-a")+" with an explicit deny in an identity-based policy")
	_, err = gd.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("dev-a")})
	noErr(t, err, "guarded DeleteStream dev-a")

	// A condition on aws:SourceIp: the tests call from 127.0.0.1.
	_, err = e.as(offsite).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "offsite"), "ListStreams", "*"))

	// UpdateShardCount is authorized against "*", not the stream's ARN.
	_, err = e.as(scaler).UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("orders"), TargetShardCount: aws.Int32(2), ScalingType: types.ScalingTypeUniformScaling})
	wantAPIError(t, err, "AccessDeniedException", denied(userARN(acctA, "scaler"), "UpdateShardCount", "*"))
}

// Streams belong to accounts, and a principal reaches another account's
// stream or consumer only through its resource policy.
func TestAuthAccountsAndResourcePolicies(t *testing.T) {
	t.Parallel()
	adminB := principal{name: "admin-b", account: acctB, id: "AKIAADMINB0000000001", secret: "adminb-secret-012345678",
		policies: []string{allow(`"kinesis:*"`, `"*"`)}}
	e := newAuthEnv(t, server.Config{}, admin, adminB, nobody)
	ctx := ctxWithTimeout(t)
	a, b := e.as(admin), e.as(adminB)
	for _, c := range []*kinesis.Client{a, b} {
		_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)})
		noErr(t, err, "CreateStream orders")
	}
	_, err := a.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("from-a")})
	noErr(t, err, "A PutRecord")
	for _, x := range []struct {
		c       *kinesis.Client
		account string
	}{{a, acctA}, {b, acctB}} {
		out, err := x.c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		noErr(t, err, "ListStreams")
		if len(out.StreamSummaries) != 1 || aws.ToString(out.StreamSummaries[0].StreamARN) != streamARNIn(x.account, "orders") {
			t.Fatalf("account %s lists %+v", x.account, out.StreamSummaries)
		}
	}
	aOrders := streamARNIn(acctA, "orders")
	sum, err := b.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	noErr(t, err, "B DescribeStreamSummary by name")
	if aws.ToString(sum.StreamDescriptionSummary.StreamARN) != streamARNIn(acctB, "orders") {
		t.Fatalf("B's orders is %s", aws.ToString(sum.StreamDescriptionSummary.StreamARN))
	}

	// B by A's ARN: its identity policy allows, no resource policy does.
	crossDenied := "User: " + userARN(acctB, "admin-b") + " is not authorized to perform: kinesis:DescribeStreamSummary on resource: " + aOrders +
		" because no resource-based policy allows the kinesis:DescribeStreamSummary action"
	_, err = b.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(aOrders)})
	wantAPIError(t, err, "AccessDeniedException", crossDenied)

	got, err := a.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: aws.String(aOrders)})
	noErr(t, err, "GetResourcePolicy without a policy")
	if aws.ToString(got.Policy) != "{}" {
		t.Fatalf("policy of a stream without one: %q", aws.ToString(got.Policy))
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"b-reads","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},` +
		`"Action":["kinesis:DescribeStreamSummary","kinesis:ListShards","kinesis:GetShardIterator","kinesis:GetRecords"],"Resource":"` + aOrders + `"},` +
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/nobody"},"Action":"kinesis:DescribeStreamSummary","Resource":"` + aOrders + `"}]}`
	_, err = b.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(aOrders), Policy: aws.String(policy)})
	wantCode(t, err, "AccessDeniedException") // B may not change A's policy
	_, err = a.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(aOrders), Policy: aws.String(`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`)})
	wantCode(t, err, "InvalidArgumentException") // a resource policy needs a Principal
	_, err = a.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(aOrders), Policy: aws.String(policy)})
	noErr(t, err, "PutResourcePolicy")
	got, err = a.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: aws.String(aOrders)})
	noErr(t, err, "GetResourcePolicy")
	if aws.ToString(got.Policy) != policy {
		t.Fatalf("GetResourcePolicy = %s", aws.ToString(got.Policy))
	}

	// Now B reads A's stream by its ARN, and the iterator it gets.
	_, err = b.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(aOrders)})
	noErr(t, err, "B DescribeStreamSummary of A's stream")
	it, err := b.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(aOrders), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	noErr(t, err, "B GetShardIterator of A's stream")
	recs, err := b.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	noErr(t, err, "B GetRecords of A's stream")
	if len(recs.Records) != 1 || string(recs.Records[0].Data) != "from-a" {
		t.Fatalf("B read %+v from A's stream", recs.Records)
	}
	_, err = b.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: aws.String(aOrders), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "AccessDeniedException") // the policy grants no writes
	// In its own account a resource policy alone suffices.
	_, err = e.as(nobody).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	noErr(t, err, "nobody DescribeStreamSummary through the resource policy")

	// Consumers have policies of their own.
	reg, err := a.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(aOrders), ConsumerName: aws.String("c")})
	noErr(t, err, "RegisterStreamConsumer")
	carn := aws.ToString(reg.Consumer.ConsumerARN)
	_, err = b.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(carn)})
	wantAPIError(t, err, "AccessDeniedException", "User: "+userARN(acctB, "admin-b")+" is not authorized to perform: kinesis:DescribeStreamConsumer on resource: "+carn+
		" because no resource-based policy allows the kinesis:DescribeStreamConsumer action")
	cpol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":["kinesis:DescribeStreamConsumer","kinesis:SubscribeToShard"],"Resource":"` + carn + `"}]}`
	_, err = a.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(carn), Policy: aws.String(cpol)})
	noErr(t, err, "PutResourcePolicy on the consumer")
	_, err = b.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(carn)})
	noErr(t, err, "B DescribeStreamConsumer through the consumer's policy")

	// The policies survive a restart (they are in the catalog).
	_, err = a.DeleteResourcePolicy(ctx, &kinesis.DeleteResourcePolicyInput{ResourceARN: aws.String(aOrders)})
	noErr(t, err, "DeleteResourcePolicy")
	_, err = b.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(aOrders)})
	wantAPIError(t, err, "AccessDeniedException", crossDenied)
	got, err = a.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: aws.String(carn)})
	noErr(t, err, "GetResourcePolicy of the consumer")
	if aws.ToString(got.Policy) != cpol {
		t.Fatalf("consumer policy = %s", aws.ToString(got.Policy))
	}
}

// A configuration that does not parse stops the server from starting, and
// on reload leaves the one in force; a good one rotates keys at once.
func TestAuthConfigReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := dir + "/bad.json"
	if err := os.WriteFile(bad, []byte(`{"principals":[{"name":"x","accessKeys":[{"accessKeyId":"AKIAXXXXXXXXXXXXXXXX","secretKey":"s"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(server.Config{Engine: nil, DataDir: t.TempDir(), AuthConfigFile: bad})
	if err == nil || !strings.Contains(err.Error(), `"secretKey"`) {
		t.Fatalf("New with an unknown field: %v", err)
	}

	e := newAuthEnv(t, server.Config{}, admin)
	ctx := ctxWithTimeout(t)
	_, err = e.as(admin).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams before the rotation")
	rotated := admin
	rotated.id, rotated.secret = "AKIAADMINROTATED0001", "rotated-secret-0123456789"
	writeAuthConfig(t, dirOf(e.srv.Config.AuthConfigFile), rotated)
	noErr(t, e.srv.ReloadAuth(), "ReloadAuth")
	_, err = e.as(admin).ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err = e.as(rotated).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams with the rotated key")

	broken := `{"principals":[{"name":"admin","accessKeys":[{"accessKeyId":"AKIAADMIN00000000001","secretAccessKey":"admin-secret-0123456789"}],` +
		`"policies":[{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"NumericEquals":{"aws:MultiFactorAuthAge":"1"}}}]}]}]}`
	if err := os.WriteFile(e.srv.Config.AuthConfigFile, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	err = e.srv.ReloadAuth()
	if err == nil || !strings.Contains(err.Error(), "NumericEquals") {
		t.Fatalf("ReloadAuth of an unsupported operator: %v", err)
	}
	if strings.Contains(err.Error(), "admin-secret") {
		t.Fatalf("the reload error shows a secret: %v", err)
	}
	_, err = e.as(rotated).ListStreams(ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams after a failed reload")
}

func dirOf(path string) string { return path[:strings.LastIndexByte(path, '/')] }

// A query-string (presigned) signature authenticates too.
func TestAuthPresigned(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, server.Config{}, admin)
	body := `{"Limit":3}`
	sum := sha256.Sum256([]byte(body))
	call := func(p principal) rawAnswer {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.Endpoint+"/", nil)
		noErr(t, err, "NewRequest")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		creds := aws.Credentials{AccessKeyID: p.id, SecretAccessKey: p.secret}
		url, signed, err := v4.NewSigner().PresignHTTP(e.ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now())
		noErr(t, err, "PresignHTTP")
		pre, err := http.NewRequestWithContext(e.ctx, http.MethodPost, url, strings.NewReader(body))
		noErr(t, err, "NewRequest")
		for k, vs := range signed {
			if !strings.EqualFold(k, "Host") {
				pre.Header[k] = vs
			}
		}
		pre.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(pre)
		noErr(t, err, "presigned call")
		defer func() { _ = resp.Body.Close() }()
		var eb struct {
			Type string `json:"__type"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return rawAnswer{status: resp.StatusCode, code: eb.Type}
	}
	if a := call(admin); a.status != http.StatusOK {
		t.Fatalf("presigned ListStreams: %+v", a)
	}
	wrong := admin
	wrong.secret = "not-the-admin-secret-0123"
	if a := call(wrong); a.code != "InvalidSignatureException" {
		t.Fatalf("presigned ListStreams with the wrong secret: %+v", a)
	}
}
