package server_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func TestRetentionPeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	inc := func(h int32) error {
		_, err := e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(h)})
		return err
	}
	dec := func(h int32) error {
		_, err := e.c.DecreaseStreamRetentionPeriod(e.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(h)})
		return err
	}
	hours := func() int32 { return aws.ToInt32(e.summary("s").RetentionPeriodHours) }

	noErr(t, inc(48), "increase to 48")
	if hours() != 48 {
		t.Fatalf("retention %d after increase to 48", hours())
	}
	noErr(t, inc(48), "increase to the current value")
	wantErr[types.InvalidArgumentException](t, inc(36)) // a decrease through Increase
	wantErr[types.InvalidArgumentException](t, dec(72)) // an increase through Decrease
	noErr(t, inc(8760), "increase to the maximum")
	wantErr[types.InvalidArgumentException](t, inc(8761))
	wantErr[types.InvalidArgumentException](t, dec(23))
	noErr(t, dec(100), "decrease to 100")
	if hours() != 100 {
		t.Fatalf("retention %d after decrease to 100", hours())
	}
	noErr(t, dec(24), "decrease to the minimum")
	wantErr[types.InvalidArgumentException](t, dec(23))
	wantErr[types.InvalidArgumentException](t, inc(1))
	if hours() != 24 {
		t.Fatalf("retention %d, want 24", hours())
	}
	ds, err := e.c.DescribeStream(e.ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStream")
	if aws.ToInt32(ds.StreamDescription.RetentionPeriodHours) != 24 {
		t.Fatalf("DescribeStream retention %d", aws.ToInt32(ds.StreamDescription.RetentionPeriodHours))
	}

	wantErr[types.ValidationException](t, inc(0))
	wantErr[types.ValidationException](t, dec(-1))
	wantRawError(t, rawCall(t, e.srv.Endpoint, "IncreaseStreamRetentionPeriod", `{"StreamName":"s"}`), "ValidationException")
	_, err = e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("nope"), RetentionPeriodHours: aws.Int32(48)})
	wantErr[types.ResourceNotFoundException](t, err)
}

func TestRetentionHidesExpiredRecords(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 1)
	t0 := clock.Now()
	oldSeq := e.putAt("s", "old")
	clock.Advance(23 * time.Hour)
	e.putAt("s", "new")
	if got := datas(e.readShard("s", shardID(0))); got != "old,new" {
		t.Fatalf("within retention: %s", got)
	}
	clock.Advance(59 * time.Minute) // "old" is 23 h 59 min old
	it := e.iterator("s", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	clock.Advance(2 * time.Minute) // "old" has expired; the iterator has not
	if got := datas(e.drain(it, 0)); got != "new" {
		t.Fatalf("iterator issued before the record expired: %s, want new", got)
	}

	if got := datas(e.readShard("s", shardID(0))); got != "new" {
		t.Fatalf("TRIM_HORIZON after 24.5 h: %s, want new", got)
	}
	if got := datas(e.drain(e.iterator("s", shardID(0), types.ShardIteratorTypeAtTimestamp, nil, &t0), 0)); got != "new" {
		t.Fatalf("AT_TIMESTAMP before the trim horizon: %s, want new", got)
	}
	if got := datas(e.drain(e.iterator("s", shardID(0), types.ShardIteratorTypeAtSequenceNumber, aws.String(oldSeq), nil), 0)); got != "new" {
		t.Fatalf("AT_SEQUENCE_NUMBER of an expired record: %s, want new", got)
	}
	t.Run("NoResurrection", func(t *testing.T) {
		_, err := e.c.IncreaseStreamRetentionPeriod(e.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)})
		noErr(t, err, "IncreaseStreamRetentionPeriod")
		if got := datas(e.readShard("s", shardID(0))); got != "new" {
			t.Fatalf("TRIM_HORIZON after increasing retention: %s, want new (expired data must not come back)", got)
		}
	})
}

func TestStreamTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	add := func(tags map[string]string) error {
		_, err := e.nr.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: tags})
		return err
	}
	list := func(limit *int32, start *string) *kinesis.ListTagsForStreamOutput {
		t.Helper()
		out, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s"), Limit: limit, ExclusiveStartTagKey: start})
		noErr(t, err, "ListTagsForStream")
		return out
	}
	keys := func(tags []types.Tag) string {
		s := make([]string, len(tags))
		for i, tg := range tags {
			s[i] = *tg.Key + "=" + aws.ToString(tg.Value)
		}
		return strings.Join(s, ",")
	}

	out := list(nil, nil)
	if len(out.Tags) != 0 || aws.ToBool(out.HasMoreTags) {
		t.Fatalf("new stream tags %+v", out.Tags)
	}
	noErr(t, add(map[string]string{"b": "2", "a": "1", "c": ""}), "AddTagsToStream")
	noErr(t, add(map[string]string{"a": "one"}), "AddTagsToStream overwrite")
	if got := keys(list(nil, nil).Tags); got != "a=one,b=2,c=" {
		t.Fatalf("tags %s", got)
	}

	t.Run("Paging", func(t *testing.T) {
		out := list(aws.Int32(2), nil)
		if keys(out.Tags) != "a=one,b=2" || !aws.ToBool(out.HasMoreTags) {
			t.Fatalf("first page %s more=%v", keys(out.Tags), aws.ToBool(out.HasMoreTags))
		}
		out = list(aws.Int32(2), aws.String("b"))
		if keys(out.Tags) != "c=" || aws.ToBool(out.HasMoreTags) {
			t.Fatalf("after b: %s more=%v", keys(out.Tags), aws.ToBool(out.HasMoreTags))
		}
		out = list(aws.Int32(3), nil)
		if len(out.Tags) != 3 || aws.ToBool(out.HasMoreTags) {
			t.Fatalf("exact page: %s more=%v", keys(out.Tags), aws.ToBool(out.HasMoreTags))
		}
		out = list(nil, aws.String("aa"))
		if keys(out.Tags) != "b=2,c=" {
			t.Fatalf("after aa: %s", keys(out.Tags))
		}
	})

	t.Run("Remove", func(t *testing.T) {
		_, err := e.c.RemoveTagsFromStream(e.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("s"), TagKeys: []string{"b", "missing"}})
		noErr(t, err, "RemoveTagsFromStream")
		if got := keys(list(nil, nil).Tags); got != "a=one,c=" {
			t.Fatalf("after remove: %s", got)
		}
	})

	t.Run("Limits", func(t *testing.T) {
		wantErr[types.InvalidArgumentException](t, add(manyTags(11)))
		// 2 tags now; 48 more fit (10 per call), one more does not.
		for i := 0; i < 48; i += 8 {
			batch := map[string]string{}
			for j := i; j < i+8; j++ {
				batch[fmt.Sprintf("t%02d", j)] = "v"
			}
			noErr(t, add(batch), "AddTagsToStream")
		}
		wantErr[types.LimitExceededException](t, add(map[string]string{"one-too-many": "v"}))
		// Overwriting an existing key adds nothing.
		noErr(t, add(map[string]string{"a": "again"}), "overwrite at the limit")
		out := list(nil, nil)
		if len(out.Tags) != 50 || aws.ToBool(out.HasMoreTags) {
			t.Fatalf("%d tags, more=%v", len(out.Tags), aws.ToBool(out.HasMoreTags))
		}
		_, err := e.nr.TagResource(e.ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(arn("s")), Tags: map[string]string{"x": "y"}})
		wantErr[types.LimitExceededException](t, err)
	})

	t.Run("Validation", func(t *testing.T) {
		wantErr[types.ValidationException](t, add(map[string]string{}))
		wantErr[types.ValidationException](t, add(map[string]string{"": "v"}))
		wantErr[types.ValidationException](t, add(map[string]string{bigString(129): "v"}))
		wantErr[types.ValidationException](t, add(map[string]string{"k": bigString(257)}))
		_, err := e.c.RemoveTagsFromStream(e.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("s"), TagKeys: []string{}})
		wantErr[types.ValidationException](t, err)
		_, err = e.c.RemoveTagsFromStream(e.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("s"), TagKeys: strings.Split(strings.Repeat("k,", 51)[:101], ",")})
		wantErr[types.ValidationException](t, err)
		for _, lim := range []int32{0, 51} {
			_, err = e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(lim)})
			wantErr[types.ValidationException](t, err)
		}
		wantRawError(t, rawCall(t, e.srv.Endpoint, "AddTagsToStream", `{"StreamName":"s"}`), "ValidationException")
		wantRawError(t, rawCall(t, e.srv.Endpoint, "RemoveTagsFromStream", `{"StreamName":"s"}`), "ValidationException")
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := e.c.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("nope"), Tags: map[string]string{"a": "b"}})
		wantErr[types.ResourceNotFoundException](t, err)
		_, err = e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("nope")})
		wantErr[types.ResourceNotFoundException](t, err)
		_, err = e.c.RemoveTagsFromStream(e.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("nope"), TagKeys: []string{"a"}})
		wantErr[types.ResourceNotFoundException](t, err)
	})
}

func TestResourceTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	res := aws.String(arn("s"))
	list := func() string {
		t.Helper()
		out, err := e.c.ListTagsForResource(e.ctx, &kinesis.ListTagsForResourceInput{ResourceARN: res})
		noErr(t, err, "ListTagsForResource")
		s := make([]string, len(out.Tags))
		for i, tg := range out.Tags {
			s[i] = *tg.Key + "=" + aws.ToString(tg.Value)
		}
		return strings.Join(s, ",")
	}
	if got := list(); got != "" {
		t.Fatalf("new stream tags %s", got)
	}
	// TagResource has no 10-per-call rule.
	_, err := e.c.TagResource(e.ctx, &kinesis.TagResourceInput{ResourceARN: res, Tags: manyTags(12)})
	noErr(t, err, "TagResource")
	_, err = e.c.UntagResource(e.ctx, &kinesis.UntagResourceInput{ResourceARN: res, TagKeys: []string{"k000", "k001", "k002", "k003", "k004", "k005", "k006", "k007", "k008", "k009"}})
	noErr(t, err, "UntagResource")
	if got := list(); got != "k010=10,k011=11" {
		t.Fatalf("tags %s", got)
	}
	// Both tag APIs see the same tags.
	_, err = e.c.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"legacy": "yes"}})
	noErr(t, err, "AddTagsToStream")
	if got := list(); got != "k010=10,k011=11,legacy=yes" {
		t.Fatalf("tags %s", got)
	}
	lt, err := e.c.ListTagsForStream(e.ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "ListTagsForStream")
	if len(lt.Tags) != 3 {
		t.Fatalf("ListTagsForStream %d tags", len(lt.Tags))
	}

	for _, tc := range []struct {
		arn  string
		want func(error)
	}{
		{arn("nope"), func(err error) { wantErr[types.ResourceNotFoundException](t, err) }},
		{"arn:aws:kinesis:us-east-1:111111111111:stream/s", func(err error) { wantErr[types.ResourceNotFoundException](t, err) }},
		// Consumers are taggable too (TestConsumerTags); this one does not exist.
		{"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1700000000", func(err error) { wantErr[types.ResourceNotFoundException](t, err) }},
		{"arn:aws:kinesis:us-east-1:000000000000:channel/c", func(err error) { wantErr[types.InvalidArgumentException](t, err) }},
		{"not-an-arn", func(err error) { wantErr[types.ValidationException](t, err) }},
	} {
		_, err := e.c.ListTagsForResource(e.ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(tc.arn)})
		tc.want(err)
		_, err = e.c.TagResource(e.ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(tc.arn), Tags: map[string]string{"a": "b"}})
		tc.want(err)
		_, err = e.c.UntagResource(e.ctx, &kinesis.UntagResourceInput{ResourceARN: aws.String(tc.arn), TagKeys: []string{"a"}})
		tc.want(err)
	}
	_, err = e.c.TagResource(e.ctx, &kinesis.TagResourceInput{ResourceARN: res, Tags: map[string]string{}})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.UntagResource(e.ctx, &kinesis.UntagResourceInput{ResourceARN: res, TagKeys: []string{}})
	wantErr[types.ValidationException](t, err)
	wantRawError(t, rawCall(t, e.srv.Endpoint, "ListTagsForResource", `{}`), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "TagResource", `{"Tags":{"a":"b"}}`), "ValidationException")
}

func TestDescribeLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	check := func(open, onDemand int32) {
		t.Helper()
		out, err := e.c.DescribeLimits(e.ctx, &kinesis.DescribeLimitsInput{})
		noErr(t, err, "DescribeLimits")
		if aws.ToInt32(out.ShardLimit) != 10000 || aws.ToInt32(out.OpenShardCount) != open ||
			aws.ToInt32(out.OnDemandStreamCount) != onDemand || aws.ToInt32(out.OnDemandStreamCountLimit) != 50 {
			t.Fatalf("DescribeLimits %d/%d open, %d/%d on-demand; want %d open, %d on-demand",
				aws.ToInt32(out.OpenShardCount), aws.ToInt32(out.ShardLimit), aws.ToInt32(out.OnDemandStreamCount), aws.ToInt32(out.OnDemandStreamCountLimit), open, onDemand)
		}
	}
	check(0, 0)
	e.createStream("a", 3)
	e.createOnDemand("b")
	check(7, 1)
	_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("a")})
	noErr(t, err, "DeleteStream")
	check(4, 1)
}

func TestUpdateStreamMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{OnDemandStreamLimit: 1})
	e.createStream("s", 2)
	e.createStream("t", 1)
	mode := func(m types.StreamMode, warm *int32) error {
		_, err := e.nr.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("s")), StreamModeDetails: &types.StreamModeDetails{StreamMode: m}, WarmThroughputMiBps: warm})
		return err
	}
	wantErr[types.InvalidArgumentException](t, mode(types.StreamModeProvisioned, nil))
	noErr(t, mode(types.StreamModeOnDemand, aws.Int32(16)), "to ON_DEMAND")
	s := e.summary("s")
	if s.StreamModeDetails.StreamMode != types.StreamModeOnDemand || s.WarmThroughput == nil || aws.ToInt32(s.WarmThroughput.TargetMiBps) != 16 {
		t.Fatalf("after ON_DEMAND: %+v", s)
	}
	lim, err := e.c.DescribeLimits(e.ctx, &kinesis.DescribeLimitsInput{})
	noErr(t, err, "DescribeLimits")
	if aws.ToInt32(lim.OnDemandStreamCount) != 1 {
		t.Fatalf("OnDemandStreamCount %d", aws.ToInt32(lim.OnDemandStreamCount))
	}
	wantErr[types.InvalidArgumentException](t, mode(types.StreamModeOnDemand, nil))
	// The account's single on-demand stream slot is taken.
	_, err = e.nr.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("t")), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	wantErr[types.LimitExceededException](t, err)

	// AUTO distribution does not survive a switch back to PROVISIONED.
	_, err = e.c.UpdateStreamRecordDistributionStrategy(e.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(arn("s")), RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	noErr(t, err, "UpdateStreamRecordDistributionStrategy")
	wantErr[types.InvalidArgumentException](t, mode(types.StreamModeProvisioned, aws.Int32(4)))
	noErr(t, mode(types.StreamModeProvisioned, nil), "to PROVISIONED")
	s = e.summary("s")
	if s.StreamModeDetails.StreamMode != types.StreamModeProvisioned || s.WarmThroughput != nil ||
		s.RecordDistributionStrategy != types.RecordDistributionStrategyUserPartitionKey || aws.ToInt32(s.OpenShardCount) != 2 {
		t.Fatalf("after PROVISIONED: %+v", s)
	}

	_, err = e.c.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("s")), StreamModeDetails: &types.StreamModeDetails{StreamMode: "SERVERLESS"}})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("nope")), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	wantErr[types.ResourceNotFoundException](t, err)
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateStreamMode", `{"StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateStreamMode", fmt.Sprintf(`{"StreamARN":%q}`, arn("s"))), "ValidationException")
}

// In a synctest bubble (newBubbleEnv): the stream is UPDATING for exactly
// UpdateDelay, however long the calls take.
func TestUpdateDelay(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testUpdateDelay)
}

func testUpdateDelay(t *testing.T) {
	const delay = 2 * time.Second
	e := newBubbleEnv(t, server.Config{UpdateDelay: delay})
	e.createStream("s", 1)
	_, err := e.c.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("s")), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	noErr(t, err, "UpdateStreamMode")
	if st := e.summary("s").StreamStatus; st != types.StreamStatusUpdating {
		t.Fatalf("status %s right after UpdateStreamMode, want UPDATING", st)
	}
	// Data keeps flowing while UPDATING; other changes wait.
	e.put("s", "k", []byte("during update"))
	_, err = e.c.UpdateStreamMode(e.ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn("s")), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	wantErr[types.ResourceInUseException](t, err)
	_, err = e.c.AddTagsToStream(e.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("s"), Tags: map[string]string{"a": "b"}})
	noErr(t, err, "AddTagsToStream while UPDATING")
	time.Sleep(delay)
	synctest.Wait() // the status timer has saved the change
	if st := e.summary("s").StreamStatus; st != types.StreamStatusActive {
		t.Fatalf("status %s after UpdateDelay, want ACTIVE", st)
	}
	got := 0
	for _, recs := range e.readAll("s") {
		got += len(recs)
	}
	if got != 1 {
		t.Fatalf("%d records", got)
	}
}

func TestUpdateMaxRecordSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	set := func(kib int32) error {
		_, err := e.c.UpdateMaxRecordSize(e.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn("s")), MaxRecordSizeInKiB: aws.Int32(kib)})
		return err
	}
	for _, kib := range []int32{10240, 1024, 5000} {
		noErr(t, set(kib), fmt.Sprint("UpdateMaxRecordSize ", kib))
		if got := aws.ToInt32(e.summary("s").MaxRecordSizeInKiB); got != kib {
			t.Fatalf("MaxRecordSizeInKiB %d, want %d", got, kib)
		}
	}
	for _, kib := range []int32{1023, 10241, 0, -1} {
		wantErr[types.ValidationException](t, set(kib))
	}
	_, err := e.c.UpdateMaxRecordSize(e.ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String(arn("nope")), MaxRecordSizeInKiB: aws.Int32(2048)})
	wantErr[types.ResourceNotFoundException](t, err)
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateMaxRecordSize", fmt.Sprintf(`{"StreamARN":%q}`, arn("s"))), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateMaxRecordSize", `{"MaxRecordSizeInKiB":2048}`), "ValidationException")
}

func TestUpdateStreamWarmThroughput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("p", 1)
	e.createOnDemand("o")
	_, err := e.c.UpdateStreamWarmThroughput(e.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String("p"), WarmThroughputMiBps: aws.Int32(100)})
	wantErr[types.InvalidArgumentException](t, err)
	out, err := e.c.UpdateStreamWarmThroughput(e.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String("o"), WarmThroughputMiBps: aws.Int32(100)})
	noErr(t, err, "UpdateStreamWarmThroughput")
	if aws.ToString(out.StreamName) != "o" || aws.ToString(out.StreamARN) != arn("o") || out.WarmThroughput == nil ||
		aws.ToInt32(out.WarmThroughput.TargetMiBps) != 100 || aws.ToInt32(out.WarmThroughput.CurrentMiBps) != 100 {
		t.Fatalf("UpdateStreamWarmThroughput %+v", out)
	}
	s := e.summary("o")
	if s.WarmThroughput == nil || aws.ToInt32(s.WarmThroughput.TargetMiBps) != 100 {
		t.Fatalf("summary warm throughput %+v", s.WarmThroughput)
	}
	_, err = e.c.UpdateStreamWarmThroughput(e.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String("o"), WarmThroughputMiBps: aws.Int32(-1)})
	wantErr[types.ValidationException](t, err)
	_, err = e.c.UpdateStreamWarmThroughput(e.ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String("nope"), WarmThroughputMiBps: aws.Int32(1)})
	wantErr[types.ResourceNotFoundException](t, err)
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateStreamWarmThroughput", `{"StreamName":"o"}`), "ValidationException")
}

func TestRecordDistributionStrategy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("p", 4)
	e.createOnDemand("o")
	set := func(name string, s types.RecordDistributionStrategy) error {
		_, err := e.c.UpdateStreamRecordDistributionStrategy(e.ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(arn(name)), RecordDistributionStrategy: s})
		return err
	}
	wantErr[types.InvalidArgumentException](t, set("p", types.RecordDistributionStrategyAuto))
	noErr(t, set("p", types.RecordDistributionStrategyUserPartitionKey), "USER_PARTITION_KEY on provisioned")
	wantErr[types.ValidationException](t, set("o", "RANDOM"))
	wantErr[types.ResourceNotFoundException](t, set("nope", types.RecordDistributionStrategyAuto))
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateStreamRecordDistributionStrategy", fmt.Sprintf(`{"StreamARN":%q}`, arn("o"))), "ValidationException")

	noErr(t, set("o", types.RecordDistributionStrategyAuto), "AUTO on on-demand")
	if got := e.summary("o").RecordDistributionStrategy; got != types.RecordDistributionStrategyAuto {
		t.Fatalf("strategy %q", got)
	}

	// 400 records with one partition key spread over all 4 shards.
	recs := make([]types.PutRecordsRequestEntry, 400)
	for i := range recs {
		recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("one-key"), Data: []byte(fmt.Sprint(i))}
	}
	out, err := e.c.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("o"), Records: recs})
	noErr(t, err, "PutRecords")
	perShard := map[string]int{}
	for _, r := range out.Records {
		perShard[aws.ToString(r.ShardId)]++
	}
	if len(perShard) != 4 {
		t.Fatalf("400 records with one key landed on %d shards: %v", len(perShard), perShard)
	}
	for id, n := range perShard {
		if n < 60 || n > 140 {
			t.Fatalf("uneven spread: %s got %d of 400 (%v)", id, n, perShard)
		}
	}
	read := 0
	for id, recs := range e.readAll("o") {
		if len(recs) != perShard[id] {
			t.Fatalf("%s: read %d, put %d", id, len(recs), perShard[id])
		}
		read += len(recs)
	}
	if read != 400 {
		t.Fatalf("read %d", read)
	}
	// Single PutRecord calls spread too.
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		seen[aws.ToString(e.put("o", "one-key", []byte("single")).ShardId)] = true
	}
	if len(seen) < 3 {
		t.Fatalf("20 PutRecord calls with one key hit only %v", seen)
	}

	// Under AUTO the partition key may be omitted.
	var pr struct{ ShardId, SequenceNumber string }
	wantRawOK(t, rawCall(t, e.srv.Endpoint, "PutRecord", `{"StreamName":"o","Data":"bm8ga2V5"}`), &pr)
	if pr.ShardId == "" || pr.SequenceNumber == "" {
		t.Fatalf("PutRecord without PartitionKey answered %+v", pr)
	}
	var prs struct {
		FailedRecordCount int
		Records           []struct{ ShardId, SequenceNumber, ErrorCode string }
	}
	wantRawOK(t, rawCall(t, e.srv.Endpoint, "PutRecords", `{"StreamName":"o","Records":[{"Data":"YQ=="},{"Data":"Yg=="},{"Data":"Yw=="},{"Data":"ZA=="}]}`), &prs)
	if prs.FailedRecordCount != 0 || len(prs.Records) != 4 {
		t.Fatalf("PutRecords without PartitionKey answered %+v", prs)
	}
	for _, r := range prs.Records {
		if r.ShardId == "" || r.SequenceNumber == "" || r.ErrorCode != "" {
			t.Fatalf("PutRecords without PartitionKey answered %+v", prs)
		}
	}
	found := false
	for _, r := range e.readShard("o", pr.ShardId) {
		if aws.ToString(r.SequenceNumber) == pr.SequenceNumber {
			found = string(r.Data) == "no key"
		}
	}
	if !found {
		t.Fatal("the record put without a partition key was not read back")
	}

	// Back to USER_PARTITION_KEY: the key is required again.
	noErr(t, set("o", types.RecordDistributionStrategyUserPartitionKey), "USER_PARTITION_KEY")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecord", `{"StreamName":"o","Data":"bm8ga2V5"}`), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "PutRecords", `{"StreamName":"o","Records":[{"Data":"YQ=="}]}`), "ValidationException")
	// And routing is by key again.
	shards := e.shards("o")
	for i := 0; i < 10; i++ {
		if got, want := aws.ToString(e.put("o", "one-key", []byte("k")).ShardId), shardOfKey(t, shards, "one-key"); got != want {
			t.Fatalf("one-key went to %s, want %s", got, want)
		}
	}
}

func TestCreateStreamWithAutoDistribution(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	_, err := e.c.CreateStream(e.ctx, &kinesis.CreateStreamInput{StreamName: aws.String("o"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}, RecordDistributionStrategy: types.RecordDistributionStrategyAuto})
	noErr(t, err, "CreateStream AUTO")
	if got := e.summary("o").RecordDistributionStrategy; got != types.RecordDistributionStrategyAuto {
		t.Fatalf("strategy %q", got)
	}
	_, err = e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("o"), Data: []byte("no key")})
	noErr(t, err, "PutRecord without a key")
}

func TestAccountSettings(t *testing.T) {
	t.Parallel()
	clock := newClock()
	dir := t.TempDir()
	e := newEnv(t, server.Config{Now: clock.Now, DataDir: dir})
	describe := func() *types.MinimumThroughputBillingCommitmentOutput {
		t.Helper()
		out, err := e.c.DescribeAccountSettings(e.ctx, &kinesis.DescribeAccountSettingsInput{})
		noErr(t, err, "DescribeAccountSettings")
		if out.MinimumThroughputBillingCommitment == nil {
			t.Fatal("no MinimumThroughputBillingCommitment")
		}
		return out.MinimumThroughputBillingCommitment
	}
	update := func(s types.MinimumThroughputBillingCommitmentInputStatus) (*types.MinimumThroughputBillingCommitmentOutput, error) {
		out, err := e.c.UpdateAccountSettings(e.ctx, &kinesis.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: s}})
		if err != nil {
			return nil, err
		}
		return out.MinimumThroughputBillingCommitment, nil
	}
	year := 365 * 24 * time.Hour

	if c := describe(); c.Status != types.MinimumThroughputBillingCommitmentOutputStatusDisabled || c.StartedAt != nil || c.EndedAt != nil {
		t.Fatalf("initial %+v", c)
	}
	_, err := update(types.MinimumThroughputBillingCommitmentInputStatusDisabled)
	wantErr[types.InvalidArgumentException](t, err)

	start := clock.Now()
	c, err := update(types.MinimumThroughputBillingCommitmentInputStatusEnabled)
	noErr(t, err, "enable")
	if c.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabled || !aws.ToTime(c.StartedAt).Equal(start) ||
		!aws.ToTime(c.EarliestAllowedEndAt).Equal(start.Add(year)) || c.EndedAt != nil {
		t.Fatalf("enabled %+v", c)
	}
	clock.Advance(24 * time.Hour)
	c, err = update(types.MinimumThroughputBillingCommitmentInputStatusEnabled)
	noErr(t, err, "enable again")
	if !aws.ToTime(c.StartedAt).Equal(start) {
		t.Fatalf("enabling again moved StartedAt to %v", c.StartedAt)
	}
	clock.Advance(10 * 24 * time.Hour)
	c, err = update(types.MinimumThroughputBillingCommitmentInputStatusDisabled)
	noErr(t, err, "disable within the first year")
	if c.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabledUntilEarliestAllowedEnd || !aws.ToTime(c.EndedAt).Equal(start.Add(year)) {
		t.Fatalf("disabled early %+v", c)
	}
	if d := describe(); d.Status != c.Status {
		t.Fatalf("DescribeAccountSettings %s, UpdateAccountSettings said %s", d.Status, c.Status)
	}

	// The setting survives a restart.
	noErr(t, e.srv.Shutdown(e.ctx), "Shutdown")
	e = newEnv(t, server.Config{Now: clock.Now, DataDir: dir})
	if d := describe(); d.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabledUntilEarliestAllowedEnd || !aws.ToTime(d.StartedAt).Equal(start) {
		t.Fatalf("after restart %+v", d)
	}

	// Once the earliest allowed end has passed, the commitment is over.
	clock.Advance(year)
	if d := describe(); d.Status != types.MinimumThroughputBillingCommitmentOutputStatusDisabled {
		t.Fatalf("a year later: %+v", d)
	}
	_, err = update(types.MinimumThroughputBillingCommitmentInputStatusDisabled)
	wantErr[types.InvalidArgumentException](t, err)
	restart := clock.Now()
	c, err = update(types.MinimumThroughputBillingCommitmentInputStatusEnabled)
	noErr(t, err, "enable a new commitment")
	if c.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabled || !aws.ToTime(c.StartedAt).Equal(restart) || c.EndedAt != nil {
		t.Fatalf("new commitment %+v", c)
	}

	_, err = update("MAYBE")
	wantErr[types.ValidationException](t, err)
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateAccountSettings", `{}`), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "UpdateAccountSettings", `{"MinimumThroughputBillingCommitment":{}}`), "ValidationException")
}
