package iampolicy

import (
	"net/netip"
	"strconv"
	"time"
)

// Principal is the caller of a request.
type Principal struct {
	// ARN is the caller's ARN, such as
	// arn:aws:iam::111122223333:user/orders-producer.
	ARN string
	// Account is the caller's account id; "" means the account field of ARN.
	Account string
	// UserName is the IAM user name (the aws:username key), or "" when the
	// caller is not an IAM user.
	UserName string
}

// Request is one authorization question.
type Request struct {
	Principal Principal
	// Action is the action asked for, such as "kinesis:PutRecord".
	Action string
	// Resource is the ARN of the stream or consumer acted on, or "*" for an
	// action without a resource type (ListStreams, UpdateShardCount, ...).
	Resource string
	// ResourceAccount is the account that owns Resource; "" (as for "*")
	// means the principal's own account.
	ResourceAccount string
	// SourceIP is the caller's address (aws:SourceIp); the zero Addr means
	// unknown, and the key is then missing.
	SourceIP netip.Addr
	// Time is when the request was made (aws:CurrentTime, aws:EpochTime);
	// the zero Time means unknown, and the keys are then missing.
	Time time.Time
	// SecureTransport is whether the request came over TLS
	// (aws:SecureTransport).
	SecureTransport bool
}

// Reason says why a request was allowed or denied.
type Reason int

// The reasons. The zero Reason is not a decision.
const (
	_ Reason = iota
	// Allowed: an applicable Allow, and no applicable Deny.
	Allowed
	// NoIdentityAllow: no identity-based policy allows the request, and
	// (within one account) no resource-based policy allows it either.
	NoIdentityAllow
	// NoResourceAllow: a cross-account request that the caller's
	// identity-based policies allow but the resource's policy does not.
	NoResourceAllow
	// ExplicitDenyIdentity: a Deny in an identity-based policy applies.
	ExplicitDenyIdentity
	// ExplicitDenyResource: a Deny in the resource-based policy applies.
	ExplicitDenyResource
)

func (r Reason) String() string {
	switch r {
	case Allowed:
		return "Allowed"
	case NoIdentityAllow:
		return "NoIdentityAllow"
	case NoResourceAllow:
		return "NoResourceAllow"
	case ExplicitDenyIdentity:
		return "ExplicitDenyIdentity"
	case ExplicitDenyResource:
		return "ExplicitDenyResource"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Result is a decision.
type Result struct {
	Allowed bool
	// Message is the AccessDeniedException message, worded as AWS words it,
	// when !Allowed; "" otherwise.
	Message string
	Reason  Reason
}

// evalCtx is the request with what is worked out once per request.
type evalCtx struct {
	req     *Request
	account string // the principal's account
}

// Evaluate decides req against the caller's identity-based policies and the
// resource's resource-based policy (nil when it has none), following IAM's
// documented logic:
//
//   - Every request is denied unless something allows it.
//   - A Deny statement that applies, in any of the policies, denies it. (If
//     both kinds deny, the identity-based deny is reported.)
//   - Within one account (ResourceAccount is the caller's, or ""), an Allow
//     in an identity-based policy or in the resource-based policy allows it.
//     A resource-policy Allow counts here only when its Principal names the
//     caller's ARN or "*": naming the account (its id or :root ARN) delegates
//     to the account's identity-based policies, which must then allow it.
//   - Across accounts both must allow it: an identity-based Allow, and a
//     resource-policy Allow whose Principal names the caller, its account, or
//     "*".
//
// A statement applies when its Action (or NotAction), Resource (or
// NotResource), Principal (or NotPrincipal, resource-based only) and every
// Condition match. identity should hold policies from ParseIdentity (nil
// entries are skipped) and resource one from ParseResource: a statement
// without a Principal never applies as a resource policy. Evaluate does not
// allocate unless it denies.
func Evaluate(req Request, identity []*Policy, resource *Policy) Result {
	x := evalCtx{req: &req, account: req.Principal.Account}
	if x.account == "" {
		x.account = accountOf(req.Principal.ARN)
	}
	sameAccount := req.ResourceAccount == "" || req.ResourceAccount == x.account

	identityAllow := false
	for _, p := range identity {
		if p == nil {
			continue
		}
		for i := range p.Statements {
			st := &p.Statements[i]
			if !st.applies(&x) {
				continue
			}
			if st.Effect == Deny {
				return deny(&req, ExplicitDenyIdentity)
			}
			identityAllow = true
		}
	}

	resourceAllow := false
	if resource != nil {
		for i := range resource.Statements {
			st := &resource.Statements[i]
			if !st.applies(&x) {
				continue
			}
			m := st.principals.match(req.Principal.ARN, x.account)
			if st.notPrincipal {
				// NotPrincipal applies to everyone it does not list.
				if m != matchNone {
					continue
				}
				m = matchNamed
			}
			switch {
			case m == matchNone:
			case st.Effect == Deny:
				return deny(&req, ExplicitDenyResource)
			case m == matchNamed || !sameAccount:
				resourceAllow = true
			}
		}
	}

	switch {
	case sameAccount && (identityAllow || resourceAllow):
		return Result{Allowed: true, Reason: Allowed}
	case sameAccount, !identityAllow:
		return deny(&req, NoIdentityAllow)
	case !resourceAllow:
		return deny(&req, NoResourceAllow)
	}
	return Result{Allowed: true, Reason: Allowed}
}

// applies reports whether the statement's action, resource and conditions
// match (the principal is checked by the caller).
func (st *Statement) applies(x *evalCtx) bool {
	if st.actions.match(x.req.Action) == st.notAction {
		return false
	}
	if st.resources.match(x.req.Resource) == st.notResource {
		return false
	}
	for i := range st.conditions {
		if !st.conditions[i].eval(x) {
			return false
		}
	}
	return true
}

func deny(req *Request, r Reason) Result {
	// One concatenation per case: one allocation.
	const head, perform, on = "User: ", " is not authorized to perform: ", " on resource: "
	var msg string
	switch r {
	case ExplicitDenyIdentity:
		msg = head + req.Principal.ARN + perform + req.Action + on + req.Resource +
			" with an explicit deny in an identity-based policy"
	case ExplicitDenyResource:
		msg = head + req.Principal.ARN + perform + req.Action + on + req.Resource +
			" with an explicit deny in a resource-based policy"
	case NoResourceAllow:
		msg = head + req.Principal.ARN + perform + req.Action + on + req.Resource +
			" because no resource-based policy allows the " + req.Action + " action"
	default:
		msg = head + req.Principal.ARN + perform + req.Action + on + req.Resource +
			" because no identity-based policy allows the " + req.Action + " action"
	}
	return Result{Message: msg, Reason: r}
}
