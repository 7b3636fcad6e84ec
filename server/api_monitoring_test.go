package server_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/server"
)

func TestEnhancedMonitoring(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	all := []types.MetricsName{"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
		"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds"}
	out, err := e.c.EnableEnhancedMonitoring(e.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"IncomingRecords"}})
	noErr(t, err, "EnableEnhancedMonitoring")
	if len(out.CurrentShardLevelMetrics) != 0 || !slices.Equal(out.DesiredShardLevelMetrics, []types.MetricsName{"IncomingRecords"}) || aws.ToString(out.StreamName) != "s" {
		t.Fatalf("enable IncomingRecords: %+v", out)
	}
	out, err = e.c.EnableEnhancedMonitoring(e.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamARN: aws.String(arn("s")), ShardLevelMetrics: []types.MetricsName{"ALL"}})
	noErr(t, err, "EnableEnhancedMonitoring ALL")
	if !slices.Equal(out.DesiredShardLevelMetrics, all) || !slices.Equal(out.CurrentShardLevelMetrics, []types.MetricsName{"IncomingRecords"}) {
		t.Fatalf("enable ALL: %+v", out)
	}
	dis, err := e.c.DisableEnhancedMonitoring(e.ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"IncomingBytes", "IteratorAgeMilliseconds"}})
	noErr(t, err, "DisableEnhancedMonitoring")
	rest := []types.MetricsName{"IncomingRecords", "OutgoingBytes", "OutgoingRecords", "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded"}
	if !slices.Equal(dis.DesiredShardLevelMetrics, rest) || !slices.Equal(dis.CurrentShardLevelMetrics, all) {
		t.Fatalf("disable two: %+v", dis)
	}
	d, err := e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStreamSummary")
	if got := d.StreamDescriptionSummary.EnhancedMonitoring[0].ShardLevelMetrics; !slices.Equal(got, rest) {
		t.Fatalf("described %v", got)
	}
	_, err = e.c.DisableEnhancedMonitoring(e.ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"ALL"}})
	noErr(t, err, "DisableEnhancedMonitoring ALL")
	d, err = e.c.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	noErr(t, err, "DescribeStreamSummary")
	if got := d.StreamDescriptionSummary.EnhancedMonitoring[0].ShardLevelMetrics; len(got) != 0 {
		t.Fatalf("described %v after disabling all", got)
	}
	_, err = e.c.EnableEnhancedMonitoring(e.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{"Bogus"}})
	wantCode(t, err, "ValidationException")
	_, err = e.c.EnableEnhancedMonitoring(e.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("s"), ShardLevelMetrics: []types.MetricsName{}})
	wantCode(t, err, "ValidationException")
	_, err = e.c.EnableEnhancedMonitoring(e.ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("nope"), ShardLevelMetrics: []types.MetricsName{"ALL"}})
	wantCode(t, err, "ResourceNotFoundException")
}
