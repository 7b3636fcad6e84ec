package console

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/leaseview"
)

// The consumer applications' leases (package consumer's lease table in
// PostgreSQL), read with internal/leaseview, as "shoal leases" reads them.

// leaseJSON is one lease of GET applications/{app}.
type leaseJSON struct {
	Stream             string   `json:"stream,omitempty"`
	ShardID            string   `json:"shardId"`
	Owner              string   `json:"owner"`
	Counter            int64    `json:"counter"`
	Checkpoint         string   `json:"checkpoint"`
	SubSequenceNumber  int64    `json:"subSequenceNumber"`
	ExpiresAt          *string  `json:"expiresAt"`
	Expired            bool     `json:"expired"`
	UpdatedAt          *string  `json:"updatedAt"`
	LastRenewalAgoMs   int64    `json:"lastRenewalAgoMs"`
	MillisBehindLatest *int64   `json:"millisBehindLatest"`
	Parents            []string `json:"parents"`
}

func (c *Console) listApplications(cl *call) (any, error) {
	if c.leases == nil {
		return nil, notConfigured("The console has no lease database (start the server with --lease-database-url).")
	}
	apps, err := c.leases.Applications(cl.ctx)
	if err != nil {
		return nil, c.leaseFailure(err)
	}
	return map[string]any{"applications": apps}, nil
}

// leaseFailure answers a failure of the lease database: a missing table
// as such (404 ConsoleNotConfigured), anything else as 503
// ConsoleLeaseDatabase without its text, which is logged instead.
func (c *Console) leaseFailure(err error) error {
	switch {
	case errors.Is(err, leaseview.ErrNoTable):
		return notConfigured(err.Error() + " (check --lease-schema and --lease-table)")
	case errors.Is(err, context.Canceled):
		return err
	}
	c.log.Warn("console: lease database", zap.Error(err))
	return &consoleError{status: http.StatusServiceUnavailable, code: "ConsoleLeaseDatabase", message: "The lease database could not be read; the server's log says why."}
}

func (c *Console) getApplication(cl *call) (any, error) {
	if c.leases == nil {
		return nil, notConfigured("The console has no lease database (start the server with --lease-database-url).")
	}
	leases, now, err := c.leases.Leases(cl.ctx, cl.param("app"))
	if err != nil {
		return nil, c.leaseFailure(err)
	}
	var lags map[string]leaseview.Lag
	if stream := cl.query("stream"); stream != "" {
		lags = leaseview.Lags(cl.ctx, cl.client, stream, leases, leaseview.LagOptions{
			BeforeRead: func(ctx context.Context, shardID string) error {
				return c.pace.wait(ctx, paceKey(cl.account, stream, shardID))
			},
		})
	}
	out := make([]leaseJSON, 0, len(leases))
	for _, l := range leases {
		j := leaseJSON{
			Stream: l.Stream, ShardID: l.ShardID, Owner: l.Owner, Counter: l.Counter,
			Checkpoint: l.Checkpoint.SequenceNumber, SubSequenceNumber: l.Checkpoint.SubSequenceNumber,
			ExpiresAt: tsPtr(&l.ExpiresAt), Expired: l.Expired, UpdatedAt: tsPtr(&l.UpdatedAt),
			LastRenewalAgoMs: max(0, now.Sub(l.UpdatedAt).Milliseconds()),
			Parents:          append([]string{}, l.ParentShardIDs...),
		}
		if lag, ok := lags[l.Key()]; ok && lag.Known {
			ms := lag.Behind.Milliseconds()
			j.MillisBehindLatest = &ms
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		return out[i].ShardID < out[j].ShardID
	})
	return map[string]any{"leases": out}, nil
}
