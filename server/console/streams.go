package console

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// describeConcurrency bounds the DescribeStreamSummary calls of one stream
// list in flight.
const describeConcurrency = 8

// streamJSON is API.md's Stream.
type streamJSON struct {
	Name           string   `json:"name"`
	ARN            string   `json:"arn"`
	Status         string   `json:"status"`
	Mode           string   `json:"mode"`
	OpenShards     int32    `json:"openShards"`
	RetentionHours int32    `json:"retentionHours"`
	Encryption     string   `json:"encryption"`
	KeyID          string   `json:"keyId"`
	Consumers      int32    `json:"consumers"`
	Created        *string  `json:"created"`
	Monitoring     []string `json:"monitoring"`
}

// streamError is a stream of the list whose summary could not be read.
type streamError struct {
	Name  string     `json:"name"`
	Error *errorBody `json:"error"`
}

func streamOf(s *types.StreamDescriptionSummary) streamJSON {
	out := streamJSON{
		Name:           aws.ToString(s.StreamName),
		ARN:            aws.ToString(s.StreamARN),
		Status:         string(s.StreamStatus),
		Mode:           string(types.StreamModeProvisioned),
		OpenShards:     aws.ToInt32(s.OpenShardCount),
		RetentionHours: aws.ToInt32(s.RetentionPeriodHours),
		Encryption:     string(s.EncryptionType),
		KeyID:          aws.ToString(s.KeyId),
		Consumers:      aws.ToInt32(s.ConsumerCount),
		Created:        tsPtr(s.StreamCreationTimestamp),
		Monitoring:     []string{},
	}
	if s.StreamModeDetails != nil && s.StreamModeDetails.StreamMode != "" {
		out.Mode = string(s.StreamModeDetails.StreamMode)
	}
	if out.Encryption == "" {
		out.Encryption = string(types.EncryptionTypeNone)
	}
	for _, em := range s.EnhancedMonitoring {
		for _, m := range em.ShardLevelMetrics {
			out.Monitoring = append(out.Monitoring, string(m))
		}
	}
	return out
}

// summary is DescribeStreamSummary of the caller's stream name.
func summary(ctx context.Context, client *sdkClient, name string) (*types.StreamDescriptionSummary, error) {
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, err
	}
	return out.StreamDescriptionSummary, nil
}

// streamAnswer answers the stream's summary as it is now.
func streamAnswer(cl *call) (any, error) {
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	return streamOf(s), nil
}

func (c *Console) listStreams(cl *call) (any, error) {
	var names []string
	in := &kinesis.ListStreamsInput{}
	for {
		out, err := cl.client.ListStreams(cl.ctx, in)
		if err != nil {
			return nil, err
		}
		names = append(names, out.StreamNames...)
		if !aws.ToBool(out.HasMoreStreams) || len(out.StreamNames) == 0 {
			break
		}
		if out.NextToken != nil {
			in = &kinesis.ListStreamsInput{NextToken: out.NextToken}
		} else {
			in = &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String(names[len(names)-1])}
		}
	}
	sort.Strings(names)
	names = slices.Compact(names)
	streams := make([]any, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, describeConcurrency)
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := summary(cl.ctx, cl.client, name)
			if err != nil {
				streams[i] = streamError{Name: name, Error: apiError(err)}
				return
			}
			streams[i] = streamOf(s)
		})
	}
	wg.Wait()
	return map[string]any{"streams": streams}, nil
}

type createStreamInput struct {
	Name       string `json:"name"`
	Mode       string `json:"mode"`
	ShardCount *int32 `json:"shardCount"`
}

func (c *Console) createStream(cl *call) (any, error) {
	var in createStreamInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	req := &kinesis.CreateStreamInput{StreamName: aws.String(in.Name), ShardCount: in.ShardCount}
	if in.Mode != "" {
		req.StreamModeDetails = &types.StreamModeDetails{StreamMode: types.StreamMode(in.Mode)}
	}
	if _, err := cl.client.CreateStream(cl.ctx, req); err != nil {
		return nil, err
	}
	s, err := summary(cl.ctx, cl.client, in.Name)
	if err != nil {
		return nil, err
	}
	return streamOf(s), nil
}

// streamPage is GET streams/{name}: the stream, its tags and consumers.
// TagsError and ConsumersError report a part the caller may not read (the
// rest is still shown).
type streamPage struct {
	Stream         streamJSON        `json:"stream"`
	Tags           map[string]string `json:"tags"`
	Consumers      []consumerJSON    `json:"consumers"`
	TagsError      *errorBody        `json:"tagsError,omitempty"`
	ConsumersError *errorBody        `json:"consumersError,omitempty"`
}

func (c *Console) getStream(cl *call) (any, error) {
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	page := streamPage{Stream: streamOf(s), Tags: map[string]string{}, Consumers: []consumerJSON{}}
	if tags, err := listTags(cl.ctx, cl.client, cl.param("name")); err != nil {
		page.TagsError = apiError(err)
	} else {
		page.Tags = tags
	}
	if cons, err := c.consumersOf(cl.ctx, cl.client, aws.ToString(s.StreamARN)); err != nil {
		page.ConsumersError = apiError(err)
	} else {
		page.Consumers = cons
	}
	return page, nil
}

type deleteStreamInput struct {
	EnforceConsumerDeletion bool `json:"enforceConsumerDeletion"`
}

func (c *Console) deleteStream(cl *call) (any, error) {
	var in deleteStreamInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	_, err := cl.client.DeleteStream(cl.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(cl.param("name")), EnforceConsumerDeletion: aws.Bool(in.EnforceConsumerDeletion)})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

type retentionInput struct {
	Hours int32 `json:"hours"`
}

// setRetention calls IncreaseStreamRetentionPeriod or
// DecreaseStreamRetentionPeriod, whichever moves the period to the hours
// asked (Increase when they are equal: the server judges).
func (c *Console) setRetention(cl *call) (any, error) {
	var in retentionInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	name := cl.param("name")
	s, err := summary(cl.ctx, cl.client, name)
	if err != nil {
		return nil, err
	}
	if in.Hours < aws.ToInt32(s.RetentionPeriodHours) {
		_, err = cl.client.DecreaseStreamRetentionPeriod(cl.ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(in.Hours)})
	} else {
		_, err = cl.client.IncreaseStreamRetentionPeriod(cl.ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(in.Hours)})
	}
	if err != nil {
		return nil, err
	}
	return streamAnswer(cl)
}

type modeInput struct {
	Mode string `json:"mode"`
}

func (c *Console) setMode(cl *call) (any, error) {
	var in modeInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	_, err = cl.client.UpdateStreamMode(cl.ctx, &kinesis.UpdateStreamModeInput{StreamARN: s.StreamARN, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamMode(in.Mode)}})
	if err != nil {
		return nil, err
	}
	return streamAnswer(cl)
}

type shardCountInput struct {
	Count int32 `json:"count"`
}

func (c *Console) setShardCount(cl *call) (any, error) {
	var in shardCountInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	_, err := cl.client.UpdateShardCount(cl.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(cl.param("name")), TargetShardCount: aws.Int32(in.Count), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		return nil, err
	}
	return streamAnswer(cl)
}

type tagsInput struct {
	Add    map[string]string `json:"add"`
	Remove []string          `json:"remove"`
}

func (c *Console) changeTags(cl *call) (any, error) {
	var in tagsInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	name := cl.param("name")
	if len(in.Add) > 0 {
		if _, err := cl.client.AddTagsToStream(cl.ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String(name), Tags: in.Add}); err != nil {
			return nil, err
		}
	}
	if len(in.Remove) > 0 {
		if _, err := cl.client.RemoveTagsFromStream(cl.ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String(name), TagKeys: in.Remove}); err != nil {
			return nil, err
		}
	}
	tags, err := listTags(cl.ctx, cl.client, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tags}, nil
}

// listTags reads every tag of the stream.
func listTags(ctx context.Context, client *sdkClient, name string) (map[string]string, error) {
	tags := map[string]string{}
	in := &kinesis.ListTagsForStreamInput{StreamName: aws.String(name)}
	for {
		out, err := client.ListTagsForStream(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, t := range out.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if !aws.ToBool(out.HasMoreTags) || len(out.Tags) == 0 {
			return tags, nil
		}
		in = &kinesis.ListTagsForStreamInput{StreamName: aws.String(name), ExclusiveStartTagKey: out.Tags[len(out.Tags)-1].Key}
	}
}

type encryptionInput struct {
	KeyID string `json:"keyId"`
}

// setEncryption starts encryption with the key given, or stops it (with
// the key in force, which StopStreamEncryption wants) for "".
func (c *Console) setEncryption(cl *call) (any, error) {
	var in encryptionInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	name := cl.param("name")
	if in.KeyID != "" {
		_, err := cl.client.StartStreamEncryption(cl.ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(name), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(in.KeyID)})
		if err != nil {
			return nil, err
		}
		return streamAnswer(cl)
	}
	s, err := summary(cl.ctx, cl.client, name)
	if err != nil {
		return nil, err
	}
	if s.EncryptionType == types.EncryptionTypeKms {
		if _, err := cl.client.StopStreamEncryption(cl.ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String(name), EncryptionType: types.EncryptionTypeKms, KeyId: s.KeyId}); err != nil {
			return nil, err
		}
	}
	return streamAnswer(cl)
}

type monitoringInput struct {
	Metrics []string `json:"metrics"`
}

// shardMetricNames are the shard-level metrics of enhanced monitoring.
var shardMetricNames = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds",
}

// setMonitoring enables the metrics asked (["ALL"] for all) and disables
// the others.
func (c *Console) setMonitoring(cl *call) (any, error) {
	var in monitoringInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	name := aws.String(cl.param("name"))
	all := slices.Contains(in.Metrics, string(types.MetricsNameAll))
	var enable, disable []types.MetricsName
	for _, m := range in.Metrics {
		enable = append(enable, types.MetricsName(m))
	}
	if !all {
		for _, m := range shardMetricNames {
			if !slices.Contains(in.Metrics, m) {
				disable = append(disable, types.MetricsName(m))
			}
		}
	}
	if len(enable) > 0 {
		if _, err := cl.client.EnableEnhancedMonitoring(cl.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: enable}); err != nil {
			return nil, err
		}
	}
	if len(disable) > 0 {
		if _, err := cl.client.DisableEnhancedMonitoring(cl.ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: disable}); err != nil {
			return nil, err
		}
	}
	return streamAnswer(cl)
}
