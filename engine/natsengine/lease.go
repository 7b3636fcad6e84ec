package natsengine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/engine"
)

// Leases live in the catalog bucket under "lease.<hex name>" (outside the
// catalog watch's "stream.>"), as JSON {holder, expiresMs}, changed by the
// same compare-and-set as stream records. Expiry is judged by the clock of
// the process that wants the lease (Config.Now), so clocks that disagree by
// more than a lease's length can let two holders overlap; engine.Leases
// asks only for a hint.

var _ engine.Leases = (*Engine)(nil)

const leaseKeyPre = "lease."

type leaseRecord struct {
	Holder    string `json:"holder"`
	ExpiresMs int64  `json:"expiresMs"`
}

func leaseKey(name string) string { return leaseKeyPre + hex.EncodeToString([]byte(name)) }

// AcquireLease implements engine.Leases.
func (e *Engine) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	c := e.cat
	if err := c.closedErr("acquire lease"); err != nil {
		return false, err
	}
	if holder == "" || ttl <= 0 {
		return false, errors.New("natsengine: acquire lease: empty holder or ttl <= 0")
	}
	key := leaseKey(name)
	cur, err := c.get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("natsengine: acquire lease %s: %w", name, err)
	}
	now := e.cfg.Now()
	var expect uint64
	if cur != nil && !isMarker(cur) {
		var rec leaseRecord
		if err := json.Unmarshal(cur.Data, &rec); err != nil {
			return false, fmt.Errorf("natsengine: lease %s (revision %d): %w: %w", name, cur.Seq, engine.ErrCorrupt, err)
		}
		if rec.Holder != holder && now.UnixMilli() < rec.ExpiresMs {
			return false, nil
		}
		expect = cur.Seq
	}
	data, err := json.Marshal(leaseRecord{Holder: holder, ExpiresMs: now.Add(ttl).UnixMilli()})
	if err != nil {
		return false, err
	}
	_, err = c.write(ctx, "acquire lease", key, data, expect, false)
	if errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrExists) {
		return false, nil // another process wrote it first
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseLease implements engine.Leases.
func (e *Engine) ReleaseLease(ctx context.Context, name, holder string) error {
	c := e.cat
	if err := c.closedErr("release lease"); err != nil {
		return err
	}
	key := leaseKey(name)
	cur, err := c.get(ctx, key)
	if err != nil || cur == nil || isMarker(cur) {
		return err
	}
	var rec leaseRecord
	if json.Unmarshal(cur.Data, &rec) != nil || rec.Holder != holder {
		return nil
	}
	_, err = c.write(ctx, "release lease", key, nil, cur.Seq, true)
	if errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrNotFound) {
		return nil // taken over or gone meanwhile
	}
	return err
}
