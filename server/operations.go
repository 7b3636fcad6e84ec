package server

// operations is the table from X-Amz-Target operation names to handlers,
// built once by New.
func (s *Server) operations() map[string]opFunc {
	return map[string]opFunc{
		"CreateStream":                           op(s.createStream),
		"DeleteStream":                           op(s.deleteStream),
		"DescribeStream":                         op(s.describeStream),
		"DescribeStreamSummary":                  op(s.describeStreamSummary),
		"ListStreams":                            op(s.listStreams),
		"ListShards":                             op(s.listShards),
		"PutRecord":                              op(s.putRecord),
		"PutRecords":                             op(s.putRecords),
		"GetShardIterator":                       op(s.getShardIterator),
		"GetRecords":                             op(s.getRecords),
		"IncreaseStreamRetentionPeriod":          op(s.increaseRetention),
		"DecreaseStreamRetentionPeriod":          op(s.decreaseRetention),
		"AddTagsToStream":                        op(s.addTagsToStream),
		"RemoveTagsFromStream":                   op(s.removeTagsFromStream),
		"ListTagsForStream":                      op(s.listTagsForStream),
		"TagResource":                            op(s.tagResource),
		"UntagResource":                          op(s.untagResource),
		"ListTagsForResource":                    op(s.listTagsForResource),
		"DescribeLimits":                         op(s.describeLimits),
		"UpdateStreamMode":                       op(s.updateStreamMode),
		"UpdateMaxRecordSize":                    op(s.updateMaxRecordSize),
		"UpdateStreamWarmThroughput":             op(s.updateStreamWarmThroughput),
		"UpdateStreamRecordDistributionStrategy": op(s.updateStreamRecordDistributionStrategy),
		"DescribeAccountSettings":                op(s.describeAccountSettings),
		"UpdateAccountSettings":                  op(s.updateAccountSettings),
		"SplitShard":                             op(s.splitShard),
		"MergeShards":                            op(s.mergeShards),
		"UpdateShardCount":                       op(s.updateShardCount),
		"RegisterStreamConsumer":                 op(s.registerStreamConsumer),
		"DescribeStreamConsumer":                 op(s.describeStreamConsumer),
		"ListStreamConsumers":                    op(s.listStreamConsumers),
		"DeregisterStreamConsumer":               op(s.deregisterStreamConsumer),
		"PutResourcePolicy":                      op(s.putResourcePolicy),
		"GetResourcePolicy":                      op(s.getResourcePolicy),
		"DeleteResourcePolicy":                   op(s.deleteResourcePolicy),
		"StartStreamEncryption":                  op(s.startStreamEncryption),
		"StopStreamEncryption":                   op(s.stopStreamEncryption),
		"EnableEnhancedMonitoring":               op(s.enableEnhancedMonitoring),
		"DisableEnhancedMonitoring":              op(s.disableEnhancedMonitoring),
		// SubscribeToShard streams its response: serveHTTP calls
		// subscribeToShard itself (api_subscribe.go).
	}
}
