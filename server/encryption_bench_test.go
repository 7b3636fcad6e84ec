package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/internal/testutil/benchpair"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// BenchmarkEncryptionPaired measures PutRecords of 100 records of 1 KiB,
// and GetRecords reading them back, on an encrypted and an unencrypted
// stream of one server, alternating calls between the two so that the
// machine's drifting load falls on both alike. It reports each side's time
// per call and the cost of encryption as a share (put-cost-%, get-cost-%),
// on the memory engine (the CPU cost alone) and on the default file engine
// (fsync before every acknowledgement). Run:
//
//	go test -run '^$' -bench BenchmarkEncryptionPaired -benchtime 2000x ./server/
func BenchmarkEncryptionPaired(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		eng := memengine.New(memengine.Config{})
		b.Cleanup(func() { _ = eng.Close() })
		benchEncryption(b, server.Config{Engine: eng, KMSDir: filepath.Join(b.TempDir(), "kms")})
	})
	b.Run("file", func(b *testing.B) { benchEncryption(b, server.Config{DataDir: b.TempDir()}) })
}

func benchEncryption(b *testing.B, cfg server.Config) {
	cfg.Logger = zap.NewNop()
	srv := servertest.Start(b, cfg)
	c := srv.Client()
	ctx := context.Background()
	data := make([]byte, 1024)
	puts := map[string]*kinesis.PutRecordsInput{}
	for _, name := range []string{"plain", "encrypted"} {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			b.Fatal(err)
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String(name)}
		for i := range 100 {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: data})
		}
		puts[name] = in
	}
	if _, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("encrypted"),
		EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		b.Fatal(err)
	}
	iters := map[string]*string{}
	for name := range puts {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			b.Fatal(err)
		}
		iters[name] = it.ShardIterator
	}
	names := [2]string{"plain", "encrypted"}
	var putTime, getTime [2]time.Duration
	benchpair.Alternate(b, func(side int) {
		name := names[side]
		t0 := time.Now()
		if _, err := c.PutRecords(ctx, puts[name]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iters[name]})
		if err != nil {
			b.Fatal(err)
		}
		getTime[side] += time.Since(t1)
		putTime[side] += t1.Sub(t0)
		if len(out.Records) != 100 || (side == 1) != (out.Records[0].EncryptionType == types.EncryptionTypeKms) {
			b.Fatalf("%s: read %d records", name, len(out.Records))
		}
		iters[name] = out.NextShardIterator
	})
	benchpair.Report(b, putTime, "put-cost-%", "put-plain-us", "put-encrypted-us")
	benchpair.Report(b, getTime, "get-cost-%", "get-plain-us", "get-encrypted-us")
}
