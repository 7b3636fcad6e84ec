package wire

// PutResourcePolicyInput is PutResourcePolicy's request.
type PutResourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN"`
	Policy      *string `json:"Policy"`
}

// ResourcePolicyInput is the request of GetResourcePolicy and
// DeleteResourcePolicy.
type ResourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN"`
}

// GetResourcePolicyOutput is GetResourcePolicy's response.
type GetResourcePolicyOutput struct {
	Policy string `json:"Policy"`
}

// StreamEncryptionInput is the request of StartStreamEncryption and
// StopStreamEncryption.
type StreamEncryptionInput struct {
	StreamRef
	EncryptionType *string `json:"EncryptionType"`
	KeyID          *string `json:"KeyId"`
}

// EnhancedMonitoringInput is the request of EnableEnhancedMonitoring and
// DisableEnhancedMonitoring.
type EnhancedMonitoringInput struct {
	StreamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// EnhancedMonitoringOutput is their response.
type EnhancedMonitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}
