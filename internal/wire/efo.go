package wire

// Shapes of the enhanced fan-out operations: stream consumers and
// SubscribeToShard.

// Consumer is one registered enhanced fan-out consumer, as
// RegisterStreamConsumer and ListStreamConsumers return it.
type Consumer struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp Timestamp `json:"ConsumerCreationTimestamp"`
}

// ConsumerDescription is DescribeStreamConsumer's description: a Consumer
// and the ARN of its stream.
type ConsumerDescription struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp Timestamp `json:"ConsumerCreationTimestamp"`
	StreamARN                 string    `json:"StreamARN"`
}

// ConsumerRef names a consumer by its ARN, or by its stream's ARN and its
// name (DescribeStreamConsumer, DeregisterStreamConsumer).
type ConsumerRef struct {
	ConsumerARN  *string `json:"ConsumerARN,omitempty"`
	ConsumerName *string `json:"ConsumerName,omitempty"`
	StreamARN    *string `json:"StreamARN,omitempty"`
	StreamID     *string `json:"StreamId,omitempty"`
}

// RegisterStreamConsumerInput is RegisterStreamConsumer's request.
type RegisterStreamConsumerInput struct {
	StreamARN    *string           `json:"StreamARN"`
	ConsumerName *string           `json:"ConsumerName"`
	StreamID     *string           `json:"StreamId,omitempty"`
	Tags         map[string]string `json:"Tags,omitempty"`
}

// RegisterStreamConsumerOutput is RegisterStreamConsumer's response.
type RegisterStreamConsumerOutput struct {
	Consumer Consumer `json:"Consumer"`
}

// DescribeStreamConsumerInput is DescribeStreamConsumer's request.
type DescribeStreamConsumerInput struct {
	ConsumerRef
}

// DescribeStreamConsumerOutput is DescribeStreamConsumer's response.
type DescribeStreamConsumerOutput struct {
	ConsumerDescription ConsumerDescription `json:"ConsumerDescription"`
}

// DeregisterStreamConsumerInput is DeregisterStreamConsumer's request.
type DeregisterStreamConsumerInput struct {
	ConsumerRef
}

// ListStreamConsumersInput is ListStreamConsumers' request.
type ListStreamConsumersInput struct {
	StreamARN               *string    `json:"StreamARN"`
	StreamID                *string    `json:"StreamId,omitempty"`
	MaxResults              *int32     `json:"MaxResults"`
	NextToken               *string    `json:"NextToken"`
	StreamCreationTimestamp *Timestamp `json:"StreamCreationTimestamp"`
}

// ListStreamConsumersOutput is ListStreamConsumers' response.
type ListStreamConsumersOutput struct {
	Consumers []Consumer `json:"Consumers"`
	NextToken *string    `json:"NextToken,omitempty"`
}

// StartingPosition is where a subscription starts reading a shard.
type StartingPosition struct {
	Type           *string    `json:"Type"`
	SequenceNumber *string    `json:"SequenceNumber"`
	Timestamp      *Timestamp `json:"Timestamp"`
}

// SubscribeToShardInput is SubscribeToShard's request.
type SubscribeToShardInput struct {
	ConsumerARN      *string           `json:"ConsumerARN"`
	ShardID          *string           `json:"ShardId"`
	StartingPosition *StartingPosition `json:"StartingPosition"`
	StreamID         *string           `json:"StreamId,omitempty"`
	DryRun           *bool             `json:"DryRun"`
}

// SubscribeToShardEvent is the payload of one SubscribeToShardEvent message
// of a SubscribeToShard event stream. ContinuationSequenceNumber is nil
// (absent) only in the last event of a closed shard, which carries
// ChildShards.
type SubscribeToShardEvent struct {
	Records                    []Record     `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []ChildShard `json:"ChildShards,omitempty"`
}
