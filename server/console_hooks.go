package server

import (
	"slices"
	"strings"
	"time"
)

// Hooks for the web console (package server/console), which otherwise
// reaches the server only through the Kinesis API. None of them authorizes
// anything: the console calls them only for a stream or consumer that an
// authorized API call of the signed-in principal has just reached.

// AuthEnabled reports whether the server verifies requests
// (Config.AuthConfigFile): every request must then be signed by a key of
// the auth configuration.
func (s *Server) AuthEnabled() bool { return s.auth.Load() != nil }

// Region is the region in the server's ARNs (Config.Region).
func (s *Server) Region() string { return s.cfg.Region }

// AccountID is the server's own account (Config.AccountID): streams of
// unauthenticated requests belong to it.
func (s *Server) AccountID() string { return s.cfg.AccountID }

// KeyAccount returns the account of the principal that owns the access key
// id in the auth configuration in force, and false when authentication is
// off or no principal has the key. It reveals nothing secret.
func (s *Server) KeyAccount(accessKeyID string) (string, bool) {
	a := s.auth.Load()
	if a == nil {
		return "", false
	}
	p, _, ok := a.conf.Key(accessKeyID)
	if !ok {
		return "", false
	}
	return p.AccountID, true
}

// closedSignal is an already closed channel.
var closedSignal = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// ShardChanged returns a channel closed at the next change of a shard of
// the stream with ARN streamARN: a durable append to its log, its closing
// by a reshard, or the stream's deletion (and, at the latest, the server's
// Shutdown). Take it before reading the shard (GetRecords), so that an
// append landing after the read always wakes the waiter; a shard already
// closed answers an already closed channel.
//
// It authorizes nothing: call it only for a shard whose iterator the caller
// just obtained with an authorized GetShardIterator. An unknown stream or
// shard is a ResourceNotFoundException.
//
// Until the channel is closed, one goroutine of the server waits for the
// shard's signals on the caller's behalf; it ends at that change or at
// Shutdown, whether or not the caller still waits.
func (s *Server) ShardChanged(streamARN, shardID string) (<-chan struct{}, error) {
	r, err := s.parseStreamARN(streamARN)
	if err != nil {
		return nil, err
	}
	st := s.current(s.key(r))
	if st == nil {
		return nil, s.notFound(r)
	}
	st.mu.RLock()
	sh := st.shardByID(shardID)
	st.mu.RUnlock()
	if sh == nil {
		return nil, ErrResourceNotFound.With("Shard %s in stream %s under account %s does not exist", shardID, st.name, st.account)
	}
	// Both signals are taken before closed is read: a closing published
	// after the read closes lifecycle; an append (or the seal that
	// precedes a closing) closes changed.
	changed, lifecycle := sh.log.Changed(), sh.lifecycle()
	if sh.closed.Load() || s.current(s.key(r)) != st {
		return closedSignal, nil
	}
	out := make(chan struct{})
	if !s.goBackground(func() {
		defer close(out)
		select {
		case <-changed:
		case <-lifecycle:
		case <-s.done:
		}
	}) {
		return closedSignal, nil // shutting down
	}
	return out, nil
}

// SubscriptionInfo describes one running SubscribeToShard event stream of
// an enhanced fan-out consumer.
type SubscriptionInfo struct {
	// ShardID is the shard the subscription reads.
	ShardID string
	// Since is when the subscription started, by the server's clock.
	Since time.Time
}

// Subscriptions returns the running subscriptions of the consumer with ARN
// consumerARN, by shard ID. It authorizes nothing: the console calls it
// for consumers that an authorized ListStreamConsumers returned.
func (s *Server) Subscriptions(consumerARN string) []SubscriptionInfo {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	var out []SubscriptionInfo
	for k, sub := range s.subs.m {
		if k.consumerARN == consumerARN {
			out = append(out, SubscriptionInfo{ShardID: k.shardID, Since: sub.started})
		}
	}
	slices.SortFunc(out, func(a, b SubscriptionInfo) int { return strings.Compare(a.ShardID, b.ShardID) })
	return out
}
