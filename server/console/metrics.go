package console

import (
	"strconv"
)

// metrics answers a stream's recent metrics from the History, once the
// caller has shown it may read the stream's summary (DescribeStreamSummary,
// which also names the shard-level metrics the stream enabled).
func (c *Console) metrics(cl *call) (any, error) {
	if c.cfg.History == nil {
		return nil, notConfigured("The console keeps no metrics history (Config.History is not set).")
	}
	minutes := 15
	if s := cl.query("minutes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 60 {
			return nil, badRequest("minutes must be a whole number from 1 to 60.")
		}
		minutes = n
	}
	s, err := summary(cl.ctx, cl.client, cl.param("name"))
	if err != nil {
		return nil, err
	}
	return c.cfg.History.snapshot(streamOf(s).Name, minutes, streamOf(s).Monitoring), nil
}
