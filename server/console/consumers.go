package console

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// consumerJSON is API.md's Consumer.
type consumerJSON struct {
	Name          string             `json:"name"`
	ARN           string             `json:"arn"`
	Status        string             `json:"status"`
	Created       *string            `json:"created"`
	Subscriptions []subscriptionJSON `json:"subscriptions"`
}

type subscriptionJSON struct {
	ShardID string `json:"shardId"`
	Since   string `json:"since"`
}

// consumerOf describes a consumer with its open subscriptions, which only
// the server knows (Server.Subscriptions): the console asks for those of
// consumers an authorized call of the caller returned.
func (c *Console) consumerOf(k types.Consumer) consumerJSON {
	out := consumerJSON{
		Name:          aws.ToString(k.ConsumerName),
		ARN:           aws.ToString(k.ConsumerARN),
		Status:        string(k.ConsumerStatus),
		Created:       tsPtr(k.ConsumerCreationTimestamp),
		Subscriptions: []subscriptionJSON{},
	}
	for _, s := range c.srv.Subscriptions(out.ARN) {
		out.Subscriptions = append(out.Subscriptions, subscriptionJSON{ShardID: s.ShardID, Since: ts(s.Since)})
	}
	return out
}

// consumersOf lists the consumers of the stream with ARN arn.
func (c *Console) consumersOf(ctx context.Context, client *sdkClient, arn string) ([]consumerJSON, error) {
	out := []consumerJSON{}
	in := &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn)}
	for {
		res, err := client.ListStreamConsumers(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, k := range res.Consumers {
			out = append(out, c.consumerOf(k))
		}
		if res.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListStreamConsumersInput{StreamARN: aws.String(arn), NextToken: res.NextToken}
	}
}

func (c *Console) listConsumers(cl *call) (any, error) {
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	cons, err := c.consumersOf(cl.ctx, cl.client, aws.ToString(s.StreamARN))
	if err != nil {
		return nil, err
	}
	return map[string]any{"consumers": cons}, nil
}

type registerInput struct {
	Name string `json:"name"`
}

func (c *Console) registerConsumer(cl *call) (any, error) {
	var in registerInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	out, err := cl.client.RegisterStreamConsumer(cl.ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: s.StreamARN, ConsumerName: aws.String(in.Name)})
	if err != nil {
		return nil, err
	}
	return c.consumerOf(*out.Consumer), nil
}

func (c *Console) deregisterConsumer(cl *call) (any, error) {
	if err := decodeBody(cl.w, cl.r, &struct{}{}); err != nil {
		return nil, err
	}
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	_, err = cl.client.DeregisterStreamConsumer(cl.ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: s.StreamARN, ConsumerName: aws.String(cl.param("consumer"))})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
