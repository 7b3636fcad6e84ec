package server_test

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// shardOfKey returns the shard whose hash key range holds MD5(pk), computed
// independently of the server.
func shardOfKey(t *testing.T, shards []types.Shard, pk string) string {
	t.Helper()
	sum := md5.Sum([]byte(pk))
	return shardOfHash(t, shards, new(big.Int).SetBytes(sum[:]))
}

func shardOfHash(t *testing.T, shards []types.Shard, h *big.Int) string {
	t.Helper()
	for _, sh := range shards {
		if bigOf(*sh.HashKeyRange.StartingHashKey).Cmp(h) <= 0 && h.Cmp(bigOf(*sh.HashKeyRange.EndingHashKey)) <= 0 {
			return *sh.ShardId
		}
	}
	t.Fatalf("no shard holds hash key %s", h)
	return ""
}

func TestPutRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 4)
	shards := e.shards("s")

	t.Run("PartitionKeyRouting", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			pk := fmt.Sprintf("key-%d", i)
			out := e.put("s", pk, []byte(pk))
			if want := shardOfKey(t, shards, pk); aws.ToString(out.ShardId) != want {
				t.Fatalf("%s went to %s, want %s", pk, aws.ToString(out.ShardId), want)
			}
			if out.EncryptionType != types.EncryptionTypeNone || out.SequenceNumber == nil {
				t.Fatalf("PutRecord answered %+v", out)
			}
		}
	})

	t.Run("ExplicitHashKey", func(t *testing.T) {
		for _, sh := range shards {
			for _, k := range []string{*sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey} {
				// The partition key would hash elsewhere; the explicit key wins.
				out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("key-0"), ExplicitHashKey: aws.String(k), Data: []byte("ehk")})
				noErr(t, err, "PutRecord")
				if aws.ToString(out.ShardId) != *sh.ShardId {
					t.Fatalf("hash key %s went to %s, want %s", k, aws.ToString(out.ShardId), *sh.ShardId)
				}
			}
		}
		_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x"),
			ExplicitHashKey: aws.String("340282366920938463463374607431768211456")}) // 2^128
		wantErr[types.InvalidArgumentException](t, err)
		for _, bad := range []string{"", "abc", "01", "-1", "1.5", " 1", "1" + strings.Repeat("0", 39)} {
			_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String(bad)})
			wantErr[types.ValidationException](t, err)
		}
	})

	t.Run("PartitionKeyLength", func(t *testing.T) {
		for _, pk := range []string{"a", bigString(256), strings.Repeat("日", 256), strings.Repeat("🦈", 256)} {
			out := e.put("s", pk, []byte("pk"))
			recs := e.readShard("s", aws.ToString(out.ShardId))
			last := recs[len(recs)-1]
			if aws.ToString(last.PartitionKey) != pk || aws.ToString(last.SequenceNumber) != aws.ToString(out.SequenceNumber) {
				t.Fatalf("read back key %q (%d runes)", aws.ToString(last.PartitionKey), len([]rune(aws.ToString(last.PartitionKey))))
			}
		}
		// Keys that JSON escapes, or that a careless encoder would mangle.
		for _, pk := range []string{`"quoted"`, `back\slash`, "<a href='x'>&amp;</a>", "tab\tnew\nline", "nul\x00byte", "\u2028\u2029", "e\u0301 vs \u00e9"} {
			out := e.put("s", pk, []byte(pk))
			if want := shardOfKey(t, shards, pk); aws.ToString(out.ShardId) != want {
				t.Fatalf("%q went to %s, want %s", pk, aws.ToString(out.ShardId), want)
			}
			recs := e.readShard("s", aws.ToString(out.ShardId))
			last := recs[len(recs)-1]
			if aws.ToString(last.PartitionKey) != pk || string(last.Data) != pk {
				t.Fatalf("put key %q, read back %q", pk, aws.ToString(last.PartitionKey))
			}
		}
		for _, pk := range []string{"", bigString(257), strings.Repeat("日", 257)} {
			_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(pk), Data: []byte("x")})
			wantErr[types.ValidationException](t, err)
		}
		// Without the AUTO strategy the partition key is required.
		_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), Data: []byte("x")})
		wantErr[types.ValidationException](t, err)
	})

	t.Run("DataRequired", func(t *testing.T) {
		// The SDK refuses to send a record without Data.
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecord", `{"StreamName":"s","PartitionKey":"k"}`), "ValidationException")
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecord", `{"StreamName":"s","PartitionKey":"k","Data":null}`), "ValidationException")
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecord", `{"StreamName":"s","PartitionKey":"k","Data":"not base64!"}`), "SerializationException")
	})

	t.Run("SequenceNumberForOrdering", func(t *testing.T) {
		first := e.put("s", "ordered", []byte("1"))
		out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("ordered"), Data: []byte("2"),
			SequenceNumberForOrdering: first.SequenceNumber})
		noErr(t, err, "PutRecord with SequenceNumberForOrdering")
		if !seqLess(*first.SequenceNumber, *out.SequenceNumber) {
			t.Fatalf("sequence number %s not greater than %s", *out.SequenceNumber, *first.SequenceNumber)
		}
		for _, bad := range []string{"1", "12345678901234567890", "999999999999999999999999999999999999999"} {
			_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x"), SequenceNumberForOrdering: aws.String(bad)})
			wantErr[types.InvalidArgumentException](t, err)
		}
		for _, bad := range []string{"abc", "01", "-5"} {
			_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x"), SequenceNumberForOrdering: aws.String(bad)})
			wantErr[types.ValidationException](t, err)
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		before := e.readAll("s")
		_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("dry"), DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
		// A dry run of an invalid request reports the real error.
		_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("dry"), DryRun: aws.Bool(true)})
		wantErr[types.ResourceNotFoundException](t, err)
		after := e.readAll("s")
		for id := range before {
			if len(before[id]) != len(after[id]) {
				t.Fatalf("dry run wrote to %s: %d -> %d records", id, len(before[id]), len(after[id]))
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")})
		wantErr[types.ResourceNotFoundException](t, err)
		_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{PartitionKey: aws.String("k"), Data: []byte("x")})
		wantErr[types.InvalidArgumentException](t, err)
	})
}

func TestPutRecordSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	const max = 1024 * 1024
	pk := "key"

	// Data plus partition key exactly at the limit is accepted, and read back whole.
	atLimit := bytes.Repeat([]byte{0xAB}, max-len(pk))
	out := e.put("s", pk, atLimit)
	recs := e.readShard("s", aws.ToString(out.ShardId))
	if len(recs) != 1 || !bytes.Equal(recs[0].Data, atLimit) {
		t.Fatalf("read %d records back", len(recs))
	}
	// One byte over is refused.
	_, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(pk), Data: append(atLimit, 0)})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String(pk), Data: []byte("small")},
		{PartitionKey: aws.String(pk), Data: append(atLimit, 0)},
	}})
	wantErr[types.ValidationException](t, err)
	// A multi-byte partition key counts in bytes: 2 runes, 6 bytes.
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("日本"), Data: atLimit})
	wantErr[types.ValidationException](t, err)
	// No payload may exceed the model's 10 MiB, whatever the stream allows.
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(pk), Data: make([]byte, 10<<20+1)})
	wantErr[types.ValidationException](t, err)

	// Raising the stream's maximum record size lets a 1.5 MiB record in.
	_, err = e.c.UpdateMaxRecordSize(e.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn("s")), MaxRecordSizeInKiB: aws.Int32(2048)})
	noErr(t, err, "UpdateMaxRecordSize")
	if got := aws.ToInt32(e.summary("s").MaxRecordSizeInKiB); got != 2048 {
		t.Fatalf("MaxRecordSizeInKiB %d after update", got)
	}
	big := make([]byte, 3<<19)
	for i := range big {
		big[i] = byte(i * 7)
	}
	out = e.put("s", pk, big)
	recs = e.readShard("s", aws.ToString(out.ShardId))
	if len(recs) != 2 || !bytes.Equal(recs[1].Data, big) || aws.ToString(recs[1].SequenceNumber) != aws.ToString(out.SequenceNumber) {
		t.Fatalf("1.5 MiB record not read back (%d records)", len(recs))
	}
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(pk), Data: make([]byte, 2048*1024)})
	wantErr[types.ValidationException](t, err)
}

func TestPutRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 4)
	shards := e.shards("s")

	entries := func(n int) []types.PutRecordsRequestEntry {
		r := make([]types.PutRecordsRequestEntry, n)
		for i := range r {
			r[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte{byte(i)}}
		}
		return r
	}

	t.Run("Max500", func(t *testing.T) {
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries(500)})
		noErr(t, err, "PutRecords 500")
		if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != 500 || out.EncryptionType != types.EncryptionTypeNone {
			t.Fatalf("FailedRecordCount %d, %d results, encryption %q", aws.ToInt32(out.FailedRecordCount), len(out.Records), out.EncryptionType)
		}
		for i, r := range out.Records {
			if want := shardOfKey(t, shards, fmt.Sprint("k", i)); aws.ToString(r.ShardId) != want || r.SequenceNumber == nil || r.ErrorCode != nil {
				t.Fatalf("result %d: %+v, want shard %s", i, r, want)
			}
		}
		_, err = e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries(501)})
		wantErr[types.ValidationException](t, err)
	})

	t.Run("Empty", func(t *testing.T) {
		_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{}})
		wantErr[types.ValidationException](t, err)
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecords", `{"StreamName":"s","Records":[]}`), "ValidationException")
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecords", `{"StreamName":"s"}`), "ValidationException")
		wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecords", `{"StreamName":"s","Records":[{"PartitionKey":"k"}]}`), "ValidationException")
	})

	t.Run("TotalSizeOver10MiB", func(t *testing.T) {
		recs := make([]types.PutRecordsRequestEntry, 11)
		data := make([]byte, 1<<20-16)
		for i := range recs {
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: data}
		}
		_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		wantErr[types.InvalidArgumentException](t, err)
	})

	t.Run("PerRecordValidation", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			bad  types.PutRecordsRequestEntry
		}{
			{"EmptyPartitionKey", types.PutRecordsRequestEntry{PartitionKey: aws.String(""), Data: []byte("x")}},
			{"LongPartitionKey", types.PutRecordsRequestEntry{PartitionKey: aws.String(bigString(257)), Data: []byte("x")}},
			{"NoPartitionKey", types.PutRecordsRequestEntry{Data: []byte("x")}},
			{"BadExplicitHashKey", types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("x1"), Data: []byte("x")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				recs := append(entries(3), tc.bad)
				_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
				wantErr[types.ValidationException](t, err)
			})
		}
		recs := append(entries(3), types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456"), Data: []byte("x")})
		_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		wantErr[types.InvalidArgumentException](t, err)
	})

	t.Run("ResultsAlignedWithRequest", func(t *testing.T) {
		order := []int{3, 0, 2, 1, 1, 3, 0, 0, 2, 3, 1, 2}
		recs := make([]types.PutRecordsRequestEntry, len(order))
		for i, sh := range order {
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("same"), ExplicitHashKey: shards[sh].HashKeyRange.StartingHashKey, Data: []byte(fmt.Sprint("aligned-", i))}
		}
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		noErr(t, err, "PutRecords")
		bySeq := map[string]string{}
		for _, recs := range e.readAll("s") {
			for _, r := range recs {
				bySeq[aws.ToString(r.SequenceNumber)] = string(r.Data)
			}
		}
		for i, r := range out.Records {
			if aws.ToString(r.ShardId) != shardID(order[i]) {
				t.Fatalf("result %d in %s, want %s", i, aws.ToString(r.ShardId), shardID(order[i]))
			}
			if got := bySeq[aws.ToString(r.SequenceNumber)]; got != fmt.Sprint("aligned-", i) {
				t.Fatalf("result %d's sequence number holds %q", i, got)
			}
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		before := e.readAll("s")
		_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries(10), DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
		after := e.readAll("s")
		for id := range before {
			if len(before[id]) != len(after[id]) {
				t.Fatalf("dry run wrote to %s", id)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("nope"), Records: entries(1)})
		wantErr[types.ResourceNotFoundException](t, err)
	})
}

// TestPutRecordsOrderingAndPayloads writes many records per partition key
// over several calls and reads them back: per key in put order, with exact
// binary payloads, sequence numbers strictly increasing per shard and unique
// in the stream.
func TestPutRecordsOrderingAndPayloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 4)
	shards := e.shards("s")
	rng := rand.New(rand.NewPCG(7, 11))

	type put struct {
		pk   string
		data []byte
	}
	want := map[string][][]byte{}
	bySeq := map[string]put{}
	for call := 0; call < 6; call++ {
		recs := make([]types.PutRecordsRequestEntry, 150)
		for i := range recs {
			pk := fmt.Sprintf("key-%02d", rng.IntN(25))
			var data []byte
			switch i % 10 {
			case 0:
				data = []byte{}
			case 1:
				data = []byte{0x00}
			case 2:
				data = []byte{0xFF}
			case 3:
				data = []byte{0x00, 0xFF, 0x00, 0xFF, '"', '\\', '\n'}
			default:
				data = make([]byte, 1+rng.IntN(700))
				for j := range data {
					data[j] = byte(rng.UintN(256))
				}
			}
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: data}
			want[pk] = append(want[pk], data)
		}
		out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
		noErr(t, err, "PutRecords")
		if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != len(recs) {
			t.Fatalf("call %d: %d failed, %d results", call, aws.ToInt32(out.FailedRecordCount), len(out.Records))
		}
		for i, r := range out.Records {
			pk := *recs[i].PartitionKey
			if want := shardOfKey(t, shards, pk); aws.ToString(r.ShardId) != want {
				t.Fatalf("%s in %s, want %s", pk, aws.ToString(r.ShardId), want)
			}
			seq := aws.ToString(r.SequenceNumber)
			if _, dup := bySeq[seq]; dup {
				t.Fatalf("sequence number %s handed out twice", seq)
			}
			bySeq[seq] = put{pk, recs[i].Data}
		}
	}

	got := map[string][][]byte{}
	seen := map[string]bool{}
	total := 0
	for id, recs := range e.readAll("s") {
		prev := ""
		for _, r := range recs {
			seq := aws.ToString(r.SequenceNumber)
			if prev != "" && !seqLess(prev, seq) {
				t.Fatalf("%s: sequence number %s after %s", id, seq, prev)
			}
			prev = seq
			if seen[seq] {
				t.Fatalf("sequence number %s read twice", seq)
			}
			seen[seq] = true
			p, ok := bySeq[seq]
			pk := aws.ToString(r.PartitionKey)
			if !ok || p.pk != pk || !bytes.Equal(p.data, r.Data) {
				t.Fatalf("%s: record %s (%s, %x) was not put so", id, seq, pk, r.Data)
			}
			if r.ApproximateArrivalTimestamp == nil || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
				t.Fatalf("arrival timestamp %v", r.ApproximateArrivalTimestamp)
			}
			got[pk] = append(got[pk], r.Data)
			total++
		}
	}
	if total != len(bySeq) {
		t.Fatalf("read %d records, put %d", total, len(bySeq))
	}
	for pk, w := range want {
		g := got[pk]
		if len(g) != len(w) {
			t.Fatalf("%s: read %d records, put %d", pk, len(g), len(w))
		}
		for i := range w {
			if !bytes.Equal(g[i], w[i]) {
				t.Fatalf("%s: record %d is %x, put %x", pk, i, g[i], w[i])
			}
		}
	}
}

func TestPutThrottling(t *testing.T) {
	t.Parallel()
	// The clock stands still, so no bucket refills until the test moves it.
	clock := newClock()
	e := newEnv(t, server.Config{EnforceThroughput: true, Now: clock.Now})
	e.createStream("s", 2)
	shards := e.shards("s")
	to := func(shard int, n int, tag string) []types.PutRecordsRequestEntry {
		r := make([]types.PutRecordsRequestEntry, n)
		for i := range r {
			r[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: shards[shard].HashKeyRange.StartingHashKey, Data: []byte(fmt.Sprintf("%s-%d", tag, i))}
		}
		return r
	}

	// Dry runs take no capacity: after these, the shard still takes 1000
	// records and 5 reads in this instant.
	for i := 0; i < 3; i++ {
		_, err := e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: to(0, 500, "dry"), DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
	}
	_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey, Data: []byte("dry"), DryRun: aws.Bool(true)})
	wantErr[types.DryRunOperationException](t, err)
	dryIt := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	for i := 0; i < 6; i++ {
		_, err := e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(dryIt), DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
	}

	accepted := map[string]bool{}
	var out *kinesis.PutRecordsOutput
	for call := 0; call < 2; call++ {
		out, err = e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: to(0, 400, fmt.Sprint("c", call))})
		noErr(t, err, "PutRecords")
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("call %d: %d throttled within the first 1000 records", call, aws.ToInt32(out.FailedRecordCount))
		}
		for _, r := range out.Records {
			accepted[*r.SequenceNumber] = true
		}
	}
	// The third call crosses 1000 records/s on shard 0; shard 1 is unaffected.
	recs := append(to(0, 400, "c2"), to(1, 10, "other")...)
	out, err = e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
	noErr(t, err, "PutRecords")
	failed := 0
	for i, r := range out.Records {
		switch {
		case r.ErrorCode != nil:
			failed++
			if *r.ErrorCode != "ProvisionedThroughputExceededException" || aws.ToString(r.ErrorMessage) == "" || r.SequenceNumber != nil || r.ShardId != nil {
				t.Fatalf("result %d: %+v", i, r)
			}
			if i < 200 || i >= 400 {
				t.Fatalf("result %d throttled; only records 200..399 exceed the limit", i)
			}
		case i >= 400:
			if aws.ToString(r.ShardId) != shardID(1) {
				t.Fatalf("result %d in %s", i, aws.ToString(r.ShardId))
			}
		default:
			accepted[*r.SequenceNumber] = true
		}
	}
	if failed != 200 || aws.ToInt32(out.FailedRecordCount) != int32(failed) {
		t.Fatalf("FailedRecordCount %d, %d failed entries; want 200", aws.ToInt32(out.FailedRecordCount), failed)
	}
	_, err = e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey, Data: []byte("x")})
	wantErr[types.ProvisionedThroughputExceededException](t, err)
	// A call whose every record is throttled is still an answer per record.
	out, err = e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: to(0, 3, "all")})
	noErr(t, err, "PutRecords, all throttled")
	if aws.ToInt32(out.FailedRecordCount) != 3 || len(out.Records) != 3 || aws.ToString(out.Records[2].ErrorCode) != "ProvisionedThroughputExceededException" {
		t.Fatalf("all-throttled PutRecords: FailedRecordCount %d, records %+v", aws.ToInt32(out.FailedRecordCount), out.Records)
	}

	// Every accepted record, and no other, is readable.
	read := e.readShard("s", shardID(0))
	if len(read) != 1000 || len(accepted) != 1000 {
		t.Fatalf("read %d records, %d accepted", len(read), len(accepted))
	}
	for _, r := range read {
		if !accepted[*r.SequenceNumber] {
			t.Fatalf("read %s, which was not accepted", *r.SequenceNumber)
		}
	}

	// The byte rate: 1 MiB/s. Shard 1 has taken 10 small records.
	_, err = e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: shards[1].HashKeyRange.StartingHashKey, Data: make([]byte, 600<<10)})
	noErr(t, err, "PutRecord 600 KiB")
	_, err = e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: shards[1].HashKeyRange.StartingHashKey, Data: make([]byte, 600<<10)})
	wantErr[types.ProvisionedThroughputExceededException](t, err)

	// Reads: 5 GetRecords calls per second per shard.
	it := e.iterator("s", shardID(1), types.ShardIteratorTypeLatest, nil, nil)
	throttled := false
	for i := 0; i < 6 && !throttled; i++ {
		_, err := e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		if err != nil {
			wantErr[types.ProvisionedThroughputExceededException](t, err)
			throttled = true
		}
	}
	if !throttled {
		t.Fatal("6 GetRecords calls in the same instant were not throttled")
	}

	// A second later the buckets are full again.
	clock.Advance(time.Second)
	_, err = e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: shards[0].HashKeyRange.StartingHashKey, Data: []byte("x")})
	noErr(t, err, "PutRecord after a second")
	_, err = e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
	noErr(t, err, "GetRecords after a second")
}

// TestConcurrentPuts writes from many goroutines at once: every record gets
// a distinct sequence number, and a shard reads back in sequence order.
func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 3)
	const writers, each = 8, 40
	type result struct{ seq, data string }
	results := make(chan result, writers*each)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				data := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%2 == 0 {
					var out *kinesis.PutRecordOutput
					out, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint("w", w)), Data: []byte(data)})
					if err == nil {
						results <- result{*out.SequenceNumber, data}
					}
				} else {
					var out *kinesis.PutRecordsOutput
					out, err = e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String(fmt.Sprint("w", w)), Data: []byte(data)}}})
					if err == nil {
						results <- result{*out.Records[0].SequenceNumber, data}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent put: %v", err)
	}
	bySeq := map[string]string{}
	for r := range results {
		if _, dup := bySeq[r.seq]; dup {
			t.Fatalf("sequence number %s handed out twice", r.seq)
		}
		bySeq[r.seq] = r.data
	}
	// Per writer (one key each), records read back in the order written.
	next := map[string]int{}
	total := 0
	for id, recs := range e.readAll("s") {
		for i, r := range recs {
			if i > 0 && !seqLess(*recs[i-1].SequenceNumber, *r.SequenceNumber) {
				t.Fatalf("%s: sequence numbers out of order", id)
			}
			if bySeq[*r.SequenceNumber] != string(r.Data) {
				t.Fatalf("%s: %s holds %q, put said %q", id, *r.SequenceNumber, r.Data, bySeq[*r.SequenceNumber])
			}
			var w, n int
			if _, err := fmt.Sscanf(string(r.Data), "w%d-%d", &w, &n); err != nil {
				t.Fatalf("%s: record %q: %v", id, r.Data, err)
			}
			key := fmt.Sprint("w", w)
			if n != next[key] {
				t.Fatalf("writer %d: record %d read where %d was expected", w, n, next[key])
			}
			next[key]++
			total++
		}
	}
	if total != writers*each {
		t.Fatalf("read %d records, wrote %d", total, writers*each)
	}
}
