package server_test

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// checkHashRanges asserts that shards cover 0..2^128-1 contiguously, in
// order, with sizes that differ by less than the number of shards (the last
// absorbs the remainder).
func checkHashRanges(t *testing.T, shards []types.Shard) {
	t.Helper()
	n := int64(len(shards))
	want := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(n))
	next := big.NewInt(0)
	for i, sh := range shards {
		if got := aws.ToString(sh.ShardId); got != shardID(i) {
			t.Fatalf("shard %d id %s, want %s", i, got, shardID(i))
		}
		start, end := bigOf(*sh.HashKeyRange.StartingHashKey), bigOf(*sh.HashKeyRange.EndingHashKey)
		if start.Cmp(next) != 0 {
			t.Fatalf("shard %d starts at %s, want %s (gap or overlap)", i, start, next)
		}
		size := new(big.Int).Sub(end, start)
		size.Add(size, big.NewInt(1))
		diff := new(big.Int).Sub(size, want)
		if diff.Sign() < 0 || diff.Cmp(big.NewInt(n)) >= 0 {
			t.Fatalf("shard %d holds %s keys, want %s (+ < %d)", i, size, want, n)
		}
		next = new(big.Int).Add(end, big.NewInt(1))
		if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.StartingSequenceNumber == nil {
			t.Fatalf("shard %d has no starting sequence number", i)
		}
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			t.Fatalf("shard %d of a new stream is closed", i)
		}
		if sh.ParentShardId != nil || sh.AdjacentParentShardId != nil {
			t.Fatalf("shard %d of a new stream has parents", i)
		}
	}
	if last := new(big.Int).Sub(next, big.NewInt(1)); last.Cmp(maxHashKey) != 0 {
		t.Fatalf("last shard ends at %s, want 2^128-1", last)
	}
}

func TestCreateStream(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})

	for _, n := range []int32{1, 3, 4, 7, 16} {
		name := fmt.Sprintf("prov-%d", n)
		e.createStream(name, n)
		s := e.summary(name)
		if s.OpenShardCount == nil || *s.OpenShardCount != n {
			t.Fatalf("%s: OpenShardCount %v", name, s.OpenShardCount)
		}
		if s.StreamModeDetails == nil || s.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
			t.Fatalf("%s: mode %+v", name, s.StreamModeDetails)
		}
		if s.StreamStatus != types.StreamStatusActive {
			t.Fatalf("%s: status %s", name, s.StreamStatus)
		}
		if got := s.StreamCreationTimestamp; got == nil || !got.Equal(clock.Now()) {
			t.Fatalf("%s: StreamCreationTimestamp %v, want %v", name, got, clock.Now())
		}
		checkHashRanges(t, e.shards(name))
	}

	t.Run("OnDemand", func(t *testing.T) {
		e.createOnDemand("od")
		s := e.summary("od")
		if s.StreamModeDetails.StreamMode != types.StreamModeOnDemand || aws.ToInt32(s.OpenShardCount) != 4 {
			t.Fatalf("mode %s, %d open shards; want ON_DEMAND with 4", s.StreamModeDetails.StreamMode, aws.ToInt32(s.OpenShardCount))
		}
		checkHashRanges(t, e.shards("od"))
	})

	t.Run("Defaults", func(t *testing.T) {
		s := e.summary("prov-1")
		if aws.ToInt32(s.RetentionPeriodHours) != 24 || aws.ToInt32(s.MaxRecordSizeInKiB) != 1024 {
			t.Fatalf("retention %d h, max record %d KiB; want 24 and 1024", aws.ToInt32(s.RetentionPeriodHours), aws.ToInt32(s.MaxRecordSizeInKiB))
		}
		if s.RecordDistributionStrategy != types.RecordDistributionStrategyUserPartitionKey {
			t.Fatalf("distribution %q", s.RecordDistributionStrategy)
		}
		if s.EncryptionType != types.EncryptionTypeNone {
			t.Fatalf("encryption %q", s.EncryptionType)
		}
		if aws.ToString(s.StreamARN) != arn("prov-1") || aws.ToString(s.StreamName) != "prov-1" {
			t.Fatalf("name %s, arn %s", aws.ToString(s.StreamName), aws.ToString(s.StreamARN))
		}
	})

	t.Run("TagsAndMaxRecordSize", func(t *testing.T) {
		_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String("tagged"), ShardCount: aws.Int32(1),
			Tags:               map[string]string{"team": "data", "env": ""},
			MaxRecordSizeInKiB: aws.Int32(4096),
		})
		noErr(t, err, "CreateStream")
		if got := aws.ToInt32(e.summary("tagged").MaxRecordSizeInKiB); got != 4096 {
			t.Fatalf("MaxRecordSizeInKiB %d, want 4096", got)
		}
		out, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("tagged")})
		noErr(t, err, "ListTagsForStream")
		if len(out.Tags) != 2 || *out.Tags[0].Key != "env" || aws.ToString(out.Tags[0].Value) != "" ||
			*out.Tags[1].Key != "team" || aws.ToString(out.Tags[1].Value) != "data" {
			t.Fatalf("tags %+v", out.Tags)
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("prov-1"), ShardCount: aws.Int32(1)})
		wantErr[types.ResourceInUseException](t, err)
		_, err = e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
		wantErr[types.ResourceInUseException](t, err)
	})

	t.Run("InvalidArgument", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   kinesis.CreateStreamInput
		}{
			{"MissingShardCountProvisioned", kinesis.CreateStreamInput{}},
			{"MissingShardCountExplicitProvisioned", kinesis.CreateStreamInput{StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}}},
			{"AutoOnProvisioned", kinesis.CreateStreamInput{ShardCount: aws.Int32(1), RecordDistributionStrategy: types.RecordDistributionStrategyAuto}},
			{"WarmThroughputOnProvisioned", kinesis.CreateStreamInput{ShardCount: aws.Int32(1), WarmThroughputMiBps: aws.Int32(10)}},
			{"TooManyTags", kinesis.CreateStreamInput{ShardCount: aws.Int32(1), Tags: manyTags(51)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				in.StreamName = aws.String("bad-" + tc.name)
				_, err := e.c.CreateStream(e.ctx, &in)
				wantErr[types.InvalidArgumentException](t, err)
				_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: in.StreamName})
				wantErr[types.ResourceNotFoundException](t, err)
			})
		}
	})

	t.Run("Validation", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   kinesis.CreateStreamInput
		}{
			{"EmptyName", kinesis.CreateStreamInput{StreamName: aws.String(""), ShardCount: aws.Int32(1)}},
			{"NameTooLong", kinesis.CreateStreamInput{StreamName: aws.String(bigString(129)), ShardCount: aws.Int32(1)}},
			{"NameSpace", kinesis.CreateStreamInput{StreamName: aws.String("has space"), ShardCount: aws.Int32(1)}},
			{"NameSlash", kinesis.CreateStreamInput{StreamName: aws.String("a/b"), ShardCount: aws.Int32(1)}},
			{"NameColon", kinesis.CreateStreamInput{StreamName: aws.String("a:b"), ShardCount: aws.Int32(1)}},
			{"NameUnicode", kinesis.CreateStreamInput{StreamName: aws.String("strém"), ShardCount: aws.Int32(1)}},
			{"ShardCountZero", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(0)}},
			{"ShardCountNegative", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(-1)}},
			{"MaxRecordSizeLow", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(1), MaxRecordSizeInKiB: aws.Int32(1023)}},
			{"MaxRecordSizeHigh", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(1), MaxRecordSizeInKiB: aws.Int32(10241)}},
			{"BadMode", kinesis.CreateStreamInput{StreamName: aws.String("z"), StreamModeDetails: &types.StreamModeDetails{StreamMode: "SERVERLESS"}}},
			{"BadDistribution", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(1), RecordDistributionStrategy: "RANDOM"}},
			{"TagKeyTooLong", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(1), Tags: map[string]string{bigString(129): "v"}}},
			{"TagValueTooLong", kinesis.CreateStreamInput{StreamName: aws.String("z"), ShardCount: aws.Int32(1), Tags: map[string]string{"k": bigString(257)}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.c.CreateStream(e.ctx, &tc.in)
				wantErr[types.ValidationException](t, err)
			})
		}
		// Maximal valid names are accepted.
		for _, name := range []string{bigString(128), "a", "A-z_0.9"} {
			e.createStream(name, 1)
		}
		// The SDK refuses to send a request without StreamName; the server
		// must refuse it too.
		wantRawError(t, rawCall(t, e.srv.Endpoint, "CreateStream", `{"ShardCount":1}`), "ValidationException")
	})
}

func manyTags(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%03d", i)] = fmt.Sprint(i)
	}
	return m
}

func TestCreateStreamShardLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{ShardLimit: 10, OnDemandStreamLimit: 1})
	e.createStream("a", 6)
	_, err := e.nr.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("b"), ShardCount: aws.Int32(5)})
	wantErr[types.LimitExceededException](t, err)
	// ON_DEMAND streams take 4 shards of the quota: exactly 10 fits.
	e.createOnDemand("c")
	_, err = e.nr.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("d"), ShardCount: aws.Int32(1)})
	wantErr[types.LimitExceededException](t, err)

	lim, err := e.c.DescribeLimits(e.ctx, &kinesis.DescribeLimitsInput{})
	noErr(t, err, "DescribeLimits")
	if aws.ToInt32(lim.ShardLimit) != 10 || aws.ToInt32(lim.OpenShardCount) != 10 ||
		aws.ToInt32(lim.OnDemandStreamCount) != 1 || aws.ToInt32(lim.OnDemandStreamCountLimit) != 1 {
		t.Fatalf("DescribeLimits %+v", lim)
	}
	// Deleting frees the quota.
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("a")})
	noErr(t, err, "DeleteStream")
	e.createStream("b", 6)
	// The on-demand stream limit: 4 more shards fit, a second on-demand stream does not.
	_, err = e.nr.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("f"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	wantErr[types.LimitExceededException](t, err)
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("f")})
	wantErr[types.ResourceNotFoundException](t, err)
}

func TestDeleteStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 2)
	e.put("s", "k", []byte("x"))
	_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DeleteStream")
	_, err = e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantErr[types.ResourceNotFoundException](t, err)

	// A stream re-created under the same name starts empty.
	e.createStream("s", 1)
	if recs := e.readShard("s", shardID(0)); len(recs) != 0 {
		t.Fatalf("re-created stream holds %d records", len(recs))
	}

	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("bad name")})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{})
	wantErr[types.InvalidArgumentException](t, err)
}

// In a synctest bubble (newBubbleEnv): the stream is CREATING, and then
// DELETING, for exactly the configured delay, however long the calls take.
func TestStreamStatusDelays(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testStreamStatusDelays)
}

func testStreamStatusDelays(t *testing.T) {
	const delay = 2 * time.Second
	e := newBubbleEnv(t, server.Config{CreateDelay: delay, DeleteDelay: delay})
	status := func(name string) (types.StreamStatus, error) {
		out, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return "", err
		}
		return out.StreamDescriptionSummary.StreamStatus, nil
	}

	e.createStream("s", 1)
	st, err := status("s")
	noErr(t, err, "DescribeStreamSummary")
	if st != types.StreamStatusCreating {
		t.Fatalf("status right after CreateStream %s, want CREATING", st)
	}
	// A CREATING stream takes no data, no deletion and no shard listing.
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantErr[types.ResourceInUseException](t, err)
	_, err = e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	wantErr[types.ResourceInUseException](t, err)
	_, err = e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)})
	wantErr[types.ResourceInUseException](t, err)

	time.Sleep(delay)
	synctest.Wait() // the status timer has saved the change
	st, err = status("s")
	noErr(t, err, "DescribeStreamSummary")
	if st != types.StreamStatusActive {
		t.Fatalf("status %s after CreateDelay, want ACTIVE", st)
	}
	e.put("s", "k", []byte("x"))

	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DeleteStream")
	st, err = status("s")
	noErr(t, err, "DescribeStreamSummary")
	if st != types.StreamStatusDeleting {
		t.Fatalf("status right after DeleteStream %s, want DELETING", st)
	}
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	wantErr[types.ResourceInUseException](t, err)
	time.Sleep(delay)
	synctest.Wait() // the status timer has removed the stream
	_, err = status("s")
	wantErr[types.ResourceNotFoundException](t, err)
}

func TestDescribeStream(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 5)

	out, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStream")
	d := out.StreamDescription
	if aws.ToString(d.StreamName) != "s" || aws.ToString(d.StreamARN) != arn("s") || d.StreamStatus != types.StreamStatusActive ||
		aws.ToBool(d.HasMoreShards) || len(d.Shards) != 5 || aws.ToInt32(d.RetentionPeriodHours) != 24 ||
		d.StreamModeDetails == nil || d.StreamModeDetails.StreamMode != types.StreamModeProvisioned ||
		d.StreamCreationTimestamp == nil || !d.StreamCreationTimestamp.Equal(clock.Now()) {
		t.Fatalf("DescribeStream %+v", d)
	}
	checkHashRanges(t, d.Shards)

	// Page two shards at a time.
	var ids []string
	var start *string
	for page := 0; ; page++ {
		out, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(2), ExclusiveStartShardId: start})
		noErr(t, err, "DescribeStream page")
		d := out.StreamDescription
		wantMore := page < 2
		if aws.ToBool(d.HasMoreShards) != wantMore {
			t.Fatalf("page %d: HasMoreShards %v, want %v", page, aws.ToBool(d.HasMoreShards), wantMore)
		}
		for _, sh := range d.Shards {
			ids = append(ids, *sh.ShardId)
		}
		if !wantMore {
			break
		}
		start = d.Shards[len(d.Shards)-1].ShardId
	}
	if strings.Join(ids, ",") != strings.Join([]string{shardID(0), shardID(1), shardID(2), shardID(3), shardID(4)}, ",") {
		t.Fatalf("paged shards %v", ids)
	}

	// The SDK's DescribeStream paginator walks the same pages.
	p := kinesis.NewDescribeStreamPaginator(e.c, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(2)})
	var pagedIDs []string
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		noErr(t, err, "DescribeStream paginator")
		for _, sh := range out.StreamDescription.Shards {
			pagedIDs = append(pagedIDs, *sh.ShardId)
		}
	}
	if strings.Join(pagedIDs, ",") != strings.Join(ids, ",") {
		t.Fatalf("paginator read %v", pagedIDs)
	}

	// Past the last shard: nothing, and no more.
	out, err = e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(shardID(4))})
	noErr(t, err, "DescribeStream")
	if len(out.StreamDescription.Shards) != 0 || aws.ToBool(out.StreamDescription.HasMoreShards) {
		t.Fatalf("after the last shard: %+v", out.StreamDescription.Shards)
	}

	for _, tc := range []struct {
		name string
		in   kinesis.DescribeStreamInput
	}{
		{"LimitZero", kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(0)}},
		{"LimitHigh", kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(10001)}},
		{"BadStartShard", kinesis.DescribeStreamInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String("shard id")}},
		{"BadName", kinesis.DescribeStreamInput{StreamName: aws.String("s!")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.DescribeStream(e.ctx, &tc.in)
			wantErr[types.ValidationException](t, err)
		})
	}
	_, err = e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("nope")})
	wantErr[types.ResourceNotFoundException](t, err)
}

func TestDescribeStreamSummary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("p"), ShardCount: aws.Int32(3), MaxRecordSizeInKiB: aws.Int32(2048)})
	noErr(t, err, "CreateStream")
	_, err = e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("p"), RetentionPeriodHours: aws.Int32(72)})
	noErr(t, err, "IncreaseStreamRetentionPeriod")
	s := e.summary("p")
	if aws.ToInt32(s.OpenShardCount) != 3 || s.StreamModeDetails.StreamMode != types.StreamModeProvisioned ||
		aws.ToInt32(s.MaxRecordSizeInKiB) != 2048 || aws.ToInt32(s.RetentionPeriodHours) != 72 ||
		aws.ToInt32(s.ConsumerCount) != 0 || s.WarmThroughput != nil || s.StreamStatus != types.StreamStatusActive {
		t.Fatalf("summary %+v", s)
	}

	_, err = e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("o"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}, WarmThroughputMiBps: aws.Int32(20)})
	noErr(t, err, "CreateStream ON_DEMAND")
	s = e.summary("o")
	if aws.ToInt32(s.OpenShardCount) != 4 || s.StreamModeDetails.StreamMode != types.StreamModeOnDemand || s.WarmThroughput == nil ||
		aws.ToInt32(s.WarmThroughput.TargetMiBps) != 20 || aws.ToInt32(s.WarmThroughput.CurrentMiBps) != 20 {
		t.Fatalf("on-demand summary %+v (warm %+v)", s, s.WarmThroughput)
	}

	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("nope")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(bigString(129))})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{})
	wantErr[types.InvalidArgumentException](t, err)
}

func TestListStreams(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})

	out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams")
	if len(out.StreamNames) != 0 || aws.ToBool(out.HasMoreStreams) || out.NextToken != nil {
		t.Fatalf("empty account lists %+v", out)
	}

	names := []string{"s7", "s1", "s4", "s2", "s6", "s3", "s5"} // created out of order
	for i, n := range names {
		if i == 3 {
			e.createOnDemand(n)
		} else {
			e.createStream(n, 1)
		}
	}
	want := []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7"}

	t.Run("All", func(t *testing.T) {
		out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
		noErr(t, err, "ListStreams")
		if strings.Join(out.StreamNames, ",") != strings.Join(want, ",") || aws.ToBool(out.HasMoreStreams) || out.NextToken != nil {
			t.Fatalf("ListStreams %v more=%v token=%v", out.StreamNames, aws.ToBool(out.HasMoreStreams), out.NextToken)
		}
		if len(out.StreamSummaries) != len(want) {
			t.Fatalf("%d summaries", len(out.StreamSummaries))
		}
		for i, s := range out.StreamSummaries {
			mode := types.StreamModeProvisioned
			if want[i] == "s2" {
				mode = types.StreamModeOnDemand
			}
			if aws.ToString(s.StreamName) != want[i] || aws.ToString(s.StreamARN) != arn(want[i]) || s.StreamStatus != types.StreamStatusActive ||
				s.StreamModeDetails == nil || s.StreamModeDetails.StreamMode != mode || s.StreamCreationTimestamp == nil || !s.StreamCreationTimestamp.Equal(clock.Now()) {
				t.Fatalf("summary %d: %+v", i, s)
			}
		}
	})

	t.Run("NextTokenPaging", func(t *testing.T) {
		var got []string
		var token *string
		for page := 0; ; page++ {
			out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(3), NextToken: token})
			noErr(t, err, "ListStreams")
			wantMore := page < 2
			if aws.ToBool(out.HasMoreStreams) != wantMore || (out.NextToken != nil) != wantMore {
				t.Fatalf("page %d: HasMoreStreams %v NextToken %v", page, aws.ToBool(out.HasMoreStreams), out.NextToken)
			}
			if len(out.StreamSummaries) != len(out.StreamNames) {
				t.Fatalf("page %d: %d names but %d summaries", page, len(out.StreamNames), len(out.StreamSummaries))
			}
			got = append(got, out.StreamNames...)
			if !wantMore {
				break
			}
			token = out.NextToken
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged %v", got)
		}
	})

	t.Run("Paginator", func(t *testing.T) {
		var got []string
		p := kinesis.NewListStreamsPaginator(e.c, &kinesis.ListStreamsInput{Limit: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(e.ctx)
			noErr(t, err, "ListStreams page")
			got = append(got, out.StreamNames...)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paginator %v", got)
		}
	})

	t.Run("ExclusiveStartStreamName", func(t *testing.T) {
		out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("s3"), Limit: aws.Int32(3)})
		noErr(t, err, "ListStreams")
		if strings.Join(out.StreamNames, ",") != "s4,s5,s6" || !aws.ToBool(out.HasMoreStreams) {
			t.Fatalf("after s3: %v more=%v", out.StreamNames, aws.ToBool(out.HasMoreStreams))
		}
		// A name that does not exist still positions the listing.
		out, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("s55")})
		noErr(t, err, "ListStreams")
		if strings.Join(out.StreamNames, ",") != "s6,s7" || aws.ToBool(out.HasMoreStreams) {
			t.Fatalf("after s55: %v", out.StreamNames)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
		noErr(t, err, "ListStreams")
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{NextToken: out.NextToken, ExclusiveStartStreamName: aws.String("s1")})
		wantErr[types.InvalidArgumentException](t, err)
		for _, tok := range []string{"garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", *out.NextToken + "x", flip(*out.NextToken)} {
			_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{NextToken: aws.String(tok)})
			wantErr[types.InvalidArgumentException](t, err)
		}
		// A ListShards token is not a ListStreams token.
		ls, err := e.c.ListShards(e.ctx, &kinesis.ListShardsInput{StreamName: aws.String("s2"), MaxResults: aws.Int32(1)})
		noErr(t, err, "ListShards")
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{NextToken: ls.NextToken})
		wantErr[types.InvalidArgumentException](t, err)

		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(0)})
		wantErr[types.ValidationException](t, err)
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(10001)})
		wantErr[types.ValidationException](t, err)
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("a b")})
		wantErr[types.ValidationException](t, err)
	})

	t.Run("ExpiredNextToken", func(t *testing.T) {
		out, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(3)})
		noErr(t, err, "ListStreams")
		clock.Advance(299 * time.Second)
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{NextToken: out.NextToken})
		noErr(t, err, "ListStreams with a 299 s old token")
		clock.Advance(2 * time.Second)
		_, err = e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{NextToken: out.NextToken})
		wantErr[types.ExpiredNextTokenException](t, err)
	})
}

// flip changes one character in the middle of an opaque token to another
// character of the base64url alphabet.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestConcurrentCreateStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("x"), ShardCount: aws.Int32(2)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantErr[types.ResourceInUseException](t, err)
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent CreateStream calls succeeded", ok, n)
	}
	if got := aws.ToInt32(e.summary("x").OpenShardCount); got != 2 {
		t.Fatalf("%d shards", got)
	}
}

// TestDeleteStreamUnderLoad deletes a stream while writers and readers hit
// it: every call either succeeds or fails with ResourceNotFound, never with
// an internal failure.
func TestDeleteStreamUnderLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	for round := 0; round < 5; round++ {
		e.createStream("s", 2)
		e.put("s", "k", []byte("seed"))
		its := []string{
			e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil),
			e.iterator("s", shardID(1), types.ShardIteratorTypeTrimHorizon, nil, nil),
		}
		stop := make(chan struct{})
		errs := make(chan error, 64)
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if g%2 == 0 {
						_, err = e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint(g)), Data: []byte("x")})
					} else {
						_, err = e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(its[g%len(its)])})
					}
					var rnf *types.ResourceNotFoundException
					if err != nil && !errors.As(err, &rnf) {
						errs <- err
						return
					}
					if err != nil {
						return // the stream is gone
					}
				}
			})
		}
		_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
		noErr(t, err, "DeleteStream")
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: a call racing DeleteStream failed with %v", round, err)
		}
	}
}
