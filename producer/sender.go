package producer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// batch is what one pipeline sends in one PutRecords call: consecutive
// Kinesis records of its shard. A call carries the batches of several
// shards; a pipeline has at most one batch in flight.
type batch struct {
	pl      *pipeline
	recs    []*krecord
	bytes   int
	entries []types.PutRecordsResultEntry // the call's answer for recs, when err is nil
	err     error                         // the call's error
}

// sendQueue holds the batches waiting for a sender, in order.
type sendQueue struct {
	mu     sync.Mutex // guards q and closed
	cond   sync.Cond
	q      []*batch
	closed bool
}

func newSendQueue() *sendQueue {
	s := &sendQueue{}
	s.cond.L = &s.mu
	return s
}

func (s *sendQueue) push(b *batch) {
	s.mu.Lock()
	s.q = append(s.q, b)
	s.mu.Unlock()
	s.cond.Signal()
}

func (s *sendQueue) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// take waits for batches and returns as many of them as fit in one call of
// at most maxEntries records and maxBytes bytes (always at least one), or
// nil once the queue is closed and empty.
func (s *sendQueue) take(maxEntries, maxBytes int, dst []*batch) []*batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.q) == 0 && !s.closed {
		s.cond.Wait()
	}
	if len(s.q) == 0 {
		return nil
	}
	n, bytes := 0, 0
	rest := s.q[:0]
	for _, b := range s.q {
		if len(dst) == 0 || (n+len(b.recs) <= maxEntries && bytes+b.bytes <= maxBytes) {
			dst = append(dst, b)
			n += len(b.recs)
			bytes += b.bytes
			continue
		}
		rest = append(rest, b)
	}
	clear(s.q[len(rest):])
	s.q = rest
	return dst
}

// sender makes PutRecords calls until the send queue is closed.
func (p *Producer) sender() {
	var bs []*batch
	var entries []types.PutRecordsRequestEntry
	for {
		bs = p.sendq.take(p.cfg.CollectionMaxCount, p.cfg.CollectionMaxBytes, bs[:0])
		if bs == nil {
			return
		}
		entries = p.send(bs, entries[:0])
		clear(bs)
	}
}

// noSDKRetries turns off the SDK's own retries for PutRecords: the producer
// retries per record, per shard and within RecordTTL itself.
func noSDKRetries(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// send makes one PutRecords call for bs and hands each batch its answer.
func (p *Producer) send(bs []*batch, entries []types.PutRecordsRequestEntry) []types.PutRecordsRequestEntry {
	for _, b := range bs {
		for _, kr := range b.recs {
			e := types.PutRecordsRequestEntry{Data: kr.rec.Data, PartitionKey: aws.String(kr.rec.PartitionKey)}
			if kr.rec.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(kr.rec.ExplicitHashKey)
			}
			entries = append(entries, e)
		}
	}
	in := &kinesis.PutRecordsInput{Records: entries}
	if p.cfg.StreamARN != "" {
		in.StreamARN = aws.String(p.cfg.StreamARN)
	}
	if p.cfg.StreamName != "" {
		in.StreamName = aws.String(p.cfg.StreamName)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.RequestTimeout)
	start := time.Now()
	out, err := p.client.PutRecords(ctx, in, noSDKRetries)
	cancel()
	failed := 0
	if err == nil && len(out.Records) != len(entries) {
		err = fmt.Errorf("PutRecords answered %d entries for %d records", len(out.Records), len(entries))
	}
	if err == nil {
		if out.FailedRecordCount != nil {
			failed = int(*out.FailedRecordCount)
		}
		off := 0
		for _, b := range bs {
			b.entries = out.Records[off : off+len(b.recs)]
			off += len(b.recs)
		}
	} else {
		for _, b := range bs {
			b.err = err
		}
	}
	p.m.PutRecordsCall(time.Since(start), len(entries), failed, err)
	for _, b := range bs {
		b.pl.results <- b // never blocks: one batch in flight per pipeline
		b.pl.signal()
	}
	clear(entries)
	return entries
}

// callbackQueue feeds OnResult on one goroutine.
type callbackQueue struct {
	mu     sync.Mutex // guards q and closed
	q      []*Pending
	closed bool
	wake   chan struct{}
}

func newCallbackQueue() *callbackQueue {
	return &callbackQueue{wake: make(chan struct{}, 1)}
}

func (c *callbackQueue) push(rs []*Pending) {
	c.mu.Lock()
	c.q = append(c.q, rs...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *callbackQueue) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// runCallbacks calls OnResult for every delivered record, in order, and
// then releases the record's buffer room.
func (p *Producer) runCallbacks() {
	var spare []*Pending
	for {
		<-p.cbq.wake
		for {
			p.cbq.mu.Lock()
			rs, closed := p.cbq.q, p.cbq.closed
			if len(rs) == 0 {
				p.cbq.mu.Unlock()
				if closed {
					return
				}
				break
			}
			p.cbq.q = spare[:0] // double buffering: spare is not rs
			p.cbq.mu.Unlock()
			for _, r := range rs {
				p.cfg.OnResult(r.result())
			}
			p.release(rs)
			clear(rs)
			spare = rs
		}
	}
}
