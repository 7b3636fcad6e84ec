package server

import (
	"context"

	"github.com/shoalstream/shoal/internal/wire"
)

// Resource-based policies of streams and consumers: PutResourcePolicy,
// GetResourcePolicy and DeleteResourcePolicy. A policy is stored in the
// stream's catalog record (a consumer's with its consumer) and evaluated
// with the caller's identity policies (auth.go): it is how a principal of
// another account gets in.

// maxPolicyLen bounds a policy document (AWS's limit for resource-based
// policies is 20 KiB).
const maxPolicyLen = 20480

// noPolicy is what GetResourcePolicy answers for a resource without one.
const noPolicy = "{}"

func (s *Server) putResourcePolicy(ctx context.Context, in *wire.PutResourcePolicyInput) (*wire.Empty, error) {
	var v validator
	v.reqStr("resourceARN", in.ResourceARN, 1, maxStreamARNLen, resourceARNRE)
	v.reqStr("policy", in.Policy, 1, maxPolicyLen, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	p, err := parseResourcePolicy(*in.Policy)
	if err != nil {
		return nil, ErrInvalidArgument.With("Invalid policy: %s", err.Error())
	}
	if p == nil {
		return nil, ErrInvalidArgument.With("Invalid policy: the document is empty.")
	}
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return &wire.Empty{}, s.setPolicy(r, p)
}

func (s *Server) getResourcePolicy(ctx context.Context, in *wire.ResourcePolicyInput) (*wire.GetResourcePolicyOutput, error) {
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	var p *resourcePolicy
	if r.c != nil {
		r.st.mu.RLock()
		p = r.c.policy
		r.st.mu.RUnlock()
	} else {
		p = r.st.policy.Load()
	}
	if p == nil {
		return &wire.GetResourcePolicyOutput{Policy: noPolicy}, nil
	}
	return &wire.GetResourcePolicyOutput{Policy: p.doc}, nil
}

func (s *Server) deleteResourcePolicy(ctx context.Context, in *wire.ResourcePolicyInput) (*wire.Empty, error) {
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return &wire.Empty{}, s.setPolicy(r, nil)
}

// setPolicy stores p (nil: none) as r's policy in the catalog, then in
// force.
func (s *Server) setPolicy(r taggable, p *resourcePolicy) error {
	return s.mutateStream(r.st, true, func() (func(), error) {
		if r.c != nil {
			old := r.c.policy
			r.c.policy = p
			return func() { r.c.policy = old }, nil
		}
		old := r.st.policy.Swap(p)
		return func() { r.st.policy.Store(old) }, nil
	})
}
