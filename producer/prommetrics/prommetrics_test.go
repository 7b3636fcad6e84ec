package prommetrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/producer"
	"github.com/shoalstream/shoal/producer/prommetrics"
	"github.com/shoalstream/shoal/server"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func TestMetrics(t *testing.T) {
	srv := servertest.Start(t, server.Config{Logger: zap.NewNop()})
	c := srv.Client()
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("m"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := prommetrics.New(reg, "m")
	p, err := producer.New(c, producer.Config{StreamName: "m", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	m.RegisterBuffer(p)
	for i := range 100 {
		if _, err := p.Put(context.Background(), string(rune('a'+i%26)), []byte("data")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP shoal_producer_buffered_records User records put and not yet resolved.
# TYPE shoal_producer_buffered_records gauge
shoal_producer_buffered_records{stream="m"} 0
# HELP shoal_producer_open_shards Open shards in the producer's shard map.
# TYPE shoal_producer_open_shards gauge
shoal_producer_open_shards{stream="m"} 2
# HELP shoal_producer_user_records_put_total User records stored by Kinesis.
# TYPE shoal_producer_user_records_put_total counter
shoal_producer_user_records_put_total{stream="m"} 100
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shoal_producer_buffered_records",
		"shoal_producer_open_shards", "shoal_producer_user_records_put_total"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n < 10 {
		t.Errorf("%d series gathered, %v", n, err)
	}
}
