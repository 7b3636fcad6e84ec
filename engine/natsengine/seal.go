package natsengine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// This file holds Seal, which waits for the sealed stream to settle, and
// Unseal.

// settleInterval is the spacing of the two stream states Seal compares to
// decide that the publishes accepted before the seal have all committed.
const settleInterval = 50 * time.Millisecond

// Seal seals the JetStream stream (irreversibly), waits until the stream
// has settled, and returns the end after its last batch.
func (h *handle) Seal(ctx context.Context) (engine.Position, error) {
	if err := h.check("seal"); err != nil {
		return engine.Position{}, err
	}
	ls := h.ls
	e := ls.e
	si, err := ls.info(ctx, "seal")
	if err != nil {
		return engine.Position{}, err
	}
	deadline := time.Now().Add(e.retryBudget())
	for delay := 20 * time.Millisecond; !si.Config.Sealed; delay = min(2*delay, time.Second) {
		cfg := si.Config
		cfg.Sealed = true
		uctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		_, uerr := e.js.UpdateStream(uctx, cfg)
		cancel()
		if uerr == nil {
			break
		}
		if errors.Is(uerr, jetstream.ErrStreamNotFound) {
			return engine.Position{}, ls.lost("seal", uerr)
		}
		// The update may have been applied although its reply was lost (a
		// retry with the old config is then refused): read the stream's
		// actual config before trying again.
		if si, err = ls.info(ctx, "seal"); err != nil {
			return engine.Position{}, err
		}
		if si.Config.Sealed {
			break
		}
		if !transient(uerr) || ctx.Err() != nil || time.Now().After(deadline) {
			return engine.Position{}, ls.lost("seal", uerr)
		}
		if err := e.sleep(ctx, delay); err != nil {
			return engine.Position{}, ls.lost("seal", err)
		}
	}
	ls.observeSealed()
	end, err := ls.settle(ctx)
	if err != nil {
		return engine.Position{}, err
	}
	_ = e.nc.Publish(ls.notice, []byte(noticeSeal+strconv.FormatUint(end.Offset, 10)))
	return end, nil
}

// settle waits until the sealed stream's state is final: publishes the
// leader accepted just before the seal may still be committing when the
// seal's update returns. It asks the leader until two answers
// settleInterval apart agree on the last sequence and the leader, with
// every online replica current (after the retry budget it gives up waiting
// for lagging replicas). It returns the end after the last batch.
func (ls *logState) settle(ctx context.Context) (engine.Position, error) {
	deadline := time.Now().Add(ls.e.retryBudget())
	var prev *jetstream.StreamInfo
	for {
		si, err := ls.info(ctx, "seal")
		if err != nil {
			return engine.Position{}, err
		}
		if prev != nil && si.State.LastSeq == prev.State.LastSeq && leaderOf(si) == leaderOf(prev) &&
			(replicasCurrent(si) || time.Now().After(deadline)) {
			return engine.Position{Offset: si.State.LastSeq + 1}, nil
		}
		prev = si
		if err := ls.e.sleep(ctx, settleInterval); err != nil {
			return engine.Position{}, ls.lost("seal", err)
		}
	}
}

func leaderOf(si *jetstream.StreamInfo) string {
	if si.Cluster == nil {
		return ""
	}
	return si.Cluster.Leader
}

// replicasCurrent reports whether the stream has a leader and every online
// replica has all of the leader's log.
func replicasCurrent(si *jetstream.StreamInfo) bool {
	if si.Cluster == nil {
		return true
	}
	if si.Cluster.Leader == "" {
		return false
	}
	for _, r := range si.Cluster.Replicas {
		if r != nil && !r.Offline && (!r.Current || r.Lag > 0) {
			return false
		}
	}
	return true
}

// Unseal fails: a sealed JetStream stream stays sealed.
func (h *handle) Unseal(context.Context) error {
	if err := h.check("unseal"); err != nil {
		return err
	}
	return fmt.Errorf("natsengine: unseal %v: %w", h.ls.id, engine.ErrIrreversible)
}
