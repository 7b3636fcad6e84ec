package server

import (
	"strings"

	"github.com/shoalstream/shoal/internal/wire"
)

func (s *Server) streamARN(name string) string {
	return "arn:aws:kinesis:" + s.cfg.Region + ":" + s.cfg.AccountID + ":stream/" + name
}

// parseStreamARN returns the stream name of an ARN of this server's region
// and account.
func (s *Server) parseStreamARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return "", ErrInvalidArgument.With("Invalid StreamARN %s", arn)
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", ErrInvalidArgument.With("Invalid StreamARN %s", arn)
	}
	if parts[3] != s.cfg.Region || parts[4] != s.cfg.AccountID {
		return "", ErrResourceNotFound.With("Stream %s under account %s not found.", name, parts[4])
	}
	return name, nil
}

// streamName picks the stream a request addresses by StreamName and/or
// StreamARN. StreamId is reserved by the model and ignored.
func (s *Server) streamName(name, arn *string) (string, error) {
	switch {
	case arn != nil:
		n, err := s.parseStreamARN(*arn)
		if err != nil {
			return "", err
		}
		if name != nil && *name != n {
			return "", ErrInvalidArgument.With("StreamARN %s and StreamName %s do not refer to the same stream.", *arn, *name)
		}
		return n, nil
	case name != nil:
		return *name, nil
	}
	return "", ErrInvalidArgument.With("Either StreamName or StreamARN must be provided.")
}

// lookup finds a stream by name or ARN, in any status.
func (s *Server) lookup(name, arn *string) (*stream, error) {
	n, err := s.streamName(name, arn)
	if err != nil {
		return nil, err
	}
	st := s.current(n)
	if st == nil {
		return nil, s.notFound(n)
	}
	return st, nil
}

func (s *Server) lookupRef(ref wire.StreamRef) (*stream, error) {
	return s.lookup(ref.StreamName, ref.StreamARN)
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
func (s *Server) validStream(ref wire.StreamRef, members func() validator) (*stream, error) {
	var v validator
	v.streamRef(ref.StreamName, ref.StreamARN)
	if members != nil {
		v.errs = append(v.errs, members().errs...)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.lookupRef(ref)
}

func (s *Server) notFound(name string) error {
	return ErrResourceNotFound.With("Stream %s under account %s not found.", name, s.cfg.AccountID)
}

// readable reports whether data operations may use the stream: AWS serves
// them while ACTIVE or UPDATING and answers ResourceNotFound otherwise.
func (s *Server) readable(st *stream) error {
	st.mu.RLock()
	status := st.status
	st.mu.RUnlock()
	if status != statusActive && status != statusUpdating {
		return s.notFound(st.name)
	}
	return nil
}

// notActive is the error for a change requested while a stream is not ACTIVE.
func (s *Server) notActive(st *stream, status string) error {
	return ErrResourceInUse.With("Stream %s under account %s not ACTIVE, instead in state %s", st.name, s.cfg.AccountID, status)
}
