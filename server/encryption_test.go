package server_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// readAll reads every record of a one-shard stream from TRIM_HORIZON.
func readAll(t testing.TB, c *kinesis.Client, stream string) ([]types.Record, error) {
	t.Helper()
	ctx := ctxWithTimeout(t)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return nil, err
	}
	var out []types.Record
	iter := it.ShardIterator
	for {
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Records...)
		if len(res.Records) == 0 || aws.ToInt64(res.MillisBehindLatest) == 0 {
			return out, nil
		}
		iter = res.NextShardIterator
	}
}

func putOne(t testing.TB, c *kinesis.Client, stream, pk, data string) *kinesis.PutRecordOutput {
	t.Helper()
	out, err := c.PutRecord(ctxWithTimeout(t), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: []byte(data)})
	noErr(t, err, "PutRecord "+data)
	return out
}

// Records written before, while and after a stream is encrypted read back
// byte-exact, each with the EncryptionType it was written with, before and
// after a restart; the calls' errors are Kinesis's.
func TestStreamEncryption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRig(t, dir, server.Config{KMSDir: filepath.Join(dir, "kms")})
	ctx := ctxWithTimeout(t)
	_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	start := func(typ types.EncryptionType, key string) error {
		_, err := r.c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: typ, KeyId: aws.String(key)})
		return err
	}
	stop := func(key string) error {
		_, err := r.c.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(key)})
		return err
	}
	wantCode(t, stop("alias/aws/kinesis"), "InvalidArgumentException") // not encrypted
	wantCode(t, start(types.EncryptionTypeNone, "alias/aws/kinesis"), "InvalidArgumentException")
	wantCode(t, start(types.EncryptionTypeKms, "alias/nope"), "KMSNotFoundException")
	wantCode(t, start(types.EncryptionTypeKms, "arn:aws:kms:us-east-1:000000000000:key/0b1c2d3e-4f50-4617-8899-aabbccddeeff"), "KMSNotFoundException")

	if out := putOne(t, r.c, "s", "pk-before", "plain-before"); out.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("PutRecord before encryption: EncryptionType %q", out.EncryptionType)
	}
	noErr(t, start(types.EncryptionTypeKms, "alias/aws/kinesis"), "StartStreamEncryption")
	sum, err := r.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStreamSummary")
	if d := sum.StreamDescriptionSummary; d.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.KeyId) != "alias/aws/kinesis" {
		t.Fatalf("encrypted stream described as %q, key %q", d.EncryptionType, aws.ToString(d.KeyId))
	}
	if out := putOne(t, r.c, "s", "pk-during", "secret-during"); out.EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("PutRecord on an encrypted stream: EncryptionType %q", out.EncryptionType)
	}
	pr, err := r.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("pk-batch-1"), Data: []byte("secret-batch-1")}, {PartitionKey: aws.String("pk-batch-2"), Data: []byte{}}}})
	noErr(t, err, "PutRecords")
	if pr.EncryptionType != types.EncryptionTypeKms || aws.ToInt32(pr.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords on an encrypted stream: %+v", pr)
	}
	noErr(t, stop("alias/aws/kinesis"), "StopStreamEncryption")
	putOne(t, r.c, "s", "pk-after", "plain-after")

	want := []struct{ pk, data string }{{"pk-before", "plain-before"}, {"pk-during", "secret-during"}, {"pk-batch-1", "secret-batch-1"}, {"pk-batch-2", ""}, {"pk-after", "plain-after"}}
	wantType := []types.EncryptionType{"NONE", "KMS", "KMS", "KMS", "NONE"}
	check := func(when string) {
		t.Helper()
		recs, err := readAll(t, r.c, "s")
		noErr(t, err, "read "+when)
		if len(recs) != len(want) {
			t.Fatalf("%s: read %d records, want %d", when, len(recs), len(want))
		}
		for i, rec := range recs {
			if aws.ToString(rec.PartitionKey) != want[i].pk || string(rec.Data) != want[i].data || rec.EncryptionType != wantType[i] {
				t.Fatalf("%s: record %d = %q %q %q, want %q %q %q", when, i, aws.ToString(rec.PartitionKey), rec.Data, rec.EncryptionType, want[i].pk, want[i].data, wantType[i])
			}
		}
	}
	check("before the restart")
	r.restart()
	check("after the restart")
	sum, err = r.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStreamSummary")
	if d := sum.StreamDescriptionSummary; d.EncryptionType != types.EncryptionTypeNone || d.KeyId != nil {
		t.Fatalf("stopped stream described as %q, key %v", d.EncryptionType, d.KeyId)
	}
}

// kmsKeysFile writes a key service file with one key (id, alias, enabled)
// and returns its path.
func kmsKeysFile(t testing.TB, dir, state string, versions ...[]byte) string {
	t.Helper()
	var vs []string
	for _, v := range versions {
		vs = append(vs, `{"material":"`+base64.StdEncoding.EncodeToString(v)+`"}`)
	}
	doc := fmt.Sprintf(`{"keys":[{"id":"0b1c2d3e-4f50-4617-8899-aabbccddeeff","aliases":["alias/orders"],"state":%q,"versions":[%s]}]}`,
		state, strings.Join(vs, ","))
	path := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A disabled key stops reads and writes of its streams with the KMS error,
// and once enabled again everything is there; a rotated key keeps old
// records readable.
func TestStreamEncryptionKeyStates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1, v2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	keys := kmsKeysFile(t, dir, "Enabled", v1)
	r := startRig(t, dir, server.Config{KMSDir: filepath.Join(dir, "kms"), KMSKeysFile: keys})
	ctx := ctxWithTimeout(t)
	_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	_, err = r.c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms,
		KeyId: aws.String("arn:aws:kms:us-east-1:000000000000:alias/orders")})
	noErr(t, err, "StartStreamEncryption with an alias ARN")
	putOne(t, r.c, "s", "k1", "one")

	kmsKeysFile(t, dir, "Disabled", v1)
	noErr(t, r.srv.ReloadKeys(), "ReloadKeys")
	_, err = r.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantCode(t, err, "KMSDisabledException")
	_, err = r.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}})
	wantCode(t, err, "KMSDisabledException")
	_, err = readAll(t, r.c, "s")
	wantCode(t, err, "KMSDisabledException")
	_, err = r.c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/orders")})
	wantCode(t, err, "KMSDisabledException")

	kmsKeysFile(t, dir, "Enabled", v1, v2) // enabled again, and rotated
	noErr(t, r.srv.ReloadKeys(), "ReloadKeys")
	putOne(t, r.c, "s", "k2", "two")
	// A new data key (under the rotated key's newest version).
	_, err = r.c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/orders")})
	noErr(t, err, "StartStreamEncryption again")
	putOne(t, r.c, "s", "k3", "three")
	r.restart()
	recs, err := readAll(t, r.c, "s")
	noErr(t, err, "read after enabling, rotating and restarting")
	var got []string
	for _, rec := range recs {
		got = append(got, string(rec.Data))
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("read %v", got)
	}

	kmsKeysFile(t, dir, "PendingDeletion", v1, v2)
	noErr(t, r.srv.ReloadKeys(), "ReloadKeys")
	_, err = readAll(t, r.c, "s")
	wantCode(t, err, "KMSInvalidStateException")
}

// An encrypted stream's records, partition keys and data keys appear
// nowhere in the data directory: only their ciphertext and wrapped keys do.
func TestEncryptionAtRestLeavesNoPlaintext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRig(t, dir, server.Config{KMSDir: filepath.Join(dir, "kms"), EncryptAll: true})
	ctx := ctxWithTimeout(t)
	_, err := r.c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	const marker = "MARKER-7f3a9c-plaintext"
	var secrets [][]byte
	for i := range 50 {
		pk := fmt.Sprintf("partition-key-%04d-secret", i)
		putOne(t, r.c, "s", pk, fmt.Sprintf("%s record %d", marker, i))
		secrets = append(secrets, []byte(pk))
	}
	_, err = r.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(shardID(0)), NewStartingHashKey: aws.String("1000")})
	noErr(t, err, "SplitShard")
	_, err = r.c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("child-key-secret"), ExplicitHashKey: aws.String("5"), Data: []byte(marker + " child")})
	noErr(t, err, "PutRecord to a child shard")
	secrets = append(secrets, []byte("child-key-secret"), []byte(marker))
	dataKeys := r.srv.PlainDataKeys("s")
	if len(dataKeys) != 3 {
		t.Fatalf("%d data keys, want one per shard (3)", len(dataKeys))
	}
	secrets = append(secrets, dataKeys...)
	recs, err := readAll(t, r.c, "s")
	noErr(t, err, "read the parent shard")
	if len(recs) != 50 || !strings.HasPrefix(string(recs[49].Data), marker) {
		t.Fatalf("read %d records", len(recs))
	}
	r.stop()
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if bytes.Contains(raw, s) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(s))) {
				t.Errorf("%s holds %q in plain text", path, s)
			}
		}
		return nil
	})
	noErr(t, err, "walk the data directory")
	if files < 3 {
		t.Fatalf("only %d files in the data directory", files)
	}
}

// Fan-out subscribers get the decrypted records of an encrypted stream, each
// marked KMS; the encryption calls refuse a stream that is not ACTIVE and
// more changes than the daily limit.
func TestStreamEncryptionSubscribeAndLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, server.Config{DataDir: dir, SubscriptionKeepAlive: time.Hour, CreateDelay: time.Hour})
	_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("creating"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	_, err = e.nr.StartStreamEncryption(e.ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("creating"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")})
	wantCode(t, err, "ResourceInUseException")

	e2 := newEnv(t, server.Config{DataDir: t.TempDir(), SubscriptionKeepAlive: time.Hour, EncryptAll: true})
	e2.createStream("s", 1)
	c := e2.register("s", "c1")
	e2.put("s", "pk-0", []byte("secret-0"))
	s := e2.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
	e2.put("s", "pk-1", []byte("secret-1"))
	recs, _ := s.collect(2, 30*time.Second)
	for i, r := range recs {
		if string(r.Data) != fmt.Sprint("secret-", i) || aws.ToString(r.PartitionKey) != fmt.Sprint("pk-", i) || r.EncryptionType != types.EncryptionTypeKms {
			t.Fatalf("subscribed record %d = %q %q %q", i, r.Data, aws.ToString(r.PartitionKey), r.EncryptionType)
		}
	}
	// The daily limit: 25 starts and 25 stops (counted together here).
	for i := 0; i < 50; i++ {
		var err error
		if i%2 == 0 {
			_, err = e2.nr.StopStreamEncryption(e2.ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")})
		} else {
			_, err = e2.nr.StartStreamEncryption(e2.ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")})
		}
		noErr(t, err, fmt.Sprint("encryption change ", i))
	}
	_, err = e2.nr.StopStreamEncryption(e2.ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")})
	wantCode(t, err, "LimitExceededException")
}
