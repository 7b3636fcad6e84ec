package server_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

var consumerARNForm = regexp.MustCompile(`^arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c1:(\d+)$`)

func TestRegisterStreamConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	before := time.Now().Truncate(time.Second)
	out, err := e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1")})
	noErr(t, err, "RegisterStreamConsumer")
	c := out.Consumer
	m := consumerARNForm.FindStringSubmatch(aws.ToString(c.ConsumerARN))
	if m == nil {
		t.Fatalf("consumer ARN %q does not have the AWS form", aws.ToString(c.ConsumerARN))
	}
	if m[1] != fmt.Sprint(c.ConsumerCreationTimestamp.Unix()) || c.ConsumerCreationTimestamp.Before(before) || time.Since(*c.ConsumerCreationTimestamp) > time.Minute {
		t.Fatalf("ARN seconds %s, creation timestamp %v", m[1], c.ConsumerCreationTimestamp)
	}
	if aws.ToString(c.ConsumerName) != "c1" || c.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("consumer %+v, want c1 ACTIVE (zero create delay)", c)
	}
	if n := aws.ToInt32(e.summary("s").ConsumerCount); n != 1 {
		t.Fatalf("ConsumerCount %d, want 1", n)
	}

	// The same name again: ResourceInUse. The same name on another stream: fine.
	_, err = e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1")})
	wantErr[types.ResourceInUseException](t, err)
	e.createStream("s2", 1)
	e.register("s2", "c1")

	// Errors.
	_, err = e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("nope")), ConsumerName: aws.String("c")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:eu-west-1:000000000000:stream/s"), ConsumerName: aws.String("c")})
	wantErr[types.ResourceNotFoundException](t, err)
	for _, name := range []string{"bad name", "", strings.Repeat("n", 129), "a/b"} {
		_, err = e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String(name)})
		wantCode(t, err, "ValidationException")
	}
	_, err = e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("not-an-arn"), ConsumerName: aws.String("c")})
	wantCode(t, err, "ValidationException")
	// Required members the SDK would check before sending: raw calls.
	wantRawError(t, rawCall(t, e.srv.Endpoint, "RegisterStreamConsumer", map[string]any{"StreamARN": arn("s")}), "ValidationException")
	wantRawError(t, rawCall(t, e.srv.Endpoint, "RegisterStreamConsumer", map[string]any{"ConsumerName": "x"}), "ValidationException")

	// 20 consumers per stream.
	for i := 2; i <= 20; i++ {
		e.register("s", fmt.Sprint("c", i))
	}
	_, err = e.nr.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c21")})
	wantErr[types.LimitExceededException](t, err)
	if n := aws.ToInt32(e.summary("s").ConsumerCount); n != 20 {
		t.Fatalf("ConsumerCount %d, want 20", n)
	}
}

func TestDescribeAndDeregisterStreamConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	c1 := e.register("s", "c1")
	c2 := e.register("s", "c2")

	byARN, err := e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c1)})
	noErr(t, err, "DescribeStreamConsumer by ARN")
	d := byARN.ConsumerDescription
	if aws.ToString(d.ConsumerARN) != c1 || aws.ToString(d.ConsumerName) != "c1" || aws.ToString(d.StreamARN) != arn("s") || d.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("description %+v", d)
	}
	byName, err := e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1")})
	noErr(t, err, "DescribeStreamConsumer by name")
	if aws.ToString(byName.ConsumerDescription.ConsumerARN) != c1 || !byName.ConsumerDescription.ConsumerCreationTimestamp.Equal(*d.ConsumerCreationTimestamp) {
		t.Fatalf("by name %+v, by ARN %+v", byName.ConsumerDescription, d)
	}

	// Not found: unknown name, unknown stream, an ARN of another creation second.
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("nope")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(arn("nope")), ConsumerName: aws.String("c1")})
	wantErr[types.ResourceNotFoundException](t, err)
	i := strings.LastIndexByte(c1, ':')
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c1[:i] + ":12345")})
	wantErr[types.ResourceNotFoundException](t, err)
	// Neither an ARN nor stream and name: InvalidArgument; a malformed ARN:
	// ValidationException; an ARN naming another consumer than ConsumerName:
	// InvalidArgument.
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerName: aws.String("c1")})
	wantErr[types.InvalidArgumentException](t, err)
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn("s") + "/consumer/c1")})
	wantCode(t, err, "ValidationException")
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c1), ConsumerName: aws.String("c2")})
	wantErr[types.InvalidArgumentException](t, err)

	// Deregister by ARN, then by stream and name.
	_, err = e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(c1)})
	noErr(t, err, "DeregisterStreamConsumer by ARN")
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c1)})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(c1)})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c2")})
	noErr(t, err, "DeregisterStreamConsumer by name")
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c2)})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(arn("s"))})
	wantErr[types.InvalidArgumentException](t, err)
	if n := aws.ToInt32(e.summary("s").ConsumerCount); n != 0 {
		t.Fatalf("ConsumerCount %d after deregistering both", n)
	}
}

func TestListStreamConsumersPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	want := map[string]string{}
	for i := range 7 {
		name := fmt.Sprintf("c%d", i)
		want[name] = e.register("s", name)
	}
	// Default MaxResults (100) lists all at once.
	all, err := e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s"))})
	noErr(t, err, "ListStreamConsumers")
	if len(all.Consumers) != 7 || all.NextToken != nil {
		t.Fatalf("got %d consumers, token %v", len(all.Consumers), all.NextToken)
	}
	// Pages of 3 through NextToken, with the SDK's paginator.
	got := map[string]string{}
	pages := 0
	p := kinesis.NewListStreamConsumersPaginator(e.c, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		noErr(t, err, "ListStreamConsumers page")
		pages++
		if len(page.Consumers) > 3 {
			t.Fatalf("page of %d consumers", len(page.Consumers))
		}
		for _, c := range page.Consumers {
			if _, dup := got[*c.ConsumerName]; dup {
				t.Fatalf("consumer %s listed twice", *c.ConsumerName)
			}
			got[*c.ConsumerName] = *c.ConsumerARN
		}
	}
	if pages != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%d pages listing %v, want 3 pages listing %v", pages, got, want)
	}

	first, err := e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), MaxResults: aws.Int32(2)})
	noErr(t, err, "ListStreamConsumers")
	created := e.summary("s").StreamCreationTimestamp
	// NextToken and StreamCreationTimestamp together: InvalidArgument.
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), NextToken: first.NextToken, StreamCreationTimestamp: created})
	wantErr[types.InvalidArgumentException](t, err)
	// A matching StreamCreationTimestamp lists; another one: ResourceNotFound.
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), StreamCreationTimestamp: created})
	noErr(t, err, "ListStreamConsumers with StreamCreationTimestamp")
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), StreamCreationTimestamp: aws.Time(created.Add(-time.Hour))})
	wantErr[types.ResourceNotFoundException](t, err)
	// A token of another stream, a garbage token: InvalidArgument.
	e.createStream("s2", 1)
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s2")), NextToken: first.NextToken})
	wantErr[types.InvalidArgumentException](t, err)
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), NextToken: aws.String("garbage")})
	wantErr[types.InvalidArgumentException](t, err)
	// Bounds and unknown streams.
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), MaxResults: aws.Int32(0)})
	wantCode(t, err, "ValidationException")
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("nope"))})
	wantErr[types.ResourceNotFoundException](t, err)
	// An empty stream lists [] (not null).
	r := rawCall(t, e.srv.Endpoint, "ListStreamConsumers", map[string]any{"StreamARN": arn("s2")})
	if wantRawOK(t, r, nil); !strings.Contains(string(r.Body), `"Consumers":[]`) {
		t.Fatalf("empty list body %s", r.Body)
	}
}

func TestListStreamConsumersTokenExpires(t *testing.T) {
	t.Parallel()
	clock := newClock()
	e := newEnv(t, server.Config{Now: clock.Now})
	e.createStream("s", 1)
	e.register("s", "a")
	e.register("s", "b")
	first, err := e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), MaxResults: aws.Int32(1)})
	noErr(t, err, "ListStreamConsumers")
	clock.Advance(301 * time.Second)
	_, err = e.c.ListStreamConsumers(e.ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn("s")), NextToken: first.NextToken})
	wantErr[types.ExpiredNextTokenException](t, err)
}

func TestDeleteStreamWithConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	c := e.register("s", "c1")
	_, err := e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	wantErr[types.ResourceInUseException](t, err)
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(false)})
	wantErr[types.ResourceInUseException](t, err)
	noErr(t, func() error {
		_, err := e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c)})
		return err
	}(), "consumer still there")

	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)})
	noErr(t, err, "DeleteStream with EnforceConsumerDeletion")
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c)})
	wantErr[types.ResourceNotFoundException](t, err)
	// A stream re-created under the name starts without consumers.
	e.createStream("s", 1)
	if n := aws.ToInt32(e.summary("s").ConsumerCount); n != 0 {
		t.Fatalf("re-created stream has %d consumers", n)
	}
	_, err = e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c)})
	wantErr[types.ResourceNotFoundException](t, err)
	// Without consumers, DeleteStream needs no flag.
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s")})
	noErr(t, err, "DeleteStream without consumers")
}

// In a synctest bubble (newBubbleEnv): a consumer is CREATING, and then
// DELETING, for exactly the configured delay, however long the calls take.
func TestConsumerStatusTransitions(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testConsumerStatusTransitions)
}

func testConsumerStatusTransitions(t *testing.T) {
	const delay = 400 * time.Millisecond
	e := newBubbleEnv(t, server.Config{ConsumerCreateDelay: delay, ConsumerDeleteDelay: delay})
	e.createStream("s", 1)
	out, err := e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1")})
	noErr(t, err, "RegisterStreamConsumer")
	c := aws.ToString(out.Consumer.ConsumerARN)
	if out.Consumer.ConsumerStatus != types.ConsumerStatusCreating {
		t.Fatalf("status %s, want CREATING", out.Consumer.ConsumerStatus)
	}
	status := func() types.ConsumerStatus {
		d, err := e.c.DescribeStreamConsumer(e.ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(c)})
		if err != nil {
			return "gone"
		}
		return d.ConsumerDescription.ConsumerStatus
	}
	// Before ACTIVE, SubscribeToShard refuses the consumer.
	if s := status(); s != types.ConsumerStatusCreating {
		t.Fatalf("status %s before ConsumerCreateDelay, want CREATING", s)
	}
	_, err = e.c.SubscribeToShard(e.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(c), ShardId: aws.String(shardID(0)),
		StartingPosition: startPos(types.ShardIteratorTypeLatest)})
	wantErr[types.ResourceInUseException](t, err)
	time.Sleep(delay)
	synctest.Wait() // the status timer has saved the change
	if s := status(); s != types.ConsumerStatusActive {
		t.Fatalf("status %s after ConsumerCreateDelay, want ACTIVE", s)
	}
	// At most 5 consumers CREATING at once.
	for i := range 5 {
		_, err := e.c.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String(fmt.Sprint("n", i))})
		noErr(t, err, "RegisterStreamConsumer")
	}
	_, err = e.nr.RegisterStreamConsumer(e.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("n5")})
	wantErr[types.LimitExceededException](t, err)

	_, err = e.c.DeregisterStreamConsumer(e.ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(c)})
	noErr(t, err, "DeregisterStreamConsumer")
	if s := status(); s != types.ConsumerStatusDeleting {
		t.Fatalf("status %s right after deregistering, want DELETING", s)
	}
	time.Sleep(delay)
	synctest.Wait() // the status timer has removed the consumer
	if s := status(); s != "gone" {
		t.Fatalf("status %s after ConsumerDeleteDelay, want gone", s)
	}
}

func TestConsumersSurviveRestart(t *testing.T) {
	t.Parallel()
	r := servertest.StartRestartable(t, server.Config{ConsumerCreateDelay: time.Hour})
	c := r.Client()
	ctx := t.Context()
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	noErr(t, err, "CreateStream")
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1")})
	noErr(t, err, "RegisterStreamConsumer")
	if out.Consumer.ConsumerStatus != types.ConsumerStatusCreating {
		t.Fatalf("status %s, want CREATING", out.Consumer.ConsumerStatus)
	}
	r.Restart()
	d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN})
	noErr(t, err, "DescribeStreamConsumer after restart")
	cd := d.ConsumerDescription
	// A restart finishes the CREATING period, as one finishes a stream's.
	if cd.ConsumerStatus != types.ConsumerStatusActive || aws.ToString(cd.ConsumerName) != "c1" ||
		!cd.ConsumerCreationTimestamp.Equal(*out.Consumer.ConsumerCreationTimestamp) {
		t.Fatalf("after restart %+v, registered %+v", cd, out.Consumer)
	}
	_, err = c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN})
	noErr(t, err, "DeregisterStreamConsumer")
	r.Restart()
	_, err = c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN})
	wantErr[types.ResourceNotFoundException](t, err)
}

// TestConsumerTags tags consumers through TagResource, UntagResource and
// ListTagsForResource with the consumer's ARN, apart from its stream's tags,
// starting from the tags given at registration, and across a restart.
func TestConsumerTags(t *testing.T) {
	t.Parallel()
	r := servertest.StartRestartable(t, server.Config{})
	c := r.Client()
	ctx := t.Context()
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1), Tags: map[string]string{"team": "data"}})
	noErr(t, err, "CreateStream")
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn("s")), ConsumerName: aws.String("c1"),
		Tags: map[string]string{"app": "audit"}})
	noErr(t, err, "RegisterStreamConsumer")
	carn := out.Consumer.ConsumerARN
	tagsOf := func(resource string) map[string]string {
		t.Helper()
		l, err := c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(resource)})
		noErr(t, err, "ListTagsForResource "+resource)
		m := map[string]string{}
		for _, tag := range l.Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		return m
	}
	same := func(got, want map[string]string) bool { return fmt.Sprint(got) == fmt.Sprint(want) }
	if got := tagsOf(*carn); !same(got, map[string]string{"app": "audit"}) {
		t.Fatalf("consumer tags %v, want the registration's", got)
	}
	_, err = c.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: carn, Tags: map[string]string{"env": "prod", "app": "audit2"}})
	noErr(t, err, "TagResource consumer")
	_, err = c.UntagResource(ctx, &kinesis.UntagResourceInput{ResourceARN: carn, TagKeys: []string{"env"}})
	noErr(t, err, "UntagResource consumer")
	if got := tagsOf(*carn); !same(got, map[string]string{"app": "audit2"}) {
		t.Fatalf("consumer tags %v after tag and untag", got)
	}
	if got := tagsOf(arn("s")); !same(got, map[string]string{"team": "data"}) {
		t.Fatalf("stream tags %v: consumer tags leaked into the stream", got)
	}

	// 50 tags per resource.
	many := map[string]string{}
	for i := range 50 {
		many[fmt.Sprint("k", i)] = "v"
	}
	_, err = c.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: carn, Tags: many})
	wantErr[types.LimitExceededException](t, err)

	r.Restart()
	if got := tagsOf(*carn); !same(got, map[string]string{"app": "audit2"}) {
		t.Fatalf("consumer tags %v after a restart", got)
	}

	// A consumer that does not exist, or a malformed consumer ARN.
	_, err = c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(arn("s") + "/consumer/nope:1")})
	wantErr[types.ResourceNotFoundException](t, err)
	_, err = c.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: aws.String(arn("s") + "/consumer/bad name:x"), Tags: map[string]string{"a": "b"}})
	wantErr[types.InvalidArgumentException](t, err)
	_, err = c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: carn})
	noErr(t, err, "DeregisterStreamConsumer")
	_, err = c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: carn})
	wantErr[types.ResourceNotFoundException](t, err)
}
