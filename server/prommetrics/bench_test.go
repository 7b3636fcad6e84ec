package prommetrics_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/internal/testutil/benchpair"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/prommetrics"
)

// BenchmarkPutRecordsMetrics measures the cost of the metrics on the hot
// path: PutRecords of 500 records of 100 B through the SDK to two servers
// on the memory engine, one reporting to Prometheus and one to no metrics,
// alternating calls between them so that the machine's drifting load falls
// on both alike. metrics-cost-% is the time of the first over the second's,
// minus one. Run:
//
//	go test -run '^$' -bench BenchmarkPutRecordsMetrics -benchtime 3000x ./server/prommetrics/
func BenchmarkPutRecordsMetrics(b *testing.B) {
	start := func(m server.Metrics) func() error {
		eng := memengine.New(memengine.Config{})
		b.Cleanup(func() { _ = eng.Close() })
		srv := servertest.Start(b, server.Config{Engine: eng, Metrics: m, Logger: zap.NewNop()})
		c := srv.Client()
		ctx := context.Background()
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(4)}); err != nil {
			b.Fatal(err)
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
		data := make([]byte, 100)
		for i := range 500 {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("pk-", i)), Data: data})
		}
		return func() error {
			_, err := c.PutRecords(ctx, in)
			return err
		}
	}
	with, without := start(prommetrics.New(prometheus.NewRegistry())), start(nil)
	benchpair.Report(b, benchpair.Time(b, without, with), "metrics-cost-%", "without-us/call", "with-us/call")
}
