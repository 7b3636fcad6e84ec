package console

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The data viewer: pages of records from a shard or the whole stream.
//
// A page reads every shard of the cursor that is ready (active, or pending
// with its parents read to their end) once, and children of shards that
// ended in the same page in up to maxRounds rounds, then merges what it
// read by arrival time. A shard that has more to read than it returned
// (MillisBehindLatest above 0, or a full answer) holds back the other
// shards' records that arrived after its last one read, so that records of
// different shards come out in arrival order across pages too. Parents come
// before their children: a child's records arrive after its parents closed,
// and ties go to the lower shard ID, which a parent always has. The cursor
// then records, per shard, the last user record shown (or filtered out),
// so nothing is skipped nor shown twice.

const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxRounds bounds the rounds of reads of one page.
	maxRounds = 3
	// readConcurrency bounds the shards of one page read at once.
	readConcurrency = 8
)

// recordsPage is the answer of GET records.
type recordsPage struct {
	Records            []recordJSON `json:"records"`
	Cursor             string       `json:"cursor"`
	CaughtUp           bool         `json:"caughtUp"`
	MillisBehindLatest int64        `json:"millisBehindLatest"`
}

func (c *Console) getRecords(cl *call) (any, error) {
	name := cl.param("name")
	q := cl.r.URL.Query()
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return nil, badRequest("limit must be a whole number from 1 to %d.", maxLimit)
		}
		limit = n
	}
	var cur *cursor
	if s := q.Get("cursor"); s != "" {
		for _, p := range []string{"from", "at", "seq", "shard"} {
			if q.Has(p) {
				return nil, badRequest("Pass a cursor without %s: it holds the position.", p)
			}
		}
		var err error
		if cur, err = c.unseal(s, name); err != nil {
			return nil, err
		}
	} else {
		var err error
		if cur, err = c.startCursor(cl, name); err != nil {
			return nil, err
		}
	}
	return c.readPage(cl, cur, q.Get("key"), limit)
}

// startCursor makes the cursor of a read's first page from its position
// parameters.
func (c *Console) startCursor(cl *call, name string) (*cursor, error) {
	q := cl.r.URL.Query()
	from := q.Get("from")
	if from == "" {
		from = string(types.ShardIteratorTypeTrimHorizon)
	}
	pos := &shardPos{State: stateActive, Type: from}
	switch types.ShardIteratorType(from) {
	case types.ShardIteratorTypeTrimHorizon, types.ShardIteratorTypeLatest:
	case types.ShardIteratorTypeAtTimestamp:
		t, err := time.Parse(time.RFC3339Nano, q.Get("at"))
		if err != nil {
			return nil, badRequest("from=AT_TIMESTAMP needs at=<RFC 3339 time>.")
		}
		pos.At = t.UnixMilli()
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		pos.Seq = q.Get("seq")
		if pos.Seq == "" {
			return nil, badRequest("from=%s needs seq=<sequence number>.", from)
		}
	default:
		return nil, badRequest("from must be TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER.")
	}
	cur := &cursor{Stream: name}
	if shard := q.Get("shard"); shard != "" {
		pos.ID = shard
		cur.Single, cur.Shards = true, []*shardPos{pos}
		return cur, nil
	}
	shards, err := allShards(cl.ctx, cl.client, name)
	if err != nil {
		return nil, err
	}
	switch types.ShardIteratorType(from) {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		// The shard that holds the number, then its descendants.
		id, err := c.locate(cl, name, shards, pos)
		if err != nil {
			return nil, err
		}
		pos.ID = id
		cur.Shards = []*shardPos{pos}
		return cur, nil
	case types.ShardIteratorTypeLatest:
		for _, s := range shards {
			if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
				p := *pos
				p.ID = aws.ToString(s.ShardId)
				cur.Shards = append(cur.Shards, &p)
			}
		}
		return cur, nil
	}
	// TRIM_HORIZON or AT_TIMESTAMP: every shard listed, each after its
	// listed parents.
	cur.At = pos.At
	listed := map[string]bool{}
	for _, s := range shards {
		listed[aws.ToString(s.ShardId)] = true
	}
	for _, s := range shards {
		p := *pos
		p.ID = aws.ToString(s.ShardId)
		for _, parent := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if parent != nil && listed[*parent] {
				p.Parents = append(p.Parents, *parent)
			}
		}
		if len(p.Parents) > 0 {
			p.State = statePending
		}
		cur.Shards = append(cur.Shards, &p)
	}
	return cur, nil
}

// locate finds the shard holding the sequence number of pos: among the
// shards whose range holds it, the latest-starting one that
// GetShardIterator accepts it on.
func (c *Console) locate(cl *call, name string, shards []types.Shard, pos *shardPos) (string, error) {
	var cands []types.Shard
	for _, s := range shards {
		r := s.SequenceNumberRange
		if r == nil || compareSeq(aws.ToString(r.StartingSequenceNumber), pos.Seq) > 0 {
			continue
		}
		if r.EndingSequenceNumber != nil && compareSeq(pos.Seq, *r.EndingSequenceNumber) > 0 {
			continue
		}
		cands = append(cands, s)
	}
	slices.SortFunc(cands, func(a, b types.Shard) int {
		return -compareSeq(aws.ToString(a.SequenceNumberRange.StartingSequenceNumber), aws.ToString(b.SequenceNumberRange.StartingSequenceNumber))
	})
	var last error
	for _, s := range cands {
		p := *pos
		p.ID = aws.ToString(s.ShardId)
		if _, err := c.iterator(cl.ctx, cl.client, name, &p); err != nil {
			last = err
			continue
		}
		return p.ID, nil
	}
	if last != nil {
		return "", last
	}
	return "", badRequest("No shard of stream %s holds sequence number %s.", name, pos.Seq)
}

// compareSeq compares two decimal sequence numbers.
func compareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// iterator returns a shard iterator at pos (not at pos.Iter).
func (c *Console) iterator(ctx context.Context, client *sdkClient, stream string, pos *shardPos) (string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(pos.ID), ShardIteratorType: types.ShardIteratorType(pos.Type)}
	switch types.ShardIteratorType(pos.Type) {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(pos.Seq)
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(time.UnixMilli(pos.At))
	}
	out, err := client.GetShardIterator(ctx, in, once)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ShardIterator), nil
}

// pageShard is one shard of a page: its cursor entry and what was read.
type pageShard struct {
	pos      *shardPos
	read     bool
	items    []item
	next     string // NextShardIterator; "" when the shard ended
	ended    bool
	children []types.ChildShard
	behind   int64
	more     bool // there may be unread records that arrived before others'
	consumed int  // items shown or filtered out
}

// readOne reads the shard once from its position.
func (c *Console) readOne(ctx context.Context, cl *call, stream string, ps *pageShard, limit int32, key string) error {
	iter, fresh := ps.pos.Iter, false
	if iter == "" {
		var err error
		if iter, err = c.iterator(ctx, cl.client, stream, ps.pos); err != nil {
			return err
		}
		fresh = true
	}
	pk := paceKey(cl.account, stream, ps.pos.ID)
	out, err := c.pacedGetRecords(ctx, cl.client, pk, iter, limit)
	var expired *types.ExpiredIteratorException
	if err != nil && !fresh && errors.As(err, &expired) {
		// A cursor older than five minutes: its iterator's position again.
		if iter, err = c.iterator(ctx, cl.client, stream, ps.pos); err != nil {
			return err
		}
		fresh = true
		out, err = c.pacedGetRecords(ctx, cl.client, pk, iter, limit)
	}
	if err != nil {
		return err
	}
	skip := int64(0)
	for i, r := range out.Records {
		if i == 0 && fresh && ps.pos.Type == string(types.ShardIteratorTypeAtSequenceNumber) && aws.ToString(r.SequenceNumber) == ps.pos.Seq {
			skip = ps.pos.Skip
		} else {
			skip = 0
		}
		ps.items = userRecords(ps.items, ps.pos.ID, r, skip, key)
	}
	ps.read = true
	ps.next = aws.ToString(out.NextShardIterator)
	ps.ended = out.NextShardIterator == nil
	ps.children = out.ChildShards
	ps.behind = aws.ToInt64(out.MillisBehindLatest)
	ps.more = !ps.ended && (ps.behind > 0 || int32(len(out.Records)) >= limit)
	return nil
}

// readPage reads the page after cur and answers it with the next cursor.
func (c *Console) readPage(cl *call, cur *cursor, key string, limit int) (any, error) {
	byID := map[string]*pageShard{}
	var order []*pageShard // by shard ID: parents before children
	add := func(p *shardPos) *pageShard {
		ps := &pageShard{pos: p}
		byID[p.ID] = ps
		i, _ := slices.BinarySearchFunc(order, p.ID, func(o *pageShard, id string) int { return strings.Compare(o.pos.ID, id) })
		order = slices.Insert(order, i, ps)
		return ps
	}
	for _, p := range cur.Shards {
		add(p)
	}
	// done reports whether a shard has been read to its end: in an
	// earlier page, in this one, or long ago (a parent no longer listed).
	done := func(id string) bool {
		ps := byID[id]
		return ps == nil || ps.pos.State == stateDone || ps.read && ps.ended
	}
	ready := func(ps *pageShard) bool {
		switch ps.pos.State {
		case stateActive:
			return true
		case statePending:
			for _, p := range ps.pos.Parents {
				if !done(p) {
					return false
				}
			}
			return true
		}
		return false
	}
	callLimit := int32(limit)
	if key != "" {
		callLimit = maxLimit // most records read are filtered out
	}
	matched := 0
	for round := 0; round < maxRounds && (round == 0 || matched < limit); round++ {
		var todo []*pageShard
		for _, ps := range order {
			if !ps.read && ready(ps) {
				todo = append(todo, ps)
			}
		}
		if len(todo) == 0 {
			break
		}
		if err := c.readAll(cl, cur.Stream, todo, callLimit, key); err != nil {
			return nil, err
		}
		for _, ps := range todo {
			for _, it := range ps.items {
				if it.match {
					matched++
				}
			}
			if !ps.ended || cur.Single {
				continue
			}
			for _, ch := range ps.children {
				if id := aws.ToString(ch.ShardId); byID[id] == nil {
					p := &shardPos{ID: id, State: statePending, Parents: ch.ParentShards}
					cur.childStart(p)
					add(p)
				}
			}
		}
	}

	// Merge by arrival time, up to the held-back records and the limit.
	watermark := int64(math.MaxInt64)
	for _, ps := range order {
		if ps.more && len(ps.items) > 0 {
			watermark = min(watermark, ps.items[len(ps.items)-1].arrival)
		}
	}
	page := recordsPage{Records: []recordJSON{}}
	for {
		var best *pageShard
		for _, ps := range order {
			if ps.consumed < len(ps.items) && (best == nil || ps.items[ps.consumed].arrival < best.items[best.consumed].arrival) {
				best = ps
			}
		}
		if best == nil {
			break
		}
		it := best.items[best.consumed]
		if it.arrival > watermark || it.match && len(page.Records) == limit {
			break
		}
		if it.match {
			page.Records = append(page.Records, it.rec)
		}
		best.consumed++
	}

	next, caughtUp := nextCursor(cur, order)
	for _, ps := range order {
		if ps.read {
			page.MillisBehindLatest = max(page.MillisBehindLatest, ps.behind)
		}
	}
	page.CaughtUp = caughtUp
	page.Cursor = c.seal(next)
	return page, nil
}

// readAll reads the shards concurrently.
func (c *Console) readAll(cl *call, stream string, todo []*pageShard, limit int32, key string) error {
	ctx, cancel := context.WithCancel(cl.ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, readConcurrency)
		mu   sync.Mutex // guards errs
		errs []error
	)
	for _, ps := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.readOne(ctx, cl, stream, ps, limit, key); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// nextCursor records where each shard stands after the page, and reports
// whether the read has caught up: every shard being read was read in this
// page to its newest record and everything read was shown.
func nextCursor(cur *cursor, order []*pageShard) (*cursor, bool) {
	caughtUp := true
	state := map[string]*shardPos{}
	for _, ps := range order {
		state[ps.pos.ID] = ps.pos
	}
	// done: read to its end and shown whole, now or in an earlier page,
	// or long ago (a parent no longer listed).
	done := func(id string) bool {
		p := state[id]
		return p == nil || p.State == stateDone
	}
	for _, ps := range order {
		p := ps.pos
		if !ps.read {
			continue
		}
		if ps.behind > 0 || ps.more || ps.consumed < len(ps.items) {
			caughtUp = false
		}
		if ps.consumed == len(ps.items) {
			if ps.ended {
				p.State, p.Iter = stateDone, ""
				continue
			}
			p.Iter = ps.next
			if n := len(ps.items); n > 0 {
				p.Type, p.Seq, p.Skip = string(types.ShardIteratorTypeAfterSequenceNumber), ps.items[n-1].rec.SequenceNumber, 0
			}
			continue
		}
		if ps.consumed > 0 {
			last := ps.items[ps.consumed-1]
			p.Iter = ""
			if last.last {
				p.Type, p.Seq, p.Skip = string(types.ShardIteratorTypeAfterSequenceNumber), last.rec.SequenceNumber, 0
			} else {
				p.Type, p.Seq, p.Skip = string(types.ShardIteratorTypeAtSequenceNumber), last.rec.SequenceNumber, last.rec.SubSequenceNumber+1
			}
		}
		// Unchanged when nothing was consumed: the iterator it was read
		// with is the same position still.
	}
	// Pending shards whose parents are all done now start being read.
	next := &cursor{Stream: cur.Stream, Single: cur.Single, At: cur.At}
	parentOf := map[string]bool{}
	for _, ps := range order {
		p := ps.pos
		if p.State == statePending {
			all := true
			for _, id := range p.Parents {
				all = all && done(id)
			}
			if all || ps.read && ps.consumed > 0 {
				p.State, p.Parents = stateActive, nil
			}
		}
		if p.State == stateActive && !ps.read {
			caughtUp = false
		}
		for _, id := range p.Parents {
			parentOf[id] = true
		}
	}
	for _, ps := range order {
		if ps.pos.State != stateDone || parentOf[ps.pos.ID] {
			next.Shards = append(next.Shards, ps.pos)
		}
	}
	return next, caughtUp
}

type putInput struct {
	PartitionKey    string  `json:"partitionKey"`
	Data            []byte  `json:"data"`
	ExplicitHashKey *string `json:"explicitHashKey"`
}

// putRecord puts one record (PutRecord).
func (c *Console) putRecord(cl *call) (any, error) {
	var in putInput
	if err := decodeBody(cl.w, cl.r, &in); err != nil {
		return nil, err
	}
	if in.Data == nil {
		in.Data = []byte{}
	}
	out, err := cl.client.PutRecord(cl.ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(cl.param("name")), PartitionKey: aws.String(in.PartitionKey), Data: in.Data, ExplicitHashKey: in.ExplicitHashKey,
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"shardId": aws.ToString(out.ShardId), "sequenceNumber": aws.ToString(out.SequenceNumber)}, nil
}
