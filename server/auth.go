package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/authconfig"
	"github.com/shoalstream/shoal/internal/iampolicy"
	"github.com/shoalstream/shoal/internal/sigv4"
)

// Authentication (SigV4, internal/sigv4) and authorization (IAM-style
// policies, internal/iampolicy) of requests, when Config.AuthConfigFile is
// set. Each request carries a *caller in its context; the handlers ask
// authorizeStream, authorizeConsumer or authorizeCreate before they touch
// a stream, and the operations that AWS authorizes against "*" are decided
// in serveHTTP before their handler runs.

// caller is who sent a request and what became of it: the context value of
// every request. Its fields are written by the goroutine that serves the
// request only.
type caller struct {
	op          string
	start       time.Time             // when the request was read
	principal   *authconfig.Principal // nil when verification is off
	accessKeyID string
	account     string // the account the request acts in
	sourceIP    netip.Addr
	secure      bool // the request came over TLS

	// What the audit record needs: the decoded input, the resource acted
	// on, and whether an authorization decision was made.
	input        any
	resourceARN  string
	resourceAcct string
	consumer     bool // resourceARN is a consumer's
	decided      bool
}

type callerKey struct{}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerFrom returns the request's caller, or nil outside a request.
func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// callerAccount is the account a request acts in: its principal's when
// verification is on, else the server's.
func (s *Server) callerAccount(ctx context.Context) string {
	if c := callerFrom(ctx); c != nil && c.account != "" {
		return c.account
	}
	return s.cfg.AccountID
}

// authState is one loaded auth configuration and its verifier; replaced
// whole by ReloadAuth.
type authState struct {
	conf     *authconfig.Config
	verifier *sigv4.Verifier
}

// loadAuth reads Config.AuthConfigFile into a new authState.
func (s *Server) loadAuth() (*authState, error) {
	conf, err := authconfig.Load(s.cfg.AuthConfigFile, s.cfg.AccountID)
	if err != nil {
		return nil, err
	}
	v := &sigv4.Verifier{
		Region:  s.cfg.Region,
		Service: "kinesis",
		Now:     s.cfg.Now,
		Lookup: func(id string) (sigv4.Key, bool) {
			_, k, ok := conf.Key(id)
			if !ok {
				return sigv4.Key{}, false
			}
			return sigv4.Key{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken}, true
		},
	}
	return &authState{conf: conf, verifier: v}, nil
}

// ReloadAuth reads Config.AuthConfigFile again and, if it parses, serves
// every later request with it: access keys rotate without a restart. A file
// that does not parse leaves the configuration in force and returns why.
// Without Config.AuthConfigFile it does nothing.
func (s *Server) ReloadAuth() error {
	if s.cfg.AuthConfigFile == "" {
		return nil
	}
	a, err := s.loadAuth()
	if err != nil {
		return fmt.Errorf("reload %s (the previous configuration stays in force): %w", s.cfg.AuthConfigFile, err)
	}
	s.auth.Store(a)
	s.log.Info("auth configuration reloaded", zap.Int("principals", len(a.conf.Principals)))
	return nil
}

// newCaller describes the request r for operation op, received at start,
// and, when
// verification is on, authenticates it: the error is the AWS error to
// answer with.
func (s *Server) newCaller(r *http.Request, op string, start time.Time, body []byte) (*caller, error) {
	c := &caller{op: op, start: start, account: s.cfg.AccountID, secure: r.TLS != nil}
	a := s.auth.Load()
	// The source address matters to policy conditions and the audit log
	// only: not parsed on every call otherwise.
	if a != nil || s.audit != nil {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			c.sourceIP = ap.Addr().Unmap()
		} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			c.sourceIP, _ = netip.ParseAddr(host)
		}
	}
	if a == nil {
		return c, nil
	}
	res, err := a.verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return c, clientErr(se.Code).With("%s", se.Message)
		}
		return c, ErrInternalFailure.With("Internal service failure.")
	}
	p, _, ok := a.conf.Key(res.AccessKeyID)
	if !ok { // the key went between Verify and here: a reload
		return c, clientErr(sigv4.CodeUnrecognizedClient).With("The security token included in the request is invalid.")
	}
	c.principal, c.accessKeyID, c.account = p, res.AccessKeyID, p.AccountID
	return c, nil
}

// resourceless lists the operations AWS authorizes against "*": they act
// in the caller's own account only.
var resourceless = map[string]bool{
	"ListStreams": true, "DescribeLimits": true, "DescribeAccountSettings": true, "UpdateAccountSettings": true,
	"EnableEnhancedMonitoring": true, "DisableEnhancedMonitoring": true, "UpdateShardCount": true, "UpdateStreamMode": true,
}

// authorize decides whether the caller may perform action on resource
// (owned by account; policy is the resource's own policy, nil when none).
func (s *Server) authorize(c *caller, action, resource, account string, policy *resourcePolicy) error {
	if c == nil || c.principal == nil {
		return nil
	}
	c.decided = true
	req := iampolicy.Request{
		Principal:       iampolicy.Principal{ARN: c.principal.ARN, Account: c.principal.AccountID, UserName: c.principal.Name},
		Action:          "kinesis:" + action,
		Resource:        resource,
		ResourceAccount: account,
		SourceIP:        c.sourceIP,
		Time:            s.cfg.Now(),
		SecureTransport: c.secure,
	}
	var rp *iampolicy.Policy
	if policy != nil {
		rp = policy.parsed
	}
	if res := iampolicy.Evaluate(req, c.principal.Policies, rp); !res.Allowed {
		return ErrAccessDenied.With("%s", res.Message)
	}
	return nil
}

// authorizeOp decides the operations that AWS authorizes against "*",
// before their handler runs.
func (s *Server) authorizeOp(c *caller) error {
	if !resourceless[c.op] {
		return nil
	}
	return s.authorize(c, c.op, "*", "", nil)
}

// authorizeStream decides the request's operation on the stream r names
// (st, nil when it does not exist). The operations authorized against "*"
// were decided before; they may act on the caller's own streams only.
func (s *Server) authorizeStream(ctx context.Context, r streamRef, st *stream) error {
	c := callerFrom(ctx)
	if c == nil {
		return nil
	}
	arn := s.streamARN(r.account, r.name)
	c.resourceARN, c.resourceAcct, c.consumer = arn, r.account, false
	if c.principal == nil {
		return nil
	}
	if resourceless[c.op] {
		if r.account != c.account {
			return ErrAccessDenied.With("User: %s is not authorized to perform: kinesis:%s on resource: %s because no identity-based policy allows the kinesis:%s action", c.principal.ARN, c.op, arn, c.op)
		}
		return nil
	}
	var policy *resourcePolicy
	if st != nil {
		policy = st.policy.Load()
	}
	return s.authorize(c, c.op, arn, r.account, policy)
}

// authorizeConsumer decides the request's operation on the consumer arn of
// the stream sr names (st and c, nil when they do not exist).
func (s *Server) authorizeConsumer(ctx context.Context, sr streamRef, arn string, st *stream, c *consumer) error {
	cl := callerFrom(ctx)
	if cl == nil {
		return nil
	}
	cl.resourceARN, cl.resourceAcct, cl.consumer = arn, sr.account, true
	if cl.principal == nil {
		return nil
	}
	var policy *resourcePolicy
	if st != nil && c != nil {
		st.mu.RLock()
		policy = c.policy
		st.mu.RUnlock()
	}
	return s.authorize(cl, cl.op, arn, sr.account, policy)
}

// authorizeCreate decides CreateStream of the stream r names, which needs
// kinesis:AddTagsToStream too when it carries tags.
func (s *Server) authorizeCreate(ctx context.Context, r streamRef, tagged bool) error {
	if err := s.authorizeStream(ctx, r, nil); err != nil {
		return err
	}
	if c := callerFrom(ctx); tagged && c != nil && c.principal != nil {
		return s.authorize(c, "AddTagsToStream", s.streamARN(r.account, r.name), r.account, nil)
	}
	return nil
}

// authorizeTagging decides kinesis:TagResource for RegisterStreamConsumer
// with tags, on the stream's ARN.
func (s *Server) authorizeTagging(ctx context.Context, st *stream) error {
	c := callerFrom(ctx)
	if c == nil || c.principal == nil {
		return nil
	}
	return s.authorize(c, "TagResource", st.arn, st.account, st.policy.Load())
}

// resourcePolicy is a stored resource-based policy: the document as
// PutResourcePolicy received it, and its parsed form.
type resourcePolicy struct {
	doc    string
	parsed *iampolicy.Policy
}

// parseResourcePolicy parses a stored or submitted policy document.
func parseResourcePolicy(doc string) (*resourcePolicy, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	p, err := iampolicy.ParseResource([]byte(doc))
	if err != nil {
		return nil, err
	}
	return &resourcePolicy{doc: doc, parsed: p}, nil
}

// policyDoc is the document of p, "" for none.
func (p *resourcePolicy) policyDoc() string {
	if p == nil {
		return ""
	}
	return p.doc
}

// storedPolicy parses the policy document of a catalog record (of st, or of
// its consumer named consumer). A document that does not parse (written by
// a later version, say) is kept as it is and grants nothing.
func (s *Server) storedPolicy(st *stream, consumer, doc string) *resourcePolicy {
	p, err := parseResourcePolicy(doc)
	if err != nil {
		s.log.Warn("a stored resource policy does not parse; it grants nothing",
			zap.String("stream", st.name), zap.String("account", st.account), zap.String("consumer", consumer), zap.Error(err))
		return &resourcePolicy{doc: doc}
	}
	return p
}
