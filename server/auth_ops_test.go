package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

// Every operation the server dispatches is authorized: a principal without
// a policy is denied each of them, with a request valid enough that the
// same call by an administrator is not refused for its input.
func TestAuthEveryOperation(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, server.Config{}, admin, nobody)
	ctx := ctxWithTimeout(t)
	ad := e.as(admin)
	_, err := ad.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)})
	noErr(t, err, "CreateStream")
	arn := streamARNIn(acctA, "s")
	reg, err := ad.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("c")})
	noErr(t, err, "RegisterStreamConsumer")
	carn := aws.ToString(reg.Consumer.ConsumerARN)
	it, err := ad.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	noErr(t, err, "GetShardIterator")
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kinesis:GetRecords","Resource":` + q(arn) + `}]}`

	// Each operation's request, and the resource it is authorized against.
	calls := map[string]struct{ body, resource string }{
		"CreateStream":                           {`{"StreamName":"new","ShardCount":1}`, streamARNIn(acctA, "new")},
		"DeleteStream":                           {`{"StreamName":"s"}`, arn},
		"DescribeStream":                         {`{"StreamName":"s"}`, arn},
		"DescribeStreamSummary":                  {`{"StreamName":"s"}`, arn},
		"ListStreams":                            {`{}`, "*"},
		"ListShards":                             {`{"StreamName":"s"}`, arn},
		"PutRecord":                              {`{"StreamName":"s","PartitionKey":"k","Data":"eA=="}`, arn},
		"PutRecords":                             {`{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"eA=="}]}`, arn},
		"GetShardIterator":                       {`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`, arn},
		"GetRecords":                             {`{"ShardIterator":` + q(aws.ToString(it.ShardIterator)) + `}`, arn},
		"IncreaseStreamRetentionPeriod":          {`{"StreamName":"s","RetentionPeriodHours":48}`, arn},
		"DecreaseStreamRetentionPeriod":          {`{"StreamName":"s","RetentionPeriodHours":24}`, arn},
		"AddTagsToStream":                        {`{"StreamName":"s","Tags":{"a":"b"}}`, arn},
		"RemoveTagsFromStream":                   {`{"StreamName":"s","TagKeys":["a"]}`, arn},
		"ListTagsForStream":                      {`{"StreamName":"s"}`, arn},
		"TagResource":                            {`{"ResourceARN":` + q(carn) + `,"Tags":{"a":"b"}}`, carn},
		"UntagResource":                          {`{"ResourceARN":` + q(arn) + `,"TagKeys":["a"]}`, arn},
		"ListTagsForResource":                    {`{"ResourceARN":` + q(arn) + `}`, arn},
		"DescribeLimits":                         {`{}`, "*"},
		"UpdateStreamMode":                       {`{"StreamARN":` + q(arn) + `,"StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`, "*"},
		"UpdateMaxRecordSize":                    {`{"StreamARN":` + q(arn) + `,"MaxRecordSizeInKiB":2048}`, arn},
		"UpdateStreamWarmThroughput":             {`{"StreamName":"s","WarmThroughputMiBps":10}`, arn},
		"UpdateStreamRecordDistributionStrategy": {`{"StreamARN":` + q(arn) + `,"RecordDistributionStrategy":"AUTO"}`, arn},
		"DescribeAccountSettings":                {`{}`, "*"},
		"UpdateAccountSettings":                  {`{"MinimumThroughputBillingCommitment":{"Status":"DISABLED"}}`, "*"},
		"SplitShard":                             {`{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"100"}`, arn},
		"MergeShards":                            {`{"StreamName":"s","ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001"}`, arn},
		"UpdateShardCount":                       {`{"StreamName":"s","TargetShardCount":3,"ScalingType":"UNIFORM_SCALING"}`, "*"},
		"RegisterStreamConsumer":                 {`{"StreamARN":` + q(arn) + `,"ConsumerName":"c2"}`, arn},
		"DescribeStreamConsumer":                 {`{"ConsumerARN":` + q(carn) + `}`, carn},
		"ListStreamConsumers":                    {`{"StreamARN":` + q(arn) + `}`, arn},
		"DeregisterStreamConsumer":               {`{"ConsumerARN":` + q(carn) + `}`, carn},
		"PutResourcePolicy":                      {`{"ResourceARN":` + q(arn) + `,"Policy":` + q(policy) + `}`, arn},
		"GetResourcePolicy":                      {`{"ResourceARN":` + q(carn) + `}`, carn},
		"DeleteResourcePolicy":                   {`{"ResourceARN":` + q(arn) + `}`, arn},
		"StartStreamEncryption":                  {`{"StreamName":"s","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`, arn},
		"StopStreamEncryption":                   {`{"StreamName":"s","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`, arn},
		"EnableEnhancedMonitoring":               {`{"StreamName":"s","ShardLevelMetrics":["ALL"]}`, "*"},
		"DisableEnhancedMonitoring":              {`{"StreamName":"s","ShardLevelMetrics":["IncomingBytes"]}`, "*"},
		"SubscribeToShard":                       {`{"ConsumerARN":` + q(carn) + `,"ShardId":"shardId-000000000000","StartingPosition":{"Type":"TRIM_HORIZON"}}`, carn},
	}
	ops := e.srv.OperationNames()
	slices.Sort(ops)
	for _, op := range ops {
		c, ok := calls[op]
		if !ok {
			t.Errorf("operation %s has no authorization case here: add one", op)
			continue
		}
		a := e.signedCall(nobody, op, c.body, time.Time{}, nil)
		want := denied(userARN(acctA, "nobody"), op, c.resource)
		if a.code != "AccessDeniedException" || a.message != want || a.status != 400 {
			t.Errorf("%s by a principal without a policy: %d %s: %q\nwant AccessDeniedException: %q", op, a.status, a.code, a.message, want)
		}
	}
	// The same requests pass validation: the administrator's are not
	// refused for their input. (Run after the denials: some change state.)
	for _, op := range ops {
		c, ok := calls[op]
		if !ok || op == "DeleteStream" || op == "DeregisterStreamConsumer" {
			continue
		}
		a := e.signedCall(admin, op, c.body, time.Time{}, nil)
		if strings.HasSuffix(a.code, "ValidationException") || a.code == "SerializationException" || a.code == "AccessDeniedException" {
			t.Errorf("%s by the administrator: %d %s: %s", op, a.status, a.code, a.message)
		}
	}
}
