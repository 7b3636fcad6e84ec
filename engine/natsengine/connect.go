package natsengine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// This file holds the connection: the server checks and handlers Open
// installs, the reconnect signal of the catalog watchers, the routing of
// replies to publishes and Direct Gets, and nats-server version comparison.

// setup checks the server and creates what the engine needs on the
// connection: its handlers, the catalog bucket and its subscriptions.
func (e *Engine) setup(ctx context.Context) error {
	nc := e.nc
	if !nc.IsConnected() { // nats.RetryOnFailedConnect in Options
		return errors.New("not connected to NATS")
	}
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, minServerVersion) {
		return fmt.Errorf("nats-server %s at %s is older than %s, the oldest this engine accepts (it has the fixes that followed Jepsen's report of lost acknowledged writes); upgrade the NATS servers",
			v, nc.ConnectedUrlRedacted(), minServerVersion)
	}
	if !nc.HeadersSupported() {
		return errors.New("the NATS server does not support message headers")
	}
	if mp := nc.MaxPayload(); mp < RecommendedMaxPayload {
		e.lg.Warn("NATS max_payload is below the recommended 8MB: PutRecords batches larger than it fail",
			zap.Int64("max_payload", mp))
	}
	prevClosed, prevRe := nc.Opts.ClosedCB, nc.Opts.ReconnectedCB
	nc.SetClosedHandler(func(c *nats.Conn) {
		close(e.connGone)
		if prevClosed != nil {
			prevClosed(c)
		}
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		e.onReconnect(c)
		if prevRe != nil {
			prevRe(c)
		}
	})
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	e.js = js
	if err := e.retry(ctx, func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	}); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("JetStream is not enabled on the NATS server or for this account: %w", err)
		}
		return fmt.Errorf("JetStream account info: %w", err)
	}
	e.replyPre = nc.NewInbox() + "."
	rsub, err := nc.Subscribe(e.replyPre+"*", e.onReply)
	if err != nil {
		return err
	}
	// The handler only hands messages on; never drop a reply for want of
	// buffer space (a dropped reply is a publish whose outcome is unknown).
	if err := rsub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	if _, err := nc.Subscribe(e.subjPre+".n.>", e.onNotice); err != nil {
		return err
	}
	cat, err := openCatalog(ctx, e)
	if err != nil {
		return err
	}
	e.cat = cat
	return nil
}

// onReconnect wakes the catalog watchers (changes may have been missed)
// and checks the new server's version.
func (e *Engine) onReconnect(c *nats.Conn) {
	e.mu.Lock()
	close(e.reconnected)
	e.reconnected = make(chan struct{})
	e.mu.Unlock()
	if v := c.ConnectedServerVersion(); !versionAtLeast(v, minServerVersion) {
		e.lg.Error("reconnected to a nats-server older than the oldest this engine accepts; upgrade it",
			zap.String("version", v), zap.String("minimum", minServerVersion), zap.String("server", c.ConnectedUrlRedacted()))
	}
}

// reconnectedChan returns the channel closed at the next reconnect.
func (e *Engine) reconnectedChan() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reconnected
}

// onReply routes a reply to the request waiting for it.
func (e *Engine) onReply(m *nats.Msg) {
	token := m.Subject[len(e.replyPre):]
	e.replyMu.Lock()
	ch := e.replies[token]
	e.replyMu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m:
	default: // more replies than the request expects: not ours to keep
	}
}

// newReply returns a reply subject whose messages go to ch (which holds
// up to n of them), and a function that releases it.
func (e *Engine) newReply(n int) (subject string, ch chan *nats.Msg, release func()) {
	token := strconv.FormatUint(e.replySeq.Add(1), 36)
	ch = make(chan *nats.Msg, n)
	e.replyMu.Lock()
	e.replies[token] = ch
	e.replyMu.Unlock()
	return e.replyPre + token, ch, func() {
		e.replyMu.Lock()
		delete(e.replies, token)
		e.replyMu.Unlock()
	}
}

// versionAtLeast reports whether the server version have (such as
// "2.12.3", "v2.15.3" or "2.13.0-beta.1") is want or newer. A pre-release
// is older than its release; an unparsable version is too old.
func versionAtLeast(have, want string) bool {
	h, hpre, ok1 := parseVersion(have)
	w, wpre, ok2 := parseVersion(want)
	if !ok1 || !ok2 {
		return false
	}
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	// Same numbers: a release is newer than any of its pre-releases.
	return !hpre || wpre
}

// parseVersion splits "v1.2.3-pre+build" into its numbers and whether it is
// a pre-release.
func parseVersion(v string) (nums [3]uint64, pre, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v, pre = v[:i], true
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nums, false, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nums, false, false
		}
		nums[i] = n
	}
	return nums, pre, true
}
