package server

import (
	"context"
	"strings"

	"github.com/shoalstream/shoal/engine"

	"github.com/shoalstream/shoal/internal/wire"
)

// streamRef names a stream: its owning account and its name.
type streamRef struct{ account, name string }

// streamARN returns the ARN of stream name in account.
func (s *Server) streamARN(account, name string) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + account + ":stream/" + name
}

// catalogAccount is how the catalog records account: empty for the
// server's own (so that stores written before accounts existed read as
// they did), the id otherwise.
func (s *Server) catalogAccount(account string) string {
	if account == s.cfg.AccountID {
		return ""
	}
	return account
}

// key returns the key of the stream r names in the snapshot, the
// reservations and the catalog (engine.StreamKey).
func (s *Server) key(r streamRef) string {
	return engine.StreamKey(s.catalogAccount(r.account), r.name)
}

// refOfKey is the stream a key (Server.key) names.
func (s *Server) refOfKey(key string) streamRef {
	if account, name, ok := strings.Cut(key, "/"); ok {
		return streamRef{account: account, name: name}
	}
	return streamRef{account: s.cfg.AccountID, name: key}
}

// ref is the stream's account and name.
func (st *stream) ref() streamRef { return streamRef{account: st.account, name: st.name} }

// parseStreamARN returns the stream an ARN of this server's region names.
// The account may be any: a stream of another account is reached by its
// ARN (and authorized by its resource policy).
func (s *Server) parseStreamARN(arn string) (streamRef, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" || !accountRE.MatchString(parts[4]) {
		return streamRef{}, ErrInvalidArgument.With("Invalid StreamARN %s", arn)
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return streamRef{}, ErrInvalidArgument.With("Invalid StreamARN %s", arn)
	}
	if parts[3] != s.cfg.Region {
		return streamRef{}, ErrResourceNotFound.With("Stream %s under account %s not found.", name, parts[4])
	}
	return streamRef{account: parts[4], name: name}, nil
}

// streamName picks the stream a request addresses by StreamName and/or
// StreamARN: a name alone is in the caller's account. StreamId is reserved
// by the model and ignored.
func (s *Server) streamName(ctx context.Context, name, arn *string) (streamRef, error) {
	switch {
	case arn != nil:
		r, err := s.parseStreamARN(*arn)
		if err != nil {
			return streamRef{}, err
		}
		if name != nil && *name != r.name {
			return streamRef{}, ErrInvalidArgument.With("StreamARN %s and StreamName %s do not refer to the same stream.", *arn, *name)
		}
		return r, nil
	case name != nil:
		return streamRef{account: s.callerAccount(ctx), name: *name}, nil
	}
	return streamRef{}, ErrInvalidArgument.With("Either StreamName or StreamARN must be provided.")
}

// lookup finds a stream by name or ARN, in any status, once the caller is
// authorized to act on it.
func (s *Server) lookup(ctx context.Context, name, arn *string) (*stream, error) {
	r, err := s.streamName(ctx, name, arn)
	if err != nil {
		return nil, err
	}
	return s.lookupName(ctx, r)
}

// lookupName finds the stream r names once the caller is authorized to
// act on it: authorization comes first, so that a caller learns nothing of
// streams it may not use.
func (s *Server) lookupName(ctx context.Context, r streamRef) (*stream, error) {
	st := s.current(s.key(r))
	if err := s.authorizeStream(ctx, r, st); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, s.notFound(r)
	}
	return st, nil
}

func (s *Server) lookupRef(ctx context.Context, ref wire.StreamRef) (*stream, error) {
	return s.lookup(ctx, ref.StreamName, ref.StreamARN)
}

// validStream is the prologue of a request that names its stream by
// StreamName and/or StreamARN: it validates those two members, then the
// request's other members with members (when not nil), and returns the
// ValidationException listing every violation in that order, or else the
// stream as lookupRef finds it. The counterpart for consumers is
// validConsumer.
//
// members returns its validator rather than filling in one it is handed: a
// pointer passed to a function value escapes, and this way no validator of a
// request that passes (PutRecord's, say) leaves the stack.
func (s *Server) validStream(ctx context.Context, ref wire.StreamRef, members func() validator) (*stream, error) {
	var v validator
	v.streamRef(ref.StreamName, ref.StreamARN)
	if members != nil {
		v.errs = append(v.errs, members().errs...)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.lookupRef(ctx, ref)
}

func (s *Server) notFound(r streamRef) error {
	return ErrResourceNotFound.With("Stream %s under account %s not found.", r.name, r.account)
}

// missing is the ResourceNotFound error of a stream that was found.
func (st *stream) missing() error {
	return ErrResourceNotFound.With("Stream %s under account %s not found.", st.name, st.account)
}

// readable reports whether data operations may use the stream: AWS serves
// them while ACTIVE or UPDATING and answers ResourceNotFound otherwise.
func (s *Server) readable(st *stream) error {
	st.mu.RLock()
	status := st.status
	st.mu.RUnlock()
	if status != statusActive && status != statusUpdating {
		return st.missing()
	}
	return nil
}

// notActive is the error for a change requested while a stream is not ACTIVE.
func (s *Server) notActive(st *stream, status string) error {
	return ErrResourceInUse.With("Stream %s under account %s not ACTIVE, instead in state %s", st.name, st.account, status)
}
