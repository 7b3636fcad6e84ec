package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func datas(recs []types.Record) string {
	s := make([]string, len(recs))
	for i, r := range recs {
		s[i] = string(r.Data)
	}
	return strings.Join(s, ",")
}

// putAt writes one record to shard 0 of s (by explicit hash key 0) and
// returns its sequence number.
func (e *env) putAt(name, data string) string {
	e.t.Helper()
	out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte(data)})
	if err != nil {
		e.t.Fatalf("PutRecord: %v", err)
	}
	if aws.ToString(out.ShardId) != shardID(0) {
		e.t.Fatalf("hash key 0 went to %s", aws.ToString(out.ShardId))
	}
	return aws.ToString(out.SequenceNumber)
}

func TestGetShardIterator(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 2)

	// r0..r4 arrive 10 s apart; then a batch b0..b2 in one PutRecords.
	t0 := clock.Now()
	var seqs []string
	for i := 0; i < 5; i++ {
		seqs = append(seqs, e.putAt("s", fmt.Sprint("r", i)))
		clock.Advance(10 * time.Second)
	}
	batch := make([]types.PutRecordsRequestEntry, 3)
	for i := range batch {
		batch[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte(fmt.Sprint("b", i))}
	}
	pr, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: batch})
	noErr(t, err, "PutRecords")
	for _, r := range pr.Records {
		seqs = append(seqs, *r.SequenceNumber)
	}
	other := func() string {
		out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(maxHashKey.String()), Data: []byte("other")})
		noErr(t, err, "PutRecord")
		return *out.SequenceNumber
	}()
	const all = "r0,r1,r2,r3,r4,b0,b1,b2"

	read := func(typ types.ShardIteratorType, seq *string, ts *time.Time) string {
		t.Helper()
		return datas(e.drain(e.iterator("s", shardID(0), typ, seq, ts), 0))
	}

	t.Run("TrimHorizon", func(t *testing.T) {
		recs := e.drain(e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil), 0)
		if datas(recs) != all {
			t.Fatalf("read %s", datas(recs))
		}
		for i, r := range recs {
			if aws.ToString(r.SequenceNumber) != seqs[i] || aws.ToString(r.PartitionKey) != "k" {
				t.Fatalf("record %d: %s %s", i, aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey))
			}
			wantTS := t0.Add(time.Duration(min(i, 5)) * 10 * time.Second)
			if r.ApproximateArrivalTimestamp == nil || !r.ApproximateArrivalTimestamp.Equal(wantTS) {
				t.Fatalf("record %d arrived %v, want %v", i, r.ApproximateArrivalTimestamp, wantTS)
			}
		}
	})

	t.Run("Latest", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeLatest, nil, nil)
		e.putAt("s", "later")
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		noErr(t, err, "GetRecords")
		if datas(out.Records) != "later" {
			t.Fatalf("LATEST read %s", datas(out.Records))
		}
	})

	t.Run("AtSequenceNumber", func(t *testing.T) {
		for i, want := range []string{"r2,r3,r4,b0,b1,b2,later", "b1,b2,later"} {
			seq := []string{seqs[2], seqs[6]}[i]
			if got := read(types.ShardIteratorTypeAtSequenceNumber, aws.String(seq), nil); got != want {
				t.Fatalf("AT %s: %s, want %s", seq, got, want)
			}
		}
	})

	t.Run("AfterSequenceNumber", func(t *testing.T) {
		for seq, want := range map[string]string{
			seqs[2]: "r3,r4,b0,b1,b2,later",
			seqs[5]: "b1,b2,later", // within a batch
			seqs[7]: "later",       // the last record of a batch
		} {
			if got := read(types.ShardIteratorTypeAfterSequenceNumber, aws.String(seq), nil); got != want {
				t.Fatalf("AFTER %s: %s, want %s", seq, got, want)
			}
		}
	})

	t.Run("AtTimestamp", func(t *testing.T) {
		for _, tc := range []struct {
			at   time.Time
			want string
		}{
			{t0.Add(-time.Hour), all + ",later"},
			{t0, all + ",later"},
			{t0.Add(time.Millisecond), "r1,r2,r3,r4,b0,b1,b2,later"},
			{t0.Add(20 * time.Second), "r2,r3,r4,b0,b1,b2,later"},
			{t0.Add(35 * time.Second), "r4,b0,b1,b2,later"},
			{t0.Add(time.Hour), ""},
		} {
			at := tc.at
			if got := read(types.ShardIteratorTypeAtTimestamp, nil, &at); got != tc.want {
				t.Fatalf("AT_TIMESTAMP t0%+v: %s, want %s", tc.at.Sub(t0), got, tc.want)
			}
		}
	})

	t.Run("InvalidArgument", func(t *testing.T) {
		ts := t0
		for _, tc := range []struct {
			name string
			in   kinesis.GetShardIteratorInput
		}{
			{"AtSeqWithoutSeq", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber}},
			{"AfterSeqWithoutSeq", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber}},
			{"AtTimestampWithoutTimestamp", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp}},
			{"SeqWithTrimHorizon", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon, StartingSequenceNumber: aws.String(seqs[0])}},
			{"TimestampWithLatest", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest, Timestamp: &ts}},
			{"SeqOfAnotherShard", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(other)}},
			{"AfterSeqOfAnotherShard", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(other)}},
			{"SeqNotIssued", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("12345")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				in.StreamName = aws.String("s")
				in.ShardId = aws.String(shardID(0))
				_, err := e.c.GetShardIterator(e.ctx, &in)
				wantErr[types.InvalidArgumentException](t, err)
			})
		}
		// Neither StreamName nor StreamARN.
		_, err := e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeLatest})
		wantErr[types.InvalidArgumentException](t, err)
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shardID(2)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		wantErr[types.ResourceNotFoundException](t, err)
		_, err = e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("nope"), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		wantErr[types.ResourceNotFoundException](t, err)
	})

	t.Run("Validation", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   kinesis.GetShardIteratorInput
		}{
			{"BadType", kinesis.GetShardIteratorInput{ShardId: aws.String(shardID(0)), ShardIteratorType: "AT_THE_END"}},
			{"BadShardID", kinesis.GetShardIteratorInput{ShardId: aws.String("shard 0"), ShardIteratorType: types.ShardIteratorTypeLatest}},
			{"BadSeqPattern", kinesis.GetShardIteratorInput{ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("seq")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				in.StreamName = aws.String("s")
				_, err := e.c.GetShardIterator(e.ctx, &in)
				wantErr[types.ValidationException](t, err)
			})
		}
		for _, body := range []string{
			`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"BOGUS"}`,
			`{"StreamName":"s","ShardId":"shardId-000000000000"}`,
			`{"StreamName":"s","ShardIteratorType":"LATEST"}`,
		} {
			wantRawError(t, rawCall(t, e.srv.Endpoint, "GetShardIterator", body), "ValidationException")
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		_, err := e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shardID(0)),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon, DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
		_, err = e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shardID(9)),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon, DryRun: aws.Bool(true)})
		wantErr[types.ResourceNotFoundException](t, err)
	})
}

func TestGetRecords(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 1)
	for i := 0; i < 5; i++ {
		e.putAt("s", fmt.Sprint("r", i))
		clock.Advance(10 * time.Second)
	}

	t.Run("LimitPagingAndMillisBehindLatest", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		for _, want := range []struct {
			data   string
			behind int64
		}{{"r0,r1", 30000}, {"r2,r3", 10000}, {"r4", 0}, {"", 0}} {
			out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(2)})
			noErr(t, err, "GetRecords")
			if datas(out.Records) != want.data || aws.ToInt64(out.MillisBehindLatest) != want.behind {
				t.Fatalf("read %q %d ms behind, want %q %d", datas(out.Records), aws.ToInt64(out.MillisBehindLatest), want.data, want.behind)
			}
			if out.NextShardIterator == nil || *out.NextShardIterator == "" || out.ChildShards != nil {
				t.Fatalf("NextShardIterator %v, ChildShards %v", out.NextShardIterator, out.ChildShards)
			}
			it = *out.NextShardIterator
		}
		// The last iterator picks up a later record.
		e.putAt("s", "r5")
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		noErr(t, err, "GetRecords")
		if datas(out.Records) != "r5" || aws.ToInt64(out.MillisBehindLatest) != 0 {
			t.Fatalf("read %q, %d ms behind", datas(out.Records), aws.ToInt64(out.MillisBehindLatest))
		}
		// An iterator may be used more than once.
		out2, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		noErr(t, err, "GetRecords again")
		if datas(out2.Records) != "r5" {
			t.Fatalf("second read %q", datas(out2.Records))
		}
	})

	t.Run("BadIterators", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		for _, bad := range []string{flip(it), it[:len(it)-4], it + "AAAA", "garbage", "!!!!"} {
			_, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(bad)})
			wantErr[types.InvalidArgumentException](t, err)
		}
		for _, in := range []kinesis.GetRecordsInput{
			{ShardIterator: aws.String("")},
			{ShardIterator: aws.String(strings.Repeat("A", 513))},
			{ShardIterator: aws.String(it), Limit: aws.Int32(0)},
			{ShardIterator: aws.String(it), Limit: aws.Int32(10001)},
		} {
			_, err := e.c.GetRecords(e.ctx, &in)
			wantErr[types.ValidationException](t, err)
		}
		wantRawError(t, rawCall(t, e.srv.Endpoint, "GetRecords", `{}`), "ValidationException")
	})

	t.Run("DryRun", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		_, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), DryRun: aws.Bool(true)})
		wantErr[types.DryRunOperationException](t, err)
	})

	t.Run("DeletedAndRecreatedStream", func(t *testing.T) {
		e.createStream("d", 1)
		e.putAt("d", "old")
		it := e.iterator("d", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("d")})
		noErr(t, err, "DeleteStream")
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		wantErr[types.ResourceNotFoundException](t, err)
		e.createStream("d", 1)
		e.putAt("d", "new")
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		wantErr[types.ResourceNotFoundException](t, err)
	})

	// Last: it moves the clock by minutes.
	t.Run("Expiry", func(t *testing.T) {
		it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		clock.Advance(5 * time.Minute)
		out, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(1)})
		noErr(t, err, "GetRecords with a 5 minute old iterator")
		clock.Advance(time.Millisecond)
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		wantErr[types.ExpiredIteratorException](t, err)
		// The NextShardIterator is fresh.
		_, err = e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
		noErr(t, err, "GetRecords with the next iterator")
	})
}

// TestIteratorsSurviveRestart stops a server and starts another on the same
// data directory: records and iterators issued by the first stay valid.
func TestIteratorsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, server.Config{DataDir: dir})
	e.createStream("s", 2)
	var recs []types.PutRecordsRequestEntry
	for i := 0; i < 50; i++ {
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("v", i))})
	}
	_, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
	noErr(t, err, "PutRecords")
	before := e.readAll("s")
	from0 := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	first, err := e.c.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(e.iterator("s", shardID(1), types.ShardIteratorTypeTrimHorizon, nil, nil)), Limit: aws.Int32(3)})
	noErr(t, err, "GetRecords")
	mid1 := *first.NextShardIterator

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noErr(t, e.srv.Shutdown(ctx), "Shutdown")

	e2 := newEnv(t, server.Config{DataDir: dir})
	got0 := e2.drain(from0, 0)
	got1 := e2.drain(mid1, 0)
	for _, c := range []struct {
		got, want []types.Record
	}{{got0, before[shardID(0)]}, {got1, before[shardID(1)][3:]}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("read %d records after restart, want %d", len(c.got), len(c.want))
		}
		for i := range c.got {
			if *c.got[i].SequenceNumber != *c.want[i].SequenceNumber || !bytes.Equal(c.got[i].Data, c.want[i].Data) ||
				!c.got[i].ApproximateArrivalTimestamp.Equal(*c.want[i].ApproximateArrivalTimestamp) {
				t.Fatalf("record %d differs after restart", i)
			}
		}
	}
	if n := len(before[shardID(0)]) + len(before[shardID(1)]); n != 50 {
		t.Fatalf("%d records before restart", n)
	}
	s := e2.summary("s")
	if aws.ToInt32(s.OpenShardCount) != 2 || s.StreamStatus != types.StreamStatusActive {
		t.Fatalf("after restart: %+v", s)
	}
	// New writes continue the shard's sequence.
	out := e2.put("s", "k0", []byte("after"))
	last := before[*out.ShardId][len(before[*out.ShardId])-1]
	if !seqLess(*last.SequenceNumber, *out.SequenceNumber) {
		t.Fatalf("sequence number %s after restart is not above %s", *out.SequenceNumber, *last.SequenceNumber)
	}
}

// A sequence number the shard never issued (here: one from a deleted stream
// of the same name, whose new shard is still empty) is refused rather than
// silently skipping the records that arrive later.
func TestGetShardIteratorRefusesForeignSequenceNumber(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	put := e.put("s", "k", []byte("old"))
	_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DeleteStream")
	e.createStream("s", 1)
	for _, typ := range []types.ShardIteratorType{types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber} {
		_, err = e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: put.ShardId,
			ShardIteratorType: typ, StartingSequenceNumber: put.SequenceNumber})
		wantErr[types.InvalidArgumentException](t, err)
	}
	// Even once the new shard holds a record at the same position, the old
	// stream's number is not taken for it.
	again := e.put("s", "k", []byte("new"))
	if *again.SequenceNumber == *put.SequenceNumber {
		t.Fatalf("a re-created stream reissued sequence number %s", *put.SequenceNumber)
	}
	_, err = e.c.GetShardIterator(e.ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: put.SequenceNumber})
	wantErr[types.InvalidArgumentException](t, err)
	it := e.iterator("s", *put.ShardId, types.ShardIteratorTypeAtSequenceNumber, again.SequenceNumber, nil)
	if got := e.drain(it, 10); len(got) != 1 || string(got[0].Data) != "new" {
		t.Fatalf("read %d records", len(got))
	}
}
