package prommetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalstream/shoal/server"
)

// RegisterStreamSizes adds, to reg, the storage each stream holds as
// sizes reports it at every scrape (server.Server.StreamSizes):
// shoal_stream_stored_bytes and shoal_stream_segments {stream}.
func RegisterStreamSizes(reg prometheus.Registerer, sizes func(context.Context) ([]server.StreamSize, error)) {
	reg.MustRegister(&sizeCollector{sizes: sizes,
		bytes: prometheus.NewDesc("shoal_stream_stored_bytes", "Bytes the shard logs of a stream hold on disk (file engine).", []string{"stream"}, nil),
		segs:  prometheus.NewDesc("shoal_stream_segments", "Segment files of the shard logs of a stream (file engine).", []string{"stream"}, nil),
	})
}

// sizeCollector asks for the sizes at each scrape.
type sizeCollector struct {
	sizes       func(context.Context) ([]server.StreamSize, error)
	bytes, segs *prometheus.Desc
}

func (c *sizeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.segs
}

func (c *sizeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sizes, err := c.sizes(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.bytes, err)
		return
	}
	seen := map[string]bool{}
	for _, s := range sizes {
		if seen[s.Stream] {
			continue // the same name in another account: the first (sorted) only
		}
		seen[s.Stream] = true
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes), s.Stream)
		ch <- prometheus.MustNewConstMetric(c.segs, prometheus.GaugeValue, float64(s.Segments), s.Stream)
	}
}
