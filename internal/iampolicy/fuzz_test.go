package iampolicy

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fuzzRequests are the questions a fuzzed policy that parses must answer
// without panicking: same account, cross-account, resource-less, a consumer,
// an IPv6 caller, and a request missing every optional key.
var fuzzRequests = []Request{
	baseRequest(),
	{Principal: Principal{ARN: userB, Account: acctB, UserName: "analytics"}, Action: "kinesis:GetRecords",
		Resource: streamA, ResourceAccount: acctA, SourceIP: netip.MustParseAddr("2001:db8::1"),
		Time: time.Unix(1e9, 0)},
	{Principal: Principal{ARN: userA}, Action: "kinesis:ListStreams", Resource: "*"},
	{Principal: Principal{ARN: "arn:aws:sts::111122223333:assumed-role/r/s"}, Action: "KINESIS:subscribetoshard",
		Resource: consumer, ResourceAccount: acctA, SourceIP: netip.MustParseAddr("::ffff:192.0.2.1"), SecureTransport: true},
	{},
}

// FuzzParsePolicy parses arbitrary documents both ways. Invariants: no
// panic; a failure is an *Error with a message and no policy; a policy keeps
// its document byte for byte, has at least one statement, and reparses the
// same way; an identity policy holds no principals and a resource policy
// always does; Evaluate answers consistently (Allowed iff Reason Allowed iff
// no Message; a denial's Message names the principal and action) and
// deterministically.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		doc(allowPut),
		doc(allowAll, denyPut),
		doc(allowStreamsA, `{"Effect": "Deny", "NotAction": "kinesis:Get*", "NotResource": "arn:aws:kinesis:*:*:stream/o?d*"}`),
		resourceDoc("Allow", `{"AWS": ["111122223333", "arn:aws:iam::444455556666:root", "`+userB+`"]}`, "kinesis:*"),
		doc(`{"Effect": "Deny", "NotPrincipal": {"AWS": "*"}, "Action": "*", "Resource": "*"}`),
		withCond(`{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}, "Bool": {"aws:SecureTransport": true}}`),
		withCond(`{"StringNotLikeIfExists": {"aws:PrincipalArn": "*:role/*"}, "DateLessThan": {"aws:EpochTime": 1700000000}}`),
		withCond(`{"StringEqualsIgnoreCase": {"aws:username": ["A", "b"], "aws:PrincipalAccount": 111122223333}}`),
		`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}`,
		`{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:${x}"}]}`,
		`{"Statement": [{"Effect": "Allow", "Condtion": {}}]}`,
		`[1, "x", null, true, {"a": [{}]}]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		for _, resource := range []bool{false, true} {
			parse := ParseIdentity
			if resource {
				parse = ParseResource
			}
			p, err := parse(in)
			if !bytes.Equal(in, orig) {
				t.Fatal("parse changed its input")
			}
			if err != nil {
				var perr *Error
				if p != nil || !errors.As(err, &perr) || perr.Message == "" {
					t.Fatalf("failure %T %q with policy %v", err, err, p)
				}
				continue
			}
			checkParsed(t, p, in, resource, parse)
		}
	})
}

func checkParsed(t *testing.T, p *Policy, in []byte, resource bool, parse func([]byte) (*Policy, error)) {
	t.Helper()
	if !bytes.Equal(p.Raw(), in) || p.IsResourcePolicy() != resource || len(p.Statements) == 0 {
		t.Fatalf("policy %+v from %q", p, in)
	}
	again, err := parse(p.Raw())
	if err != nil || len(again.Statements) != len(p.Statements) {
		t.Fatalf("reparse: %v", err)
	}
	for i := range p.Statements {
		st := &p.Statements[i]
		hasPrincipal := st.principals.anyone || len(st.principals.accounts)+len(st.principals.arns) > 0
		if hasPrincipal != resource || (st.Effect != Allow && st.Effect != Deny) || len(st.actions) == 0 || len(st.resources) == 0 {
			t.Fatalf("statement %d: %+v (resource policy %v)", i, st, resource)
		}
	}
	eval := func(req Request) Result {
		if resource {
			return Evaluate(req, nil, p)
		}
		return Evaluate(req, []*Policy{p}, nil)
	}
	for _, req := range fuzzRequests {
		got := eval(req)
		if got.Allowed != (got.Reason == Allowed) || got.Allowed != (got.Message == "") {
			t.Fatalf("inconsistent result %+v", got)
		}
		if !got.Allowed && !strings.HasPrefix(got.Message, "User: "+req.Principal.ARN+" is not authorized to perform: "+req.Action+" ") {
			t.Fatalf("message %q", got.Message)
		}
		if resource && got.Reason == ExplicitDenyIdentity || !resource && got.Reason == ExplicitDenyResource {
			t.Fatalf("deny blamed on the wrong policy: %+v", got)
		}
		if again := eval(req); again != got {
			t.Fatalf("Evaluate not deterministic: %+v then %+v", got, again)
		}
	}
}
