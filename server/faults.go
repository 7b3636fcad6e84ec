package server

// Fault injection: rules that make the server fail, slow down or cut
// streams on purpose, so that clients can be tested against the failures
// Kinesis produces. Off unless configured (Config.Faults, or SetFaults at
// run time, which the admin listener's /faults calls): with no rules the
// request path pays one atomic pointer load per hook.
//
// Hooks:
//   - serveHTTP, before dispatch: internal, latency, and throttle (for every
//     operation but PutRecords);
//   - putRecords: throttle, per record;
//   - getRecords: expired-iterator;
//   - deliver (SubscribeToShard): cut-subscription;
//   - the default file engine's OnSync: slow-fsync.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/shoalstream/shoal/internal/strictjson"
)

// The kinds of fault a FaultRule injects.
const (
	// FaultThrottle fails a call with ProvisionedThroughputExceededException
	// (HTTP 400); for PutRecords it fails a fraction of the call's records
	// with that code instead, and stores the others.
	FaultThrottle = "throttle"
	// FaultInternal fails a call with InternalFailure (HTTP 500).
	FaultInternal = "internal"
	// FaultExpiredIterator fails GetRecords with ExpiredIteratorException.
	FaultExpiredIterator = "expired-iterator"
	// FaultLatency waits FaultRule.Latency before the call is served.
	FaultLatency = "latency"
	// FaultCutSubscription ends a SubscribeToShard event stream after
	// FaultRule.AfterEvents events with an InternalFailureException
	// exception message, as Kinesis ends streams it cannot serve.
	FaultCutSubscription = "cut-subscription"
	// FaultSlowFsync adds FaultRule.Latency to a group-commit sync of the
	// default file engine (before the appends it covers are acknowledged).
	FaultSlowFsync = "slow-fsync"
)

var faultKinds = []string{FaultThrottle, FaultInternal, FaultExpiredIterator, FaultLatency, FaultCutSubscription, FaultSlowFsync}

// FaultRule is one fault injection rule. A rule applies to the calls of
// Operation (empty: every operation) on Stream (empty: any stream, and calls
// that name none). Of the calls it applies to, it fires on every Every-th
// (counting from the first call it saw), or with Probability, or, with
// neither set, on each.
type FaultRule struct {
	Operation   string  `json:"operation,omitzero"`
	Stream      string  `json:"stream,omitzero"`
	Kind        string  `json:"kind"`
	Probability float64 `json:"probability,omitzero"`
	Every       int     `json:"every,omitzero"`
	// Latency is the delay of kinds latency and slow-fsync; in JSON a
	// duration string such as "200ms".
	Latency FaultDuration `json:"latency,omitzero"`
	// AfterEvents is how many events a cut subscription delivers before it
	// is cut (kind cut-subscription; 0: none).
	AfterEvents int `json:"afterEvents,omitzero"`
	// Fraction is the part of a PutRecords call's records a firing throttle
	// rule fails (rounded to the nearest record, and at least one); 0
	// means all.
	Fraction float64 `json:"fraction,omitzero"`
}

// FaultDuration is a time.Duration that JSON writes as a string such as
// "200ms" (time.ParseDuration's form).
type FaultDuration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d FaultDuration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *FaultDuration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errors.New("not a duration (such as \"200ms\")")
	}
	*d = FaultDuration(v)
	return nil
}

// FaultConfig is a set of fault injection rules. Seed seeds the random
// choices (probabilities, which records a fraction fails): each rule has its
// own generator (PCG, seeded with Seed and the rule's index), so a run with
// the same rules and calls makes the same choices. Nil Seed means a random
// one, which Faults reports.
type FaultConfig struct {
	Seed  *uint64     `json:"seed,omitzero"`
	Rules []FaultRule `json:"rules"`
}

// FaultRuleStatus is a rule in force and its counters: the calls (or syncs)
// it applied to, and the faults it injected.
type FaultRuleStatus struct {
	FaultRule `json:",inline"`
	Matched   uint64 `json:"matched"`
	Injected  uint64 `json:"injected"`
}

// FaultStatus is the fault injection in force (Server.Faults).
type FaultStatus struct {
	Seed  *uint64           `json:"seed,omitzero"` // nil when no rules are set
	Rules []FaultRuleStatus `json:"rules"`
}

// ParseFaults decodes a FaultConfig from JSON (unknown members are errors)
// and validates it.
func ParseFaults(data []byte) (FaultConfig, error) {
	var fc FaultConfig
	if err := strictjson.Decode(data, &fc); err != nil {
		return FaultConfig{}, err
	}
	return fc, fc.Validate()
}

// faultOperations are the operation names a rule may name.
var faultOperations = sync.OnceValue(func() map[string]bool {
	ops := map[string]bool{"SubscribeToShard": true}
	for name := range (&Server{}).operations() {
		ops[name] = true
	}
	return ops
})

// Validate checks the rules; its errors name the member at fault, as in
// rules[2].probability.
func (fc FaultConfig) Validate() error {
	var errs []error
	for i, r := range fc.Rules {
		bad := func(member, format string, args ...any) {
			errs = append(errs, fmt.Errorf("rules[%d].%s: %s", i, member, fmt.Sprintf(format, args...)))
		}
		if !slices.Contains(faultKinds, r.Kind) {
			bad("kind", "%q is not a fault kind (want %s)", r.Kind, strings.Join(faultKinds, ", "))
			continue
		}
		if r.Operation != "" && !faultOperations()[r.Operation] {
			bad("operation", "unknown operation %q", r.Operation)
		}
		if r.Probability < 0 || r.Probability > 1 {
			bad("probability", "%v is not a probability (0 to 1)", r.Probability)
		}
		if r.Every < 0 {
			bad("every", "%d is negative", r.Every)
		}
		if r.Every > 0 && r.Probability > 0 {
			bad("every", "probability and every exclude each other")
		}
		switch r.Kind {
		case FaultLatency, FaultSlowFsync:
			if r.Latency <= 0 {
				bad("latency", "kind %s needs a positive latency (such as \"200ms\")", r.Kind)
			}
		default:
			if r.Latency != 0 {
				bad("latency", "only for kinds latency and slow-fsync")
			}
		}
		if r.Kind == FaultCutSubscription {
			if r.AfterEvents < 0 {
				bad("afterEvents", "%d is negative", r.AfterEvents)
			}
		} else if r.AfterEvents != 0 {
			bad("afterEvents", "only for kind cut-subscription")
		}
		if r.Kind == FaultThrottle {
			if r.Fraction < 0 || r.Fraction > 1 {
				bad("fraction", "%v is not a fraction (0 to 1)", r.Fraction)
			}
			if r.Fraction != 0 && r.Operation != "" && r.Operation != "PutRecords" {
				bad("fraction", "only for PutRecords (operation %q fails whole calls)", r.Operation)
			}
		} else if r.Fraction != 0 {
			bad("fraction", "only for kind throttle (of PutRecords)")
		}
		only := map[string]string{FaultExpiredIterator: "GetRecords", FaultCutSubscription: "SubscribeToShard"}[r.Kind]
		if only != "" && r.Operation != "" && r.Operation != only {
			bad("operation", "kind %s applies to %s only", r.Kind, only)
		}
		if r.Kind == FaultSlowFsync {
			if r.Operation != "" {
				bad("operation", "kind slow-fsync applies to the storage engine's syncs, not to an operation")
			}
			if r.Stream != "" {
				bad("stream", "kind slow-fsync applies to every stream's syncs")
			}
		}
	}
	return errors.Join(errs...)
}

// faultSet is the compiled rule set in force.
type faultSet struct {
	seed  uint64
	rules []*faultRule
}

type faultRule struct {
	FaultRule
	mu       sync.Mutex // guards rng and matched
	rng      *rand.Rand
	matched  uint64
	injected atomic.Uint64
}

// applies reports whether r applies to a call of op on stream (a rule of
// a stream does not apply to calls that name none).
func (r *faultRule) applies(op, stream string) bool {
	return (r.Operation == "" || r.Operation == op) && (r.Stream == "" || r.Stream == stream)
}

// fire counts a call r applies to and decides whether r fires on it.
func (r *faultRule) fire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.matched++
	switch {
	case r.Every > 0:
		return r.matched%uint64(r.Every) == 0
	case r.Probability > 0:
		return r.rng.Float64() < r.Probability
	}
	return true
}

// pick returns a mask of n records of which a fraction (per r.Fraction) is
// set, chosen at random.
func (r *faultRule) pick(n int) []bool {
	k := n
	if r.Fraction > 0 {
		k = min(n, max(1, int(r.Fraction*float64(n)+0.5)))
	}
	mask := make([]bool, n)
	r.mu.Lock()
	perm := r.rng.Perm(n)
	r.mu.Unlock()
	for _, i := range perm[:k] {
		mask[i] = true
	}
	return mask
}

// SetFaults replaces the fault injection rules in force (an empty set turns
// fault injection off). The counters start again from zero.
func (s *Server) SetFaults(fc FaultConfig) error {
	if err := fc.Validate(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	if len(fc.Rules) == 0 {
		s.faults.Store(nil)
		return nil
	}
	fs := &faultSet{}
	if fc.Seed != nil {
		fs.seed = *fc.Seed
	} else {
		fs.seed = rand.Uint64()
	}
	for i, r := range fc.Rules {
		fs.rules = append(fs.rules, &faultRule{FaultRule: r, rng: rand.New(rand.NewPCG(fs.seed, uint64(i)))})
	}
	s.faults.Store(fs)
	if s.log != nil {
		s.log.Sugar().Infow("fault injection rules set", "rules", len(fs.rules), "seed", fs.seed)
	}
	return nil
}

// Faults returns the fault injection rules in force and their counters.
func (s *Server) Faults() FaultStatus {
	fs := s.faults.Load()
	st := FaultStatus{Rules: []FaultRuleStatus{}}
	if fs == nil {
		return st
	}
	seed := fs.seed
	st.Seed = &seed
	for _, r := range fs.rules {
		r.mu.Lock()
		matched := r.matched
		r.mu.Unlock()
		st.Rules = append(st.Rules, FaultRuleStatus{FaultRule: r.FaultRule, Matched: matched, Injected: r.injected.Load()})
	}
	return st
}

// MarshalFaults is Faults as JSON, for the admin listener.
func (s *Server) MarshalFaults() ([]byte, error) {
	return json.Marshal(s.Faults())
}

// injected counts a fault r injected into a call of op.
func (s *Server) injected(r *faultRule, op string) {
	r.injected.Add(1)
	s.cfg.Metrics.Fault(op, r.Kind)
}

// injectCall applies the rules of kinds internal, latency and throttle (but
// throttle of PutRecords, which putRecords applies per record) to a call of
// op before it is dispatched. The rules are tried in order: the latencies
// of those that fire add up, and the first internal or throttle rule that
// fires ends the evaluation and fails the call, after the latency.
func (s *Server) injectCall(ctx context.Context, fs *faultSet, op string, c codec, body []byte) error {
	var (
		stream string
		probed bool
		delay  time.Duration
		fail   error
	)
	for _, r := range fs.rules {
		switch r.Kind {
		case FaultInternal, FaultLatency:
		case FaultThrottle:
			if op == "PutRecords" {
				continue
			}
		default:
			continue
		}
		if r.Stream != "" && !probed {
			stream, probed = s.faultStream(c, body), true
		}
		if !r.applies(op, stream) || !r.fire() {
			continue
		}
		s.injected(r, op)
		if r.Kind == FaultLatency {
			delay += time.Duration(r.Latency)
			continue
		}
		if r.Kind == FaultInternal {
			fail = ErrInternalFailure.With("Internal service failure.")
		} else {
			fail = ErrProvisionedThroughputExceeded.With("Rate exceeded for %s.", op)
		}
		break
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-s.done:
		}
	}
	return fail
}

// faultStream is the name of the stream a request names, for the rules of
// a stream: its StreamName, StreamARN, ConsumerARN or ShardIterator.
func (s *Server) faultStream(c codec, body []byte) string {
	var p struct {
		StreamName    *string `json:"StreamName"`
		StreamARN     *string `json:"StreamARN"`
		ConsumerARN   *string `json:"ConsumerARN"`
		ShardIterator *string `json:"ShardIterator"`
	}
	_ = c.decode(body, &p) // a request that does not decode fails in its handler
	switch {
	case p.StreamName != nil:
		return *p.StreamName
	case p.StreamARN != nil:
		return streamOfARN(*p.StreamARN)
	case p.ConsumerARN != nil:
		return streamOfARN(*p.ConsumerARN)
	case p.ShardIterator != nil:
		if it, err := s.decodeIterator(*p.ShardIterator); err == nil {
			return s.refOfKey(it.stream).name
		}
	}
	return ""
}

// streamOfARN is the stream name in a stream or consumer ARN.
func streamOfARN(arn string) string {
	_, rest, ok := strings.Cut(arn, ":stream/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// throttleRecords applies the throttle rules of PutRecords on stream to a
// call of n records: the records to fail, or nil.
func (s *Server) throttleRecords(fs *faultSet, stream string, n int) []bool {
	for _, r := range fs.rules {
		if r.Kind != FaultThrottle || !r.applies("PutRecords", stream) || !r.fire() {
			continue
		}
		s.injected(r, "PutRecords")
		return r.pick(n)
	}
	return nil
}

// expireIterator applies the expired-iterator rules to a GetRecords call on
// stream.
func (s *Server) expireIterator(fs *faultSet, stream string) bool {
	for _, r := range fs.rules {
		if r.Kind == FaultExpiredIterator && r.applies("GetRecords", stream) && r.fire() {
			s.injected(r, "GetRecords")
			return true
		}
	}
	return false
}

// subscriptionCut applies the cut-subscription rules to a subscription to
// stream: the rule that will cut it, or nil.
func (s *Server) subscriptionCut(stream string) *faultRule {
	fs := s.faults.Load()
	if fs == nil {
		return nil
	}
	for _, r := range fs.rules {
		if r.Kind == FaultCutSubscription && r.applies("SubscribeToShard", stream) && r.fire() {
			return r
		}
	}
	return nil
}

// onSync is the default file engine's OnSync: the slow-fsync rules, then
// Config.Metrics.
func (s *Server) onSync(d time.Duration, batches int, err error) {
	if fs := s.faults.Load(); fs != nil {
		var delay time.Duration
		for _, r := range fs.rules {
			if r.Kind == FaultSlowFsync && r.fire() {
				s.injected(r, "fsync")
				delay += time.Duration(r.Latency)
			}
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
			}
			d += delay
		}
	}
	s.cfg.Metrics.Fsync(d, batches, err)
}
