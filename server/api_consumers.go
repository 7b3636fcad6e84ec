package server

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/wire"
)

// Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers and DeregisterStreamConsumer.
//
// A consumer belongs to one stream and lives in its catalog record, so
// it survives a restart. Its ARN is the stream's ARN followed by
// "/consumer/<name>:<creation epoch seconds>", as Kinesis forms it; a consumer
// deregistered and registered again under the same name within the same
// second gets the same ARN, as it would in Kinesis.

// Consumer limits of Kinesis (provisioned and on-demand standard streams).
const (
	maxConsumersPerStream   = 20
	maxCreatingConsumers    = 5 // per stream here; per account in Kinesis
	defaultListConsumers    = 100
	maxListConsumersResults = 100 // a larger MaxResults is accepted but capped
	maxConsumerNameLen      = 128
	listConsumersFilter     = "consumers"
)

var (
	consumerNameRE = anchored(`[a-zA-Z0-9_.-]+`)
	consumerARNRE  = anchored(`(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`)
)

// consumer is one registered consumer. Its fields are guarded by its
// stream's mu.
type consumer struct {
	name    string
	arn     string
	created int64 // unix ms
	status  string
	tags    map[string]string
	policy  *resourcePolicy // resource-based policy, nil when none
	timer   *delayed        // pending status transition, stopped by Shutdown
}

// consumerARN is the ARN of st's consumer name registered at createdMs.
func consumerARN(st *stream, name string, createdMs int64) string {
	return st.arn + "/consumer/" + name + ":" + strconv.FormatInt(createdMs/1000, 10)
}

// consumerARNParts is a parsed consumer ARN.
type consumerARNParts struct {
	stream     streamRef
	name       string
	createdSec int64
}

// parseConsumerARN splits a consumer ARN of this server's region.
func (s *Server) parseConsumerARN(arn string) (consumerARNParts, error) {
	bad := ErrInvalidArgument.With("Invalid ConsumerARN %s", arn)
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" || !accountRE.MatchString(parts[4]) {
		return consumerARNParts{}, bad
	}
	// parts[5] is "stream/<stream>/consumer/<name>:<seconds>"; SplitN left
	// the last colon in it.
	rest, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return consumerARNParts{}, bad
	}
	stream, rest, ok := strings.Cut(rest, "/consumer/")
	if !ok || stream == "" || !streamNameRE.MatchString(stream) {
		return consumerARNParts{}, bad
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return consumerARNParts{}, bad
	}
	name, secs := rest[:i], rest[i+1:]
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || !consumerNameRE.MatchString(name) {
		return consumerARNParts{}, bad
	}
	if parts[3] != s.cfg.Region {
		return consumerARNParts{}, ErrResourceNotFound.With("Consumer %s under account %s not found.", arn, parts[4])
	}
	return consumerARNParts{stream: streamRef{account: parts[4], name: stream}, name: name, createdSec: sec}, nil
}

func consumerNotFound(arnOrName string, stream streamRef) error {
	return ErrResourceNotFound.With("Consumer %s under stream %s under account %s not found.", arnOrName, stream.name, stream.account)
}

// sortedConsumers returns the stream's consumers by name. The caller holds
// st.mu.
func (st *stream) sortedConsumers() []*consumer {
	out := make([]*consumer, 0, len(st.consumers))
	for _, c := range st.consumers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (v *validator) consumerRef(in *wire.ConsumerRef) {
	v.str("consumerARN", in.ConsumerARN, 1, maxStreamARNLen, consumerARNRE)
	v.str("consumerName", in.ConsumerName, 1, maxConsumerNameLen, consumerNameRE)
	v.str("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
}

// validConsumer validates a ConsumerRef and resolves it (resolveConsumer).
func (s *Server) validConsumer(ctx context.Context, ref *wire.ConsumerRef) (*stream, *consumer, error) {
	var v validator
	v.consumerRef(ref)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return s.resolveConsumer(ctx, ref)
}

// resolveConsumer finds the stream and consumer a ConsumerRef names, once
// the caller is authorized to act on the consumer. The consumer may be in
// any status.
func (s *Server) resolveConsumer(ctx context.Context, in *wire.ConsumerRef) (*stream, *consumer, error) {
	var (
		sr         streamRef
		name       string
		createdSec int64 = -1
	)
	switch {
	case in.ConsumerARN != nil:
		p, err := s.parseConsumerARN(*in.ConsumerARN)
		if err != nil {
			return nil, nil, err
		}
		sr, name, createdSec = p.stream, p.name, p.createdSec
		if in.StreamARN != nil {
			sn, err := s.parseStreamARN(*in.StreamARN)
			if err != nil {
				return nil, nil, err
			}
			if sn != sr {
				return nil, nil, ErrInvalidArgument.With("ConsumerARN %s does not belong to stream %s.", *in.ConsumerARN, *in.StreamARN)
			}
		}
		if in.ConsumerName != nil && *in.ConsumerName != name {
			return nil, nil, ErrInvalidArgument.With("ConsumerARN %s and ConsumerName %s do not refer to the same consumer.", *in.ConsumerARN, *in.ConsumerName)
		}
	case in.StreamARN != nil && in.ConsumerName != nil:
		sn, err := s.parseStreamARN(*in.StreamARN)
		if err != nil {
			return nil, nil, err
		}
		sr, name = sn, *in.ConsumerName
	default:
		return nil, nil, ErrInvalidArgument.With("Either ConsumerARN or both StreamARN and ConsumerName must be provided.")
	}
	st := s.current(s.key(sr))
	var c *consumer
	if st != nil {
		st.mu.RLock()
		c = st.consumers[name]
		st.mu.RUnlock()
		// The creation second in the ARN tells apart consumers registered
		// under the same name at different times.
		if c != nil && createdSec >= 0 && c.created/1000 != createdSec {
			c = nil
		}
	}
	arn := s.streamARN(sr.account, sr.name) + "/consumer/" + name + ":*"
	switch {
	case c != nil:
		arn = c.arn
	case in.ConsumerARN != nil:
		arn = *in.ConsumerARN
	}
	if err := s.authorizeConsumer(ctx, sr, arn, st, c); err != nil {
		return nil, nil, err
	}
	if st == nil {
		return nil, nil, s.notFound(sr)
	}
	if c == nil {
		ref := name
		if in.ConsumerARN != nil {
			ref = *in.ConsumerARN
		}
		return nil, nil, consumerNotFound(ref, sr)
	}
	return st, c, nil
}

func (s *Server) registerStreamConsumer(ctx context.Context, in *wire.RegisterStreamConsumerInput) (*wire.RegisterStreamConsumerOutput, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	v.reqStr("consumerName", in.ConsumerName, 1, maxConsumerNameLen, consumerNameRE)
	v.tags("tags", in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTagsPerStream {
		return nil, ErrInvalidArgument.With("A consumer can have at most %d tags.", maxTagsPerStream)
	}
	st, err := s.lookup(ctx, nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := s.authorizeTagging(ctx, st); err != nil {
			return nil, err
		}
	}
	name := *in.ConsumerName
	st.ctl.Lock()
	defer st.ctl.Unlock()
	st.mu.Lock()
	if s.current(st.key) != st || st.status == statusDeleting {
		st.mu.Unlock()
		return nil, st.missing()
	}
	if st.status == statusCreating {
		st.mu.Unlock()
		return nil, s.notActive(st, st.status)
	}
	if _, ok := st.consumers[name]; ok {
		st.mu.Unlock()
		return nil, ErrResourceInUse.With("Consumer %s under stream %s under account %s already exists.", name, st.name, st.account)
	}
	if len(st.consumers) >= maxConsumersPerStream {
		st.mu.Unlock()
		return nil, ErrLimitExceeded.With("Stream %s under account %s already has %d registered consumers, the limit.", st.name, st.account, maxConsumersPerStream)
	}
	creating := 0
	for _, c := range st.consumers {
		if c.status == statusCreating {
			creating++
		}
	}
	if creating >= maxCreatingConsumers {
		st.mu.Unlock()
		return nil, ErrLimitExceeded.With("Stream %s under account %s already has %d consumers in CREATING status.", st.name, st.account, maxCreatingConsumers)
	}
	now := s.cfg.Now().UnixMilli()
	c := &consumer{name: name, created: now, status: statusCreating, arn: consumerARN(st, name, now)}
	if len(in.Tags) > 0 {
		c.tags = cloneTags(in.Tags)
	}
	if s.cfg.ConsumerCreateDelay == 0 {
		c.status = statusActive
	}
	st.consumers[name] = c
	st.mu.Unlock()
	if err := s.persist(ctx, st); err != nil {
		st.mu.Lock()
		delete(st.consumers, name)
		st.mu.Unlock()
		return nil, fmt.Errorf("register consumer %s: %w", name, err)
	}
	st.mu.Lock()
	out := c.wire()
	if s.cfg.ConsumerCreateDelay > 0 {
		s.consumerAfterLocked(st, c, s.cfg.ConsumerCreateDelay, statusCreating)
	}
	st.mu.Unlock()
	s.log.Info("consumer registered", zap.String("stream", st.name), zap.String("consumer", name))
	return &wire.RegisterStreamConsumerOutput{Consumer: out}, nil
}

// wire returns the consumer as the API shows it. The caller holds st.mu.
func (c *consumer) wire() wire.Consumer {
	return wire.Consumer{ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status, ConsumerCreationTimestamp: wire.Timestamp(c.created)}
}

// consumerAfterLocked ends c's CREATING or DELETING period after d. The
// caller holds st.mu.
func (s *Server) consumerAfterLocked(st *stream, c *consumer, d time.Duration, from string) {
	c.timer.stop()
	c.timer = s.after(d, func() {
		s.changeAndSave(st, func() bool {
			if st.consumers[c.name] != c || c.status != from {
				return false
			}
			if from == statusDeleting {
				delete(st.consumers, c.name)
			} else {
				c.status = statusActive
			}
			return true
		})
	})
}

func (s *Server) describeStreamConsumer(ctx context.Context, in *wire.DescribeStreamConsumerInput) (*wire.DescribeStreamConsumerOutput, error) {
	st, c, err := s.validConsumer(ctx, &in.ConsumerRef)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return &wire.DescribeStreamConsumerOutput{ConsumerDescription: wire.ConsumerDescription{
		ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status,
		ConsumerCreationTimestamp: wire.Timestamp(c.created), StreamARN: st.arn,
	}}, nil
}

func (s *Server) deregisterStreamConsumer(ctx context.Context, in *wire.DeregisterStreamConsumerInput) (*wire.Empty, error) {
	st, c, err := s.validConsumer(ctx, &in.ConsumerRef)
	if err != nil {
		return nil, err
	}
	st.ctl.Lock()
	defer st.ctl.Unlock()
	st.mu.Lock()
	if st.consumers[c.name] != c || c.status == statusDeleting {
		st.mu.Unlock()
		return nil, consumerNotFound(c.arn, st.ref())
	}
	old := c.status
	if s.cfg.ConsumerDeleteDelay == 0 {
		delete(st.consumers, c.name)
	} else {
		c.status = statusDeleting
	}
	c.timer.stop()
	st.mu.Unlock()
	if err := s.persist(ctx, st); err != nil {
		st.mu.Lock()
		c.status = old
		st.consumers[c.name] = c
		st.mu.Unlock()
		return nil, fmt.Errorf("deregister consumer %s: %w", c.name, err)
	}
	if s.cfg.ConsumerDeleteDelay > 0 {
		st.mu.Lock()
		s.consumerAfterLocked(st, c, s.cfg.ConsumerDeleteDelay, statusDeleting)
		st.mu.Unlock()
	}
	s.endSubscriptions(c.arn, ErrResourceNotFound.With("Consumer %s under account %s has been deregistered.", c.arn, st.account))
	s.log.Info("consumer deregistered", zap.String("stream", st.name), zap.String("consumer", c.name))
	return &wire.Empty{}, nil
}

func (s *Server) listStreamConsumers(ctx context.Context, in *wire.ListStreamConsumersInput) (*wire.ListStreamConsumersOutput, error) {
	var v validator
	v.reqStr("streamARN", in.StreamARN, 1, maxStreamARNLen, streamARNRE)
	v.intRange("maxResults", in.MaxResults, 1, 10000)
	v.str("nextToken", in.NextToken, 1, maxNextTokenLen, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	st, err := s.lookup(ctx, nil, in.StreamARN)
	if err != nil {
		return nil, err
	}
	after := ""
	if in.NextToken != nil {
		if in.StreamCreationTimestamp != nil {
			return nil, ErrInvalidArgument.With("NextToken and StreamCreationTimestamp cannot be provided together.")
		}
		t, err := s.decodeListToken(*in.NextToken)
		if err != nil || t.filter != listConsumersFilter {
			return nil, ErrInvalidArgument.With("Invalid NextToken.")
		}
		if t.stream != st.key || t.streamID != st.id {
			return nil, ErrInvalidArgument.With("NextToken was issued for another stream than %s.", st.arn)
		}
		if err := s.checkTokenAge(t); err != nil {
			return nil, err
		}
		after = t.after
	}
	if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.Millis()/1000 != st.created/1000 {
		return nil, ErrResourceNotFound.With("Stream %s under account %s with creation timestamp %d not found.", st.name, st.account, in.StreamCreationTimestamp.Millis()/1000)
	}
	limit := defaultListConsumers
	if in.MaxResults != nil {
		limit = min(int(*in.MaxResults), maxListConsumersResults)
	}
	out := &wire.ListStreamConsumersOutput{Consumers: []wire.Consumer{}}
	st.mu.RLock()
	all := st.sortedConsumers()
	more := false
	for _, c := range all {
		if c.name <= after {
			continue
		}
		if len(out.Consumers) == limit {
			more = true
			break
		}
		out.Consumers = append(out.Consumers, c.wire())
	}
	st.mu.RUnlock()
	if more {
		tok := s.encodeListToken(listToken{issuedMs: s.cfg.Now().UnixMilli(), after: out.Consumers[len(out.Consumers)-1].ConsumerName,
			streamID: st.id, stream: st.key, filter: listConsumersFilter})
		out.NextToken = &tok
	}
	return out, nil
}
