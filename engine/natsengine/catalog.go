package natsengine

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// catalog is the engine.Catalog of an Engine: the KV bucket <Prefix>_META.
// Its reads go through the bucket stream's leader (the STREAM.MSG.GET API),
// so that a read after a write, in any process, sees it; its writes are
// publishes with Nats-Expected-Last-Subject-Sequence (the compare-and-set)
// and a Nats-Msg-Id, resent on ambiguous failures so that their outcome
// becomes known. The catalog keeps no state of its own.
type catalog struct {
	e      *Engine
	bucket string // <Prefix>_META
	stream string // KV_<bucket>, the JetStream stream behind it
	pre    string // $KV.<bucket>., the subject prefix of its keys
	kv     jetstream.KeyValue
}

var _ engine.Catalog = (*catalog)(nil)

// Keys of the bucket, and the KV operation header of delete markers.
const (
	accountKey   = "account"
	streamKeyPre = "stream."
	kvOpHeader   = "KV-Operation"
)

// streamKey is the key of a stream name's record: names hold '.', which
// KV keys take as token separators, so the name is hex-encoded.
func streamKey(name string) string { return streamKeyPre + hex.EncodeToString([]byte(name)) }

// streamKeyName returns the stream name of a key, if it is a stream key.
func streamKeyName(key string) (string, bool) {
	h, ok := strings.CutPrefix(key, streamKeyPre)
	if !ok {
		return "", false
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// openCatalog creates the bucket (its stream, with the configuration
// nats.go's KV uses, but AllowDirect off so that nothing reads a lagging
// follower through it) or binds an existing one.
func openCatalog(ctx context.Context, e *Engine) (*catalog, error) {
	c := &catalog{e: e, bucket: e.cfg.Prefix + "_META"}
	c.stream = "KV_" + c.bucket
	c.pre = "$KV." + c.bucket + "."
	cfg := jetstream.StreamConfig{
		Name:              c.stream,
		Description:       "shoal catalog",
		Subjects:          []string{c.pre + ">"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          e.cfg.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dupWindow,
		Discard:           jetstream.DiscardNew,
		Metadata:          map[string]string{metaPrefix: e.cfg.Prefix},
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		_, err := e.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // made by another version or with other replicas: use it as it is
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create catalog bucket %s: %w", c.bucket, err)
	}
	err = e.retry(ctx, func(ctx context.Context) error {
		var err error
		c.kv, err = e.js.KeyValue(ctx, c.bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bind catalog bucket %s: %w", c.bucket, err)
	}
	return c, nil
}

// get returns the latest message of key (a value or a delete marker)
// through the leader, or nil if the key was never written.
func (c *catalog) get(ctx context.Context, key string) (*storedMsg, error) {
	return c.e.leaderGet(ctx, c.stream, msgGetRequest{LastFor: c.pre + key})
}

// isMarker reports whether m is a delete (or purge) marker.
func isMarker(m *storedMsg) bool {
	switch m.header().Get(kvOpHeader) {
	case "DEL", "PURGE":
		return true
	}
	return false
}

// msgID returns the Nats-Msg-Id of m.
func msgID(m *storedMsg) string { return m.header().Get(jetstream.MsgIDHeader) }

func (c *catalog) closedErr(op string) error {
	if c.e.closed.Load() {
		return errClosed(op)
	}
	return nil
}

// Streams lists every stream record. It walks the bucket's stream keys in
// sequence order through the leader, one message per request (the bucket
// keeps one message per key).
func (c *catalog) Streams(ctx context.Context) ([]engine.VersionedStream, error) {
	if err := c.closedErr("streams"); err != nil {
		return nil, err
	}
	latest := map[string]*storedMsg{}
	for seq := uint64(1); ; {
		m, err := c.e.leaderGet(ctx, c.stream, msgGetRequest{Seq: seq, NextFor: c.pre + streamKeyPre + ">"})
		if err != nil {
			return nil, fmt.Errorf("natsengine: streams: %w", err)
		}
		if m == nil {
			break
		}
		if old := latest[m.Subject]; old == nil || old.Seq < m.Seq {
			latest[m.Subject] = m
		}
		seq = m.Seq + 1
	}
	out := make([]engine.VersionedStream, 0, len(latest))
	for subj, m := range latest {
		name, ok := streamKeyName(strings.TrimPrefix(subj, c.pre))
		if !ok || isMarker(m) {
			continue
		}
		meta, err := decodeStream(name, m)
		if err != nil {
			return nil, err
		}
		out = append(out, engine.VersionedStream{Meta: meta, Version: m.Seq})
	}
	return out, nil
}

func decodeStream(name string, m *storedMsg) (engine.StreamMeta, error) {
	var meta engine.StreamMeta
	if err := json.Unmarshal(m.Data, &meta); err != nil {
		return engine.StreamMeta{}, fmt.Errorf("natsengine: stream record %q (revision %d): %w: %w", name, m.Seq, engine.ErrCorrupt, err)
	}
	if meta.Key() != name {
		return engine.StreamMeta{}, fmt.Errorf("natsengine: stream record %q (revision %d) names %q: %w", name, m.Seq, meta.Key(), engine.ErrCorrupt)
	}
	return meta, nil
}

// Stream returns the record of name and its version (the KV revision).
func (c *catalog) Stream(ctx context.Context, name string) (engine.StreamMeta, uint64, error) {
	if err := c.closedErr("stream " + strconv.Quote(name)); err != nil {
		return engine.StreamMeta{}, 0, err
	}
	if name == "" {
		return engine.StreamMeta{}, 0, fmt.Errorf("natsengine: stream %q: %w", name, engine.ErrNotFound)
	}
	m, err := c.get(ctx, streamKey(name))
	if err != nil {
		return engine.StreamMeta{}, 0, fmt.Errorf("natsengine: stream %q: %w", name, err)
	}
	if m == nil || isMarker(m) {
		return engine.StreamMeta{}, 0, fmt.Errorf("natsengine: stream %q: %w", name, engine.ErrNotFound)
	}
	meta, err := decodeStream(name, m)
	if err != nil {
		return engine.StreamMeta{}, 0, err
	}
	return meta, m.Seq, nil
}

// PutStream stores m if its stored revision is expect.
func (c *catalog) PutStream(ctx context.Context, m engine.StreamMeta, expect uint64) (uint64, error) {
	op := "put stream " + strconv.Quote(m.Key())
	if err := c.closedErr(op); err != nil {
		return 0, err
	}
	if m.Name == "" {
		return 0, errors.New("natsengine: put stream: empty name")
	}
	data, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("natsengine: %s: %w", op, err)
	}
	return c.write(ctx, op, streamKey(m.Key()), data, expect, false)
}

// DeleteStream writes a delete marker for name if its stored revision is
// expect.
func (c *catalog) DeleteStream(ctx context.Context, name string, expect uint64) error {
	op := "delete stream " + strconv.Quote(name)
	if err := c.closedErr(op); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("natsengine: %s: %w", op, engine.ErrNotFound)
	}
	key := streamKey(name)
	cur, err := c.get(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("natsengine: %s: %w", op, err)
	case cur == nil || isMarker(cur):
		return fmt.Errorf("natsengine: %s: %w", op, engine.ErrNotFound)
	case cur.Seq != expect:
		return fmt.Errorf("natsengine: %s: %w: expected version %d, stored %d", op, engine.ErrConflict, expect, cur.Seq)
	}
	_, err = c.write(ctx, op, key, nil, expect, true)
	return err
}

// Account returns the account record, or a zero record and 0.
func (c *catalog) Account(ctx context.Context) (engine.AccountMeta, uint64, error) {
	if err := c.closedErr("account"); err != nil {
		return engine.AccountMeta{}, 0, err
	}
	m, err := c.get(ctx, accountKey)
	if err != nil {
		return engine.AccountMeta{}, 0, fmt.Errorf("natsengine: account: %w", err)
	}
	if m == nil || isMarker(m) {
		return engine.AccountMeta{}, 0, nil
	}
	var a engine.AccountMeta
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return engine.AccountMeta{}, 0, fmt.Errorf("natsengine: account record (revision %d): %w: %w", m.Seq, engine.ErrCorrupt, err)
	}
	return a, m.Seq, nil
}

// PutAccount stores the account record if its stored revision is expect.
func (c *catalog) PutAccount(ctx context.Context, a engine.AccountMeta, expect uint64) (uint64, error) {
	if err := c.closedErr("put account"); err != nil {
		return 0, err
	}
	data, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("natsengine: put account: %w", err)
	}
	return c.write(ctx, "put account", accountKey, data, expect, false)
}

// write stores data under key (a delete marker if del) if the key's
// revision is expect (0: the key holds no value), and returns the new
// revision. The publish carries one Nats-Msg-Id for all its sends: a send
// whose reply was lost is answered, when sent again, as a duplicate with
// its revision. While the outcome is unknown write reads the key back and
// sends again, until an answer, ctx's end, the engine's close or the
// deduplication window; only then does it fail with an error that does not
// say whether the write happened (it wraps "outcome unknown").
func (c *catalog) write(ctx context.Context, op, key string, data []byte, expect uint64, del bool) (uint64, error) {
	id := c.e.newMsgID()
	exp := expect
	start := time.Now()
	for round := 0; ; round++ {
		msg := &nats.Msg{Subject: c.pre + key, Header: nats.Header{}, Data: data}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Header.Set(jetstream.ExpectedStreamHeader, c.stream)
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(exp, 10))
		if del {
			msg.Header.Set(kvOpHeader, "DEL")
		}
		ack, _, err := c.e.publish(ctx, msg)
		if err == nil {
			if ack.Stream != c.stream || ack.Seq == 0 {
				return 0, fmt.Errorf("natsengine: %s: unexpected ack: stream %q, sequence %d", op, ack.Stream, ack.Seq)
			}
			return ack.Seq, nil
		}
		if code := apiCode(err); code == codeWrongLastSeq || code == codeWrongLastSeqR {
			// Rejected: none of this write's sends was stored (a stored one
			// would have been answered as a duplicate), unless the
			// deduplication window passed; the read tells.
			cur, gerr := c.get(ctx, key)
			if gerr != nil {
				return 0, fmt.Errorf("natsengine: %s: %w (then: %w)", op, err, gerr)
			}
			if cur != nil && msgID(cur) == id && bytes.Equal(cur.Data, data) {
				return cur.Seq, nil
			}
			missing := cur == nil || isMarker(cur)
			switch {
			case del && missing:
				return 0, fmt.Errorf("natsengine: %s: %w", op, engine.ErrNotFound)
			case expect == 0 && missing && round < 100:
				// A deleted key: create over its marker.
				exp = 0
				if cur != nil {
					exp = cur.Seq
				}
				continue
			case expect == 0 && !missing:
				return 0, fmt.Errorf("natsengine: %s: %w: stored version %d", op, engine.ErrExists, cur.Seq)
			}
			stored := uint64(0)
			if !missing {
				stored = cur.Seq
			}
			return 0, fmt.Errorf("natsengine: %s: %w: expected version %d, stored %d", op, engine.ErrConflict, expect, stored)
		}
		if errors.Is(err, errUnknownOutcome) && ctx.Err() == nil && !c.e.closed.Load() && time.Since(start) < dupWindow {
			if cur, gerr := c.get(ctx, key); gerr == nil && cur != nil && msgID(cur) == id {
				return cur.Seq, nil
			}
			continue // send again: a stored earlier send answers as a duplicate
		}
		if errors.Is(err, engine.ErrClosed) {
			return 0, err
		}
		return 0, fmt.Errorf("natsengine: %s: %w", op, err)
	}
}

// watch starts a watch of the stream keys' changes from now on. The watch
// lives until ctx ends (nats.go ties the subscription to the context it was
// made with), so each attempt has no timeout of its own: a request without
// an answer waits until ctx ends.
func (c *catalog) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	deadline := time.Now().Add(c.e.retryBudget())
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		w, err := c.kv.Watch(ctx, streamKeyPre+">", jetstream.UpdatesOnly())
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return w, err
		}
		if err := c.e.sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// WatchCatalog returns a channel of the names of stream records changed
// from now on, by any process: it follows the bucket with a KV watch. It
// sends "" when changes may have been missed (after a reconnect, a
// restarted watch, or when the receiver fell behind: the engine never
// waits for the receiver), and is closed when ctx ends or the engine
// closes.
func (e *Engine) WatchCatalog(ctx context.Context) (<-chan string, error) {
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil, errClosed("watch catalog")
	}
	e.wg.Add(1)
	e.mu.Unlock()
	// ctx, ended also by Close, is the lifetime of the watch.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.ctx, cancel)
	w, err := e.cat.watch(ctx)
	if err != nil {
		stop()
		cancel()
		e.wg.Done()
		if e.closed.Load() {
			return nil, errClosed("watch catalog")
		}
		return nil, fmt.Errorf("natsengine: watch catalog: %w", err)
	}
	out := make(chan string, 64)
	go e.cat.forward(ctx, w, out, func() { stop(); cancel() })
	return out, nil
}

// forward passes the names of changed records from w to out until ctx
// ends (the caller's, or Close), restarting w if it ends; then it calls
// done.
func (c *catalog) forward(ctx context.Context, w jetstream.KeyWatcher, out chan<- string, done func()) {
	e := c.e
	defer e.wg.Done()
	defer close(out)
	defer done()
	defer func() { _ = w.Stop() }()
	resync := false // a "" is due
	reconnected := e.reconnectedChan()
	for {
		var send chan<- string
		if resync {
			send = out
		}
		select {
		case <-ctx.Done():
			return
		case send <- "":
			resync = false
		case <-reconnected:
			reconnected = e.reconnectedChan()
			resync = true
		case ent, ok := <-w.Updates():
			if !ok {
				// The watch's subscription ended: start another.
				for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
					nw, err := c.watch(ctx)
					if err == nil {
						w = nw
						break
					}
					e.lg.Debug("catalog watch restart failed")
					if e.sleep(ctx, delay) != nil {
						return
					}
				}
				resync = true
				continue
			}
			if ent == nil || resync {
				continue // the initial-values marker; or a "" that covers it is due
			}
			name, ok := streamKeyName(ent.Key())
			if !ok {
				continue
			}
			select {
			case out <- name:
			default:
				resync = true
			}
		}
	}
}
