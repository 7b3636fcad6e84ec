package wire

// This file holds the request and response shapes of the Kinesis operations
// shoal serves, with the member names of the Kinesis_20131202 model. Optional
// request members are pointers so that "absent" and "zero" differ, as the
// service's validation needs. The same structs serve JSON 1.1 and AWS CBOR
// 1.1: the CBOR codec reads the json tags.

// StreamRef carries the members every stream-scoped operation takes. StreamId
// is reserved by the model and ignored.
type StreamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
	StreamID   *string `json:"StreamId,omitempty"`
}

// StreamModeDetails names a capacity mode.
type StreamModeDetails struct {
	StreamMode string `json:"StreamMode"`
}

// HashKeyRange is a shard's inclusive range of hash keys, in decimal.
type HashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

// SequenceNumberRange is a shard's range of sequence numbers; the end is set
// once the shard is closed.
type SequenceNumberRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

// Shard describes one shard.
type Shard struct {
	ShardID               string              `json:"ShardId"`
	ParentShardID         *string             `json:"ParentShardId,omitempty"`
	AdjacentParentShardID *string             `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          HashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   SequenceNumberRange `json:"SequenceNumberRange"`
}

// ChildShard is returned by GetRecords at the end of a closed shard.
type ChildShard struct {
	ShardID      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange HashKeyRange `json:"HashKeyRange"`
}

// EnhancedMetrics lists shard-level metrics enabled on a stream.
type EnhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// Tag is a key/value pair.
type Tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

// WarmThroughput reports an on-demand stream's warm throughput.
type WarmThroughput struct {
	TargetMiBps  *int32 `json:"TargetMiBps,omitempty"`
	CurrentMiBps *int32 `json:"CurrentMiBps,omitempty"`
}

// StreamDescription is DescribeStream's result.
type StreamDescription struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	Shards                  []Shard            `json:"Shards"`
	HasMoreShards           bool               `json:"HasMoreShards"`
	RetentionPeriodHours    int32              `json:"RetentionPeriodHours"`
	StreamCreationTimestamp Timestamp          `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []EnhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          string             `json:"EncryptionType,omitempty"`
	KeyID                   *string            `json:"KeyId,omitempty"`
}

// StreamDescriptionSummary is DescribeStreamSummary's result.
type StreamDescriptionSummary struct {
	StreamName                 string             `json:"StreamName"`
	StreamARN                  string             `json:"StreamARN"`
	StreamStatus               string             `json:"StreamStatus"`
	StreamModeDetails          *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	RetentionPeriodHours       int32              `json:"RetentionPeriodHours"`
	StreamCreationTimestamp    Timestamp          `json:"StreamCreationTimestamp"`
	EnhancedMonitoring         []EnhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType             string             `json:"EncryptionType,omitempty"`
	KeyID                      *string            `json:"KeyId,omitempty"`
	OpenShardCount             int32              `json:"OpenShardCount"`
	ConsumerCount              int32              `json:"ConsumerCount"`
	MaxRecordSizeInKiB         int32              `json:"MaxRecordSizeInKiB"`
	RecordDistributionStrategy string             `json:"RecordDistributionStrategy,omitempty"`
	WarmThroughput             *WarmThroughput    `json:"WarmThroughput,omitempty"`
}

// StreamSummary is one entry of ListStreams' StreamSummaries.
type StreamSummary struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	StreamCreationTimestamp Timestamp          `json:"StreamCreationTimestamp"`
}

// Empty is the output of operations that return nothing.
type Empty struct{}

// CreateStreamInput is CreateStream's request.
type CreateStreamInput struct {
	StreamName                 *string            `json:"StreamName"`
	ShardCount                 *int32             `json:"ShardCount"`
	StreamModeDetails          *StreamModeDetails `json:"StreamModeDetails"`
	Tags                       map[string]string  `json:"Tags"`
	MaxRecordSizeInKiB         *int32             `json:"MaxRecordSizeInKiB"`
	WarmThroughputMiBps        *int32             `json:"WarmThroughputMiBps"`
	RecordDistributionStrategy *string            `json:"RecordDistributionStrategy"`
}

// DeleteStreamInput is DeleteStream's request.
type DeleteStreamInput struct {
	StreamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion"`
}

// DescribeStreamInput is DescribeStream's request.
type DescribeStreamInput struct {
	StreamRef
	Limit                 *int32  `json:"Limit"`
	ExclusiveStartShardID *string `json:"ExclusiveStartShardId"`
}

// DescribeStreamOutput is DescribeStream's response.
type DescribeStreamOutput struct {
	StreamDescription StreamDescription `json:"StreamDescription"`
}

// DescribeStreamSummaryInput is DescribeStreamSummary's request.
type DescribeStreamSummaryInput struct {
	StreamRef
}

// DescribeStreamSummaryOutput is DescribeStreamSummary's response.
type DescribeStreamSummaryOutput struct {
	StreamDescriptionSummary StreamDescriptionSummary `json:"StreamDescriptionSummary"`
}

// ListStreamsInput is ListStreams' request.
type ListStreamsInput struct {
	Limit                    *int32  `json:"Limit"`
	ExclusiveStartStreamName *string `json:"ExclusiveStartStreamName"`
	NextToken                *string `json:"NextToken"`
}

// ListStreamsOutput is ListStreams' response.
type ListStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []StreamSummary `json:"StreamSummaries"`
}

// ShardFilter narrows ListShards.
type ShardFilter struct {
	Type      *string    `json:"Type"`
	ShardID   *string    `json:"ShardId"`
	Timestamp *Timestamp `json:"Timestamp"`
}

// ListShardsInput is ListShards' request.
type ListShardsInput struct {
	StreamRef
	NextToken               *string      `json:"NextToken"`
	ExclusiveStartShardID   *string      `json:"ExclusiveStartShardId"`
	MaxResults              *int32       `json:"MaxResults"`
	StreamCreationTimestamp *Timestamp   `json:"StreamCreationTimestamp"`
	ShardFilter             *ShardFilter `json:"ShardFilter"`
}

// ListShardsOutput is ListShards' response.
type ListShardsOutput struct {
	Shards    []Shard `json:"Shards"`
	NextToken *string `json:"NextToken,omitempty"`
}

// PutRecordInput is PutRecord's request.
type PutRecordInput struct {
	StreamRef
	Data                      []byte  `json:"Data"`
	PartitionKey              *string `json:"PartitionKey"`
	ExplicitHashKey           *string `json:"ExplicitHashKey"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering"`
	DryRun                    *bool   `json:"DryRun"`
}

// PutRecordOutput is PutRecord's response.
type PutRecordOutput struct {
	ShardID        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType,omitempty"`
}

// PutRecordsRequestEntry is one record of a PutRecords request.
type PutRecordsRequestEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

// PutRecordsInput is PutRecords' request.
type PutRecordsInput struct {
	StreamRef
	Records []PutRecordsRequestEntry `json:"Records"`
	DryRun  *bool                    `json:"DryRun"`
}

// PutRecordsResultEntry is one record's outcome, aligned with the request.
type PutRecordsResultEntry struct {
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ShardID        string `json:"ShardId,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

// PutRecordsOutput is PutRecords' response.
type PutRecordsOutput struct {
	FailedRecordCount int32                   `json:"FailedRecordCount"`
	Records           []PutRecordsResultEntry `json:"Records"`
	EncryptionType    string                  `json:"EncryptionType,omitempty"`
}

// GetShardIteratorInput is GetShardIterator's request.
type GetShardIteratorInput struct {
	StreamRef
	ShardID                *string    `json:"ShardId"`
	ShardIteratorType      *string    `json:"ShardIteratorType"`
	StartingSequenceNumber *string    `json:"StartingSequenceNumber"`
	Timestamp              *Timestamp `json:"Timestamp"`
	DryRun                 *bool      `json:"DryRun"`
}

// GetShardIteratorOutput is GetShardIterator's response.
type GetShardIteratorOutput struct {
	ShardIterator string `json:"ShardIterator"`
}

// GetRecordsInput is GetRecords' request.
type GetRecordsInput struct {
	ShardIterator *string `json:"ShardIterator"`
	Limit         *int32  `json:"Limit"`
	StreamARN     *string `json:"StreamARN"`
	StreamID      *string `json:"StreamId"`
	DryRun        *bool   `json:"DryRun"`
}

// Record is one record as GetRecords returns it.
type Record struct {
	SequenceNumber              string    `json:"SequenceNumber"`
	ApproximateArrivalTimestamp Timestamp `json:"ApproximateArrivalTimestamp"`
	Data                        []byte    `json:"Data"`
	PartitionKey                string    `json:"PartitionKey"`
	EncryptionType              string    `json:"EncryptionType,omitempty"`
}

// GetRecordsOutput is GetRecords' response.
type GetRecordsOutput struct {
	Records            []Record     `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []ChildShard `json:"ChildShards,omitempty"`
}

// RetentionInput is the request of Increase- and DecreaseStreamRetentionPeriod.
type RetentionInput struct {
	StreamRef
	RetentionPeriodHours *int32 `json:"RetentionPeriodHours"`
}

// AddTagsToStreamInput is AddTagsToStream's request.
type AddTagsToStreamInput struct {
	StreamRef
	Tags map[string]string `json:"Tags"`
}

// RemoveTagsFromStreamInput is RemoveTagsFromStream's request.
type RemoveTagsFromStreamInput struct {
	StreamRef
	TagKeys []string `json:"TagKeys"`
}

// ListTagsForStreamInput is ListTagsForStream's request.
type ListTagsForStreamInput struct {
	StreamRef
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey"`
	Limit                *int32  `json:"Limit"`
}

// ListTagsForStreamOutput is ListTagsForStream's response.
type ListTagsForStreamOutput struct {
	Tags        []Tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

// TagResourceInput is TagResource's request.
type TagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
	StreamID    *string           `json:"StreamId"`
}

// UntagResourceInput is UntagResource's request.
type UntagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
	StreamID    *string  `json:"StreamId"`
}

// ListTagsForResourceInput is ListTagsForResource's request.
type ListTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN"`
	StreamID    *string `json:"StreamId"`
}

// ListTagsForResourceOutput is ListTagsForResource's response.
type ListTagsForResourceOutput struct {
	Tags []Tag `json:"Tags"`
}

// DescribeLimitsOutput is DescribeLimits' response.
type DescribeLimitsOutput struct {
	ShardLimit               int32 `json:"ShardLimit"`
	OpenShardCount           int32 `json:"OpenShardCount"`
	OnDemandStreamCount      int32 `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int32 `json:"OnDemandStreamCountLimit"`
}

// UpdateStreamModeInput is UpdateStreamMode's request.
type UpdateStreamModeInput struct {
	StreamARN           *string            `json:"StreamARN"`
	StreamID            *string            `json:"StreamId"`
	StreamModeDetails   *StreamModeDetails `json:"StreamModeDetails"`
	WarmThroughputMiBps *int32             `json:"WarmThroughputMiBps"`
}

// UpdateMaxRecordSizeInput is UpdateMaxRecordSize's request.
type UpdateMaxRecordSizeInput struct {
	StreamARN          *string `json:"StreamARN"`
	StreamID           *string `json:"StreamId"`
	MaxRecordSizeInKiB *int32  `json:"MaxRecordSizeInKiB"`
}

// UpdateStreamWarmThroughputInput is UpdateStreamWarmThroughput's request.
type UpdateStreamWarmThroughputInput struct {
	StreamRef
	WarmThroughputMiBps *int32 `json:"WarmThroughputMiBps"`
}

// UpdateStreamWarmThroughputOutput is UpdateStreamWarmThroughput's response.
type UpdateStreamWarmThroughputOutput struct {
	StreamARN      string         `json:"StreamARN"`
	StreamName     string         `json:"StreamName"`
	WarmThroughput WarmThroughput `json:"WarmThroughput"`
}

// UpdateStreamRecordDistributionStrategyInput is the request of
// UpdateStreamRecordDistributionStrategy.
type UpdateStreamRecordDistributionStrategyInput struct {
	StreamARN                  *string `json:"StreamARN"`
	StreamID                   *string `json:"StreamId"`
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy"`
}

// MinimumThroughputBillingCommitmentInput is UpdateAccountSettings' setting.
type MinimumThroughputBillingCommitmentInput struct {
	Status *string `json:"Status"`
}

// MinimumThroughputBillingCommitmentOutput reports the account setting.
type MinimumThroughputBillingCommitmentOutput struct {
	Status               string     `json:"Status"`
	StartedAt            *Timestamp `json:"StartedAt,omitempty"`
	EndedAt              *Timestamp `json:"EndedAt,omitempty"`
	EarliestAllowedEndAt *Timestamp `json:"EarliestAllowedEndAt,omitempty"`
}

// UpdateAccountSettingsInput is UpdateAccountSettings' request.
type UpdateAccountSettingsInput struct {
	MinimumThroughputBillingCommitment *MinimumThroughputBillingCommitmentInput `json:"MinimumThroughputBillingCommitment"`
}

// AccountSettingsOutput is the response of DescribeAccountSettings and
// UpdateAccountSettings.
type AccountSettingsOutput struct {
	MinimumThroughputBillingCommitment *MinimumThroughputBillingCommitmentOutput `json:"MinimumThroughputBillingCommitment,omitempty"`
}

// ErrorBody is the body of an error response.
type ErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

// SplitShardInput is SplitShard's request.
type SplitShardInput struct {
	StreamRef
	ShardToSplit       *string `json:"ShardToSplit"`
	NewStartingHashKey *string `json:"NewStartingHashKey"`
}

// MergeShardsInput is MergeShards' request.
type MergeShardsInput struct {
	StreamRef
	ShardToMerge         *string `json:"ShardToMerge"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge"`
}

// UpdateShardCountInput is UpdateShardCount's request.
type UpdateShardCountInput struct {
	StreamRef
	TargetShardCount *int32  `json:"TargetShardCount"`
	ScalingType      *string `json:"ScalingType"`
}

// UpdateShardCountOutput is UpdateShardCount's response.
type UpdateShardCountOutput struct {
	CurrentShardCount int32  `json:"CurrentShardCount"`
	TargetShardCount  int32  `json:"TargetShardCount"`
	StreamARN         string `json:"StreamARN"`
	StreamName        string `json:"StreamName"`
}
