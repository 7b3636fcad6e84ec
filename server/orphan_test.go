package server_test

// The orphan-directory defect: a shard directory that no metadata names
// (left by a crash between creating a reshard's children and recording
// them) sits exactly where the next reshard creates its first child. The
// child must start empty: the old server reopened the directory and the
// orphan's records came back as the child's.
//
// This file depends only on servertest, the SDK and the standard library,
// so that it also runs unchanged against the pre-engine server (whose data
// directory has the same streams/<stream id>/shardId-%012d layout).

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestSplitDoesNotReviveOrphanShardDirectory(t *testing.T) {
	dir := t.TempDir()
	r := servertest.StartRestartable(t, server.Config{DataDir: dir, AutoSplitWindow: -1})
	c := r.Client()
	ctx := context.Background()
	const stream = "orphans"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	orphanPut(t, c, stream, "before-split", 20)
	// shardId-0 -> shardId-1 [0, 2^127-1] and shardId-2 [2^127, 2^128-1].
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	orphanPut(t, c, stream, "after-split", 20)
	r.Stop()

	// Plant an orphan where the next reshard's first child goes: a copy of
	// shardId-0's segment files (records) as shardId-3.
	entries, err := os.ReadDir(filepath.Join(dir, "streams"))
	if err != nil {
		t.Fatal(err)
	}
	var streamDir string
	for _, e := range entries {
		if e.IsDir() {
			if streamDir != "" {
				t.Fatalf("more than one stream directory under %s", filepath.Join(dir, "streams"))
			}
			streamDir = filepath.Join(dir, "streams", e.Name())
		}
	}
	if streamDir == "" {
		t.Fatalf("no stream directory under %s", filepath.Join(dir, "streams"))
	}
	src, dst := filepath.Join(streamDir, "shardId-000000000000"), filepath.Join(streamDir, "shardId-000000000003")
	files, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	copied := int64(0)
	for _, f := range files {
		if !f.Type().IsRegular() {
			continue
		}
		n, err := orphanCopyFile(filepath.Join(src, f.Name()), filepath.Join(dst, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		copied += n
	}
	if copied == 0 {
		t.Fatalf("shardId-0 holds no data to copy (%d files)", len(files))
	}

	r.Start()
	// shardId-1 -> shardId-3 and shardId-4.
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"shardId-000000000003", "shardId-000000000004"} {
		recs := orphanRead(t, c, stream, id)
		if len(recs) > 0 {
			t.Fatalf("new shard %s holds %d records (first %q): an orphan's records came back", id, len(recs), recs[0].Data)
		}
	}
	// And the stream's own records are all where they were.
	if n := len(orphanRead(t, c, stream, "shardId-000000000000")); n != 20 {
		t.Fatalf("shardId-0 holds %d records, want 20", n)
	}
	if n := len(orphanRead(t, c, stream, "shardId-000000000001")) + len(orphanRead(t, c, stream, "shardId-000000000002")); n != 20 {
		t.Fatalf("shardId-1 and shardId-2 hold %d records, want 20", n)
	}
}

func orphanPut(t *testing.T, c *kinesis.Client, stream, tag string, n int) {
	t.Helper()
	in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	for i := range n {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(tag + string(rune('a'+i))), Data: []byte(tag)})
	}
	out, err := c.PutRecords(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("%d records refused", aws.ToInt32(out.FailedRecordCount))
	}
}

func orphanRead(t *testing.T, c *kinesis.Client, stream, shard string) []types.Record {
	t.Helper()
	ctx := context.Background()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var all []types.Record
	for next, i := it.ShardIterator, 0; next != nil; i++ {
		if i > 1000 {
			t.Fatal("no end in sight")
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Records...)
		if len(out.Records) == 0 {
			break
		}
		next = out.NextShardIterator
	}
	return all
}

func orphanCopyFile(from, to string) (int64, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }() // read only
	out, err := os.Create(to)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
