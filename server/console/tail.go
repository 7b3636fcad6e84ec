package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
)

// The live tail: Server-Sent Events of the records put after it started.
//
// Every shard followed has a goroutine of its own (owned by the tail's
// request, which Close ends and waits for) that reads it with paced
// GetRecords calls and, once it has caught up, waits for the shard's log to
// change (Server.ShardChanged, taken before each read so that no append
// goes unnoticed) rather than polling on a timer. When a shard ends, its
// children are followed from their start once every followed parent has
// ended.

// keepAliveEvery is how often a quiet tail sends a comment line, so that
// proxies and the browser keep the connection.
const keepAliveEvery = 15 * time.Second

// tailEvent is what a shard's goroutine reports to the tail's writer.
type tailEvent struct {
	rec      *recordJSON
	err      error
	endedID  string // the shard ended...
	children []types.ChildShard
}

// tailer is one tail's state, owned by its request's goroutine (the
// shards' goroutines only send events).
type tailer struct {
	c        *Console
	cl       *call
	stream   string
	arn      string
	key      string
	ctx      context.Context
	events   chan tailEvent
	wg       sync.WaitGroup
	followed map[string]bool // shards followed, ever
	ended    map[string]bool // followed shards that ended
}

// enter registers a request that Close must wait for (a tail), unless
// Close has begun.
func (c *Console) enter() (leave func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	c.wg.Add(1)
	return c.wg.Done, true
}

func (c *Console) tail(cl *call) (any, error) {
	name, shard, key := cl.param("name"), cl.query("shard"), cl.query("key")
	s, err := summary(cl.ctx, cl.client, name)
	if err != nil {
		return nil, err
	}
	starts := []string{shard}
	if shard == "" {
		shards, err := allShards(cl.ctx, cl.client, name)
		if err != nil {
			return nil, err
		}
		starts = starts[:0]
		for _, sh := range shards {
			if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
				starts = append(starts, aws.ToString(sh.ShardId))
			}
		}
	}
	// The first iterators before the event stream starts: their errors
	// are answered as any other.
	iters := make([]string, len(starts))
	for i, id := range starts {
		if iters[i], err = c.iterator(cl.ctx, cl.client, name, &shardPos{ID: id, Type: string(types.ShardIteratorTypeLatest)}); err != nil {
			return nil, err
		}
	}
	leave, ok := c.enter()
	if !ok {
		return nil, &consoleError{status: http.StatusServiceUnavailable, code: "ServiceUnavailable", message: "The console is shutting down."}
	}
	defer leave()
	ctx, cancel := context.WithCancel(cl.ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()

	h := cl.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	cl.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(cl.w)
	if err := rc.Flush(); err != nil {
		return nil, nil //nolint:nilerr // the browser went away: nothing to answer
	}
	t := &tailer{c: c, cl: cl, stream: name, arn: aws.ToString(s.StreamARN), key: key, ctx: ctx,
		events: make(chan tailEvent, 64), followed: map[string]bool{}, ended: map[string]bool{}}
	for i, id := range starts {
		t.follow(id, iters[i])
	}
	err = t.write(rc)
	cancel()
	t.wg.Wait()
	if err != nil {
		c.log.Debug("console: tail ended", zap.String("stream", name), zap.Error(err))
	}
	return nil, nil
}

// write sends the followers' events until the tail ends: the browser went
// away, Close, or an error (sent as an error event first).
func (t *tailer) write(rc *http.ResponseController) error {
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(t.cl.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	for {
		select {
		case <-t.ctx.Done():
			return t.ctx.Err()
		case <-keepAlive.C:
			if _, err := fmt.Fprint(t.cl.w, ": keep-alive\n\n"); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		case ev := <-t.events:
			switch {
			case ev.err != nil:
				if t.ctx.Err() != nil {
					return t.ctx.Err()
				}
				_, body, internal := describe(ev.err)
				if internal {
					t.c.log.Warn("console: tail failed", zap.String("stream", t.stream), zap.Error(ev.err))
				}
				if err := send("error", body); err != nil {
					return err
				}
				return ev.err
			case ev.rec != nil:
				if err := send("record", ev.rec); err != nil {
					return err
				}
			default:
				t.shardEnded(ev.endedID, ev.children)
			}
		}
	}
}

// shardEnded follows the children of a shard that ended whose followed
// parents have all ended.
func (t *tailer) shardEnded(id string, children []types.ChildShard) {
	t.ended[id] = true
	for _, ch := range children {
		cid := aws.ToString(ch.ShardId)
		if t.followed[cid] {
			continue
		}
		if slices.ContainsFunc(ch.ParentShards, func(p string) bool { return t.followed[p] && !t.ended[p] }) {
			continue
		}
		t.follow(cid, "")
	}
}

// follow starts the goroutine of a shard, at iter ("" for the shard's
// start).
func (t *tailer) follow(id, iter string) {
	t.followed[id] = true
	t.wg.Go(func() {
		if err := t.readShard(id, iter); err != nil && t.ctx.Err() == nil {
			t.emit(tailEvent{err: err})
		}
	})
}

// emit hands an event to the writer, unless the tail ended.
func (t *tailer) emit(ev tailEvent) bool {
	select {
	case t.events <- ev:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// readShard reads a shard until it ends (reporting its children) or the
// tail ends.
func (t *tailer) readShard(id, iter string) error {
	c, client := t.c, t.cl.client
	pos := &shardPos{ID: id, Type: string(types.ShardIteratorTypeLatest)}
	if iter == "" {
		pos.Type = string(types.ShardIteratorTypeTrimHorizon)
		var err error
		if iter, err = c.iterator(t.ctx, client, t.stream, pos); err != nil {
			return err
		}
	}
	pk := paceKey(t.cl.account, t.stream, id)
	caughtUp := true
	for {
		// Taken before the read: an append after it closes the channel.
		// The hook is asked only for this shard, whose iterator the
		// caller's authorized GetShardIterator just gave.
		var changed <-chan struct{}
		if caughtUp {
			var err error
			if changed, err = c.srv.ShardChanged(t.arn, id); err != nil {
				changed = nil // the read below answers in the server's words
			}
		}
		out, err := c.pacedGetRecords(t.ctx, client, pk, iter, maxLimit)
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			if iter, err = c.iterator(t.ctx, client, t.stream, pos); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		var items []item // fresh: the writer reads the records sent
		for _, r := range out.Records {
			items = userRecords(items, id, r, 0, t.key)
		}
		for i := range items {
			if items[i].match && !t.emit(tailEvent{rec: &items[i].rec}) {
				return nil
			}
		}
		if n := len(out.Records); n > 0 {
			pos.Type, pos.Seq = string(types.ShardIteratorTypeAfterSequenceNumber), aws.ToString(out.Records[n-1].SequenceNumber)
		}
		if out.NextShardIterator == nil {
			t.emit(tailEvent{endedID: id, children: out.ChildShards})
			return nil
		}
		iter = *out.NextShardIterator
		caughtUp = aws.ToInt64(out.MillisBehindLatest) == 0
		if len(out.Records) == 0 && changed != nil {
			select {
			case <-changed:
			case <-t.ctx.Done():
				return nil
			}
		}
	}
}
