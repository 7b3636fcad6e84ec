package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/wire"
)

// StreamSpec describes a stream that EnsureStream makes exist: its shape
// (Shards, or OnDemand) and the options applied when it is created.
type StreamSpec struct {
	Name string
	// Shards is the shard count of a PROVISIONED stream (0: one shard); it
	// must be 0 with OnDemand.
	Shards   int32
	OnDemand bool
	// RetentionHours is the retention period (0: the default 24 hours).
	RetentionHours int32
	// RetentionBytes, if positive, is the stream's size-based retention:
	// the most bytes each shard's log keeps. Retention housekeeping drops
	// a shard's oldest whole segments (never the one appended to) while it
	// holds more, however young their records: size wins over the
	// retention period. Kinesis has no such setting: only start-up sets it,
	// at creation, and DescribeStreamSummary does not show it. It needs an
	// engine that implements engine.SizeTrimmer (the file engine).
	RetentionBytes int64
	Tags           map[string]string
	// Consumers are enhanced fan-out consumers to register.
	Consumers []string
	// EncryptionKeyID, if set, encrypts the stream with this key of the
	// key service (an alias, key id or key ARN).
	EncryptionKeyID   string
	ShardLevelMetrics []string
}

// startupPoll is how often EnsureStream looks again at a stream or consumer
// that is not ACTIVE yet (with --create-delay and the like).
const startupPoll = 10 * time.Millisecond

// maxShardCount is CreateStream's largest ShardCount.
const maxShardCount = 100000

// Validate checks what can be checked of spec without a server: the
// stream's name, its shard count, its retention period and its consumers'
// names. Its errors name the bad part.
func (spec StreamSpec) Validate() error {
	switch {
	case spec.Name == "":
		return errors.New("stream name is empty")
	case len(spec.Name) > maxStreamNameLen || !streamNameRE.MatchString(spec.Name):
		return fmt.Errorf("stream name %q is not valid (1 to %d characters of a-z, A-Z, 0-9, _, . and -)", spec.Name, maxStreamNameLen)
	case spec.OnDemand && spec.Shards != 0:
		return fmt.Errorf("stream %s: a shard count (%d) and ON_DEMAND exclude each other", spec.Name, spec.Shards)
	case spec.Shards < 0 || spec.Shards > maxShardCount:
		return fmt.Errorf("stream %s: shard count %d is out of range (1 to %d)", spec.Name, spec.Shards, maxShardCount)
	case spec.RetentionHours != 0 && (spec.RetentionHours < minRetentionHours || spec.RetentionHours > maxRetentionHours):
		return fmt.Errorf("stream %s: retention period %d hours is out of range (%d to %d)", spec.Name, spec.RetentionHours, minRetentionHours, maxRetentionHours)
	case spec.RetentionBytes < 0:
		return fmt.Errorf("stream %s: retention bytes %d is negative", spec.Name, spec.RetentionBytes)
	}
	seen := map[string]bool{}
	for _, c := range spec.Consumers {
		if c == "" || len(c) > maxConsumerNameLen || !consumerNameRE.MatchString(c) {
			return fmt.Errorf("stream %s: consumer name %q is not valid (1 to %d characters of a-z, A-Z, 0-9, _, . and -)", spec.Name, c, maxConsumerNameLen)
		}
		if seen[c] {
			return fmt.Errorf("stream %s: consumer %q is named twice", spec.Name, c)
		}
		seen[c] = true
	}
	return nil
}

// shards is the shard count of a PROVISIONED spec.
func (spec StreamSpec) shards() int32 {
	if spec.Shards == 0 {
		return 1
	}
	return spec.Shards
}

// EnsureStream makes the stream of spec exist and be ACTIVE, for streams
// named at start-up (shoal server --create-streams, --config). It goes
// through the server's own handlers, as the caller of ctx (with no
// principal in ctx: the configured account, unauthorized checks).
//
// A stream that does not exist is created with spec's shape, then given
// its retention period, encryption, shard-level metrics and consumers, and
// EnsureStream returns created true once the stream and its consumers are
// ACTIVE (it polls their status, so it waits out --create-delay and
// friends). If a step after the creation fails, the new stream is deleted
// again and the error returned.
//
// A stream that exists is left as it is: EnsureStream waits for it to
// settle (CREATING or UPDATING to ACTIVE; DELETING to gone, and then
// creates it) and, if its shape (mode, and for PROVISIONED its open shard
// count) differs from spec's, logs a warning. Its options are not changed.
//
// A spec with RetentionBytes is refused, before anything is created, when
// the engine cannot trim logs by size (engine.SizeTrimmer).
func (s *Server) EnsureStream(ctx context.Context, spec StreamSpec) (created bool, err error) {
	if err := spec.Validate(); err != nil {
		return false, err
	}
	if _, ok := s.eng.(engine.SizeTrimmer); spec.RetentionBytes > 0 && !ok {
		return false, fmt.Errorf("stream %s: retention bytes (%d) need an engine that trims logs by size (the file engine); this one (%T) does not", spec.Name, spec.RetentionBytes, s.eng)
	}
	for {
		sum, err := s.settledSummary(ctx, spec.Name)
		if err != nil {
			return false, err
		}
		if sum != nil {
			s.checkShape(spec, sum)
			return false, nil
		}
		err = s.createFromSpec(ctx, spec)
		if errors.Is(err, ErrResourceInUse) {
			// Made in between by another server sharing the catalog (or
			// still deleting): look again.
			continue
		}
		if err != nil {
			return false, err
		}
		if err := s.configureFromSpec(ctx, spec); err != nil {
			s.log.Error("configuring a stream named at start-up failed; deleting it again", zap.String("stream", spec.Name), zap.Error(err))
			force := true
			if _, derr := s.deleteStream(ctx, &wire.DeleteStreamInput{StreamRef: nameRef(spec.Name), EnforceConsumerDeletion: &force}); derr != nil {
				s.log.Error("delete stream", zap.String("stream", spec.Name), zap.Error(derr))
			}
			return false, fmt.Errorf("stream %s: %w", spec.Name, err)
		}
		return true, nil
	}
}

func nameRef(name string) wire.StreamRef {
	return wire.StreamRef{StreamName: &name}
}

// settledSummary waits until the stream is ACTIVE (returning its summary)
// or does not exist (returning nil).
func (s *Server) settledSummary(ctx context.Context, name string) (*wire.StreamDescriptionSummary, error) {
	var sum *wire.StreamDescriptionSummary
	err := s.pollUntil(ctx, func() (bool, error) {
		out, err := s.describeStreamSummary(ctx, &wire.DescribeStreamSummaryInput{StreamRef: nameRef(name)})
		if errors.Is(err, ErrResourceNotFound) {
			sum = nil
			return true, nil
		}
		if err != nil {
			return false, err
		}
		sum = &out.StreamDescriptionSummary
		return sum.StreamStatus == statusActive, nil
	})
	return sum, err
}

// waitActive waits until the stream exists and is ACTIVE.
func (s *Server) waitActive(ctx context.Context, name string) error {
	sum, err := s.settledSummary(ctx, name)
	if err == nil && sum == nil {
		err = ErrResourceNotFound.With("Stream %s under account %s not found.", name, s.callerAccount(ctx))
	}
	return err
}

// pollUntil calls done until it reports true or fails, or ctx ends.
func (s *Server) pollUntil(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(startupPoll)
	defer t.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errors.New("the server is shutting down")
		}
	}
}

// checkShape logs a warning if an existing stream's shape is not spec's.
func (s *Server) checkShape(spec StreamSpec, sum *wire.StreamDescriptionSummary) {
	mode := modeProvisioned
	if sum.StreamModeDetails != nil {
		mode = sum.StreamModeDetails.StreamMode
	}
	want, wantShards := modeProvisioned, spec.shards()
	if spec.OnDemand {
		want = modeOnDemand
	}
	if mode == want && (spec.OnDemand || sum.OpenShardCount == wantShards) {
		s.log.Info("stream named at start-up exists", zap.String("stream", spec.Name), zap.String("mode", mode), zap.Int32("open_shards", sum.OpenShardCount))
		return
	}
	fields := []zap.Field{zap.String("stream", spec.Name), zap.String("mode", mode), zap.Int32("open_shards", sum.OpenShardCount), zap.String("wanted_mode", want)}
	if !spec.OnDemand {
		fields = append(fields, zap.Int32("wanted_shards", wantShards))
	}
	s.log.Warn("stream named at start-up exists with another shape; left as it is", fields...)
}

func (s *Server) createFromSpec(ctx context.Context, spec StreamSpec) error {
	in := &wire.CreateStreamInput{StreamName: &spec.Name}
	if len(spec.Tags) > 0 {
		in.Tags = spec.Tags
	}
	if spec.OnDemand {
		in.StreamModeDetails = &wire.StreamModeDetails{StreamMode: modeOnDemand}
	} else {
		n := spec.shards()
		in.ShardCount = &n
	}
	if _, err := s.createStream(ctx, in); err != nil {
		return err
	}
	return s.waitActive(ctx, spec.Name)
}

// configureFromSpec applies spec's options to the stream just created,
// waiting for it to be ACTIVE again after each change.
func (s *Server) configureFromSpec(ctx context.Context, spec StreamSpec) error {
	ref := nameRef(spec.Name)
	if n := spec.RetentionBytes; n > 0 {
		st, err := s.lookupRef(ctx, ref)
		if err != nil {
			return err
		}
		err = s.mutateStream(st, false, func() (func(), error) {
			old := st.retentionBytes
			st.retentionBytes = n
			return func() { st.retentionBytes = old }, nil
		})
		if err != nil {
			return fmt.Errorf("retention bytes: %w", err)
		}
		s.log.Info("size-based retention", zap.String("stream", spec.Name), zap.Int64("retention_bytes", n))
	}
	if h := spec.RetentionHours; h != 0 && h != defaultRetentionHours {
		in := &wire.RetentionInput{StreamRef: ref, RetentionPeriodHours: &h}
		change := s.increaseRetention
		if h < defaultRetentionHours {
			change = s.decreaseRetention
		}
		if _, err := change(ctx, in); err != nil {
			return fmt.Errorf("retention period: %w", err)
		}
		if err := s.waitActive(ctx, spec.Name); err != nil {
			return err
		}
	}
	if spec.EncryptionKeyID != "" {
		typ, key := encryptionKMS, spec.EncryptionKeyID
		if _, err := s.startStreamEncryption(ctx, &wire.StreamEncryptionInput{StreamRef: ref, EncryptionType: &typ, KeyID: &key}); err != nil {
			return fmt.Errorf("encryption: %w", err)
		}
		if err := s.waitActive(ctx, spec.Name); err != nil {
			return err
		}
	}
	if len(spec.ShardLevelMetrics) > 0 {
		ms := append([]string(nil), spec.ShardLevelMetrics...)
		if _, err := s.enableEnhancedMonitoring(ctx, &wire.EnhancedMonitoringInput{StreamRef: ref, ShardLevelMetrics: ms}); err != nil {
			return fmt.Errorf("shard-level metrics: %w", err)
		}
		if err := s.waitActive(ctx, spec.Name); err != nil {
			return err
		}
	}
	if len(spec.Consumers) == 0 {
		return nil
	}
	sum, err := s.describeStreamSummary(ctx, &wire.DescribeStreamSummaryInput{StreamRef: ref})
	if err != nil {
		return err
	}
	arn := sum.StreamDescriptionSummary.StreamARN
	for _, name := range spec.Consumers {
		out, err := s.registerStreamConsumer(ctx, &wire.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: &name})
		if err != nil {
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		carn := out.Consumer.ConsumerARN
		err = s.pollUntil(ctx, func() (bool, error) {
			d, err := s.describeStreamConsumer(ctx, &wire.DescribeStreamConsumerInput{ConsumerRef: wire.ConsumerRef{ConsumerARN: &carn}})
			if err != nil {
				return false, err
			}
			return d.ConsumerDescription.ConsumerStatus == statusActive, nil
		})
		if err != nil {
			return fmt.Errorf("consumer %s: %w", name, err)
		}
	}
	return nil
}
