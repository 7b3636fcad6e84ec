package prommetrics_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/prommetrics"
)

// The stored bytes and segments of each stream on the file engine.
func TestStreamSizes(t *testing.T) {
	srv := servertest.Start(t, server.Config{SegmentBytes: 4096})
	reg := prometheus.NewRegistry()
	prommetrics.RegisterStreamSizes(reg, srv.StreamSizes)
	metricsURL := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsURL.Close)
	c := srv.Client()
	ctx := context.Background()
	for _, name := range []string{"big", "empty"} {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("big"), PartitionKey: aws.String("k"), Data: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	got := scrape(t, metricsURL.URL)
	if b := got[`shoal_stream_stored_bytes{stream="big"}`]; b < 10_000 || got[`shoal_stream_segments{stream="big"}`] < 2 {
		t.Errorf("big: %v bytes in %v segments, want >= 10,000 in >= 2", b, got[`shoal_stream_segments{stream="big"}`])
	}
	if b := got[`shoal_stream_stored_bytes{stream="empty"}`]; b != 0 {
		t.Errorf("empty: %v bytes", b)
	}
}
