package iampolicy

import (
	"testing"
)

const (
	allowPut      = `{"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": "` + streamA + `"}`
	denyPut       = `{"Effect": "Deny", "Action": "kinesis:PutRecord", "Resource": "*"}`
	allowAll      = `{"Effect": "Allow", "Action": "*", "Resource": "*"}`
	allowStreamsA = `{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:111122223333:stream/*"}`
)

// resourceDoc is a resource policy with one statement for principal p.
func resourceDoc(effect, principal, action string) string {
	return doc(`{"Effect": "` + effect + `", "Principal": ` + principal + `, "Action": "` + action + `", "Resource": "` + streamA + `"}`)
}

// TestEvaluateMatrix follows IAM's documented evaluation logic
// (reference_policies_evaluation-logic*.html): default deny, explicit deny
// wins, union within an account, both sides across accounts.
func TestEvaluateMatrix(t *testing.T) {
	tests := []struct {
		name     string
		identity []string // identity policy documents
		resource string   // resource policy document, "" for none
		edit     func(*Request)
		want     Reason
	}{
		{name: "no policies: implicit deny", want: NoIdentityAllow},
		{name: "exact allow", identity: []string{doc(allowPut)}, want: Allowed},
		{name: "allow of another action", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:GetRecords", "Resource": "*"}`)}, want: NoIdentityAllow},
		{name: "allow of another stream", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": "arn:aws:kinesis:us-east-1:111122223333:stream/payments"}`)}, want: NoIdentityAllow},
		{name: "deny beats allow in one policy", identity: []string{doc(allowAll, denyPut)}, want: ExplicitDenyIdentity},
		{name: "deny beats allow across policies", identity: []string{doc(allowAll), doc(denyPut)}, want: ExplicitDenyIdentity},
		{name: "deny listed first", identity: []string{doc(denyPut, allowAll)}, want: ExplicitDenyIdentity},
		{name: "deny of another action does not apply", identity: []string{doc(allowAll, `{"Effect": "Deny", "Action": "kinesis:DeleteStream", "Resource": "*"}`)}, want: Allowed},
		{name: "resource deny beats identity allow", identity: []string{doc(allowAll)}, resource: resourceDoc("Deny", `{"AWS": "`+userA+`"}`, "kinesis:PutRecord"), want: ExplicitDenyResource},
		{name: "resource deny by account", identity: []string{doc(allowAll)}, resource: resourceDoc("Deny", `{"AWS": "`+acctA+`"}`, "kinesis:*"), want: ExplicitDenyResource},
		{name: "identity deny beats resource allow", identity: []string{doc(denyPut)}, resource: resourceDoc("Allow", `"*"`, "kinesis:PutRecord"), want: ExplicitDenyIdentity},
		{name: "both deny: identity reported", identity: []string{doc(denyPut)}, resource: resourceDoc("Deny", `"*"`, "kinesis:PutRecord"), want: ExplicitDenyIdentity},
		{name: "nil identity policy skipped", identity: nil, resource: resourceDoc("Allow", `"*"`, "kinesis:PutRecord"), want: Allowed},

		// Action wildcards and case.
		{name: "Get* allows GetRecords", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}`)}, edit: action("kinesis:GetRecords"), want: Allowed},
		{name: "Get* does not allow PutRecord", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}`)}, want: NoIdentityAllow},
		{name: "Get* does not allow DescribeStream", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}`)}, edit: action("kinesis:DescribeStream"), want: NoIdentityAllow},
		{name: "kinesis:*", identity: []string{doc(allowStreamsA)}, edit: action("kinesis:DeleteStream"), want: Allowed},
		{name: "kinesis:* is not s3", identity: []string{doc(`{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}`)}, want: NoIdentityAllow},
		{name: "action case-insensitive", identity: []string{doc(`{"Effect": "Allow", "Action": "KINESIS:putrecord", "Resource": "*"}`)}, want: Allowed},
		{name: "request action case-insensitive", identity: []string{doc(allowPut)}, edit: action("Kinesis:PUTRECORD"), want: Allowed},
		{name: "wildcard case-insensitive", identity: []string{doc(`{"Effect": "Allow", "Action": "Kinesis:put*", "Resource": "*"}`)}, edit: action("kinesis:PutRecords"), want: Allowed},
		{name: "? matches one character", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:PutRecor?", "Resource": "*"}`)}, want: Allowed},
		{name: "? needs one character", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:PutRecord?", "Resource": "*"}`)}, want: NoIdentityAllow},
		{name: "action list", identity: []string{doc(`{"Effect": "Allow", "Action": ["kinesis:ListShards", "kinesis:PutRecord"], "Resource": "*"}`)}, want: Allowed},

		// NotAction.
		{name: "NotAction allows others", identity: []string{doc(`{"Effect": "Allow", "NotAction": "kinesis:Delete*", "Resource": "*"}`)}, want: Allowed},
		{name: "NotAction excludes listed", identity: []string{doc(`{"Effect": "Allow", "NotAction": "kinesis:Delete*", "Resource": "*"}`)}, edit: action("kinesis:DeleteStream"), want: NoIdentityAllow},
		{name: "Deny NotAction denies others", identity: []string{doc(allowAll, `{"Effect": "Deny", "NotAction": ["kinesis:Get*", "kinesis:Describe*"], "Resource": "*"}`)}, want: ExplicitDenyIdentity},
		{name: "Deny NotAction spares listed", identity: []string{doc(allowAll, `{"Effect": "Deny", "NotAction": ["kinesis:Get*", "kinesis:Describe*"], "Resource": "*"}`)}, edit: action("kinesis:GetRecords"), want: Allowed},

		// Resources.
		{name: "NotResource allows others", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "NotResource": "arn:aws:kinesis:*:*:stream/secret"}`)}, want: Allowed},
		{name: "NotResource excludes listed", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "NotResource": "arn:aws:kinesis:*:*:stream/orders"}`)}, want: NoIdentityAllow},
		{name: "Deny NotResource", identity: []string{doc(allowAll, `{"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:kinesis:*:*:stream/payments"}`)}, want: ExplicitDenyIdentity},
		{name: "stream/orders-* matches orders-eu", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:*:stream/orders-*"}`)}, edit: resource("arn:aws:kinesis:us-east-1:111122223333:stream/orders-eu"), want: Allowed},
		{name: "stream/orders-* does not match orders", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:*:stream/orders-*"}`)}, want: NoIdentityAllow},
		{name: "stream/orders-?? matches orders-eu", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:*:stream/orders-??"}`)}, edit: resource("arn:aws:kinesis:us-east-1:111122223333:stream/orders-eu"), want: Allowed},
		{name: "stream/orders-?? does not match orders-eu1", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:*:stream/orders-??"}`)}, edit: resource("arn:aws:kinesis:us-east-1:111122223333:stream/orders-eu1"), want: NoIdentityAllow},
		{name: "resource case-sensitive", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:*:stream/Orders"}`)}, want: NoIdentityAllow},
		{name: "* crosses : and /", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*"}`)}, edit: resource(consumer), want: Allowed},
		{name: "stream/orders/* matches its consumer", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:SubscribeToShard", "Resource": "arn:aws:kinesis:us-east-1:111122223333:stream/orders/consumer/*"}`)}, edit: func(r *Request) { r.Action, r.Resource = "kinesis:SubscribeToShard", consumer }, want: Allowed},
		{name: "stream ARN does not match its consumer", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "` + streamA + `"}`)}, edit: resource(consumer), want: NoIdentityAllow},
		{name: "other account's stream pattern", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "Resource": "arn:aws:kinesis:*:444455556666:stream/*"}`)}, want: NoIdentityAllow},

		// Actions without a resource type are asked about "*".
		{name: "resource-less action with Resource *", identity: []string{doc(allowAll)}, edit: func(r *Request) { r.Action, r.Resource, r.ResourceAccount = "kinesis:ListStreams", "*", "" }, want: Allowed},
		{name: "resource-less action needs Resource *", identity: []string{doc(allowStreamsA)}, edit: func(r *Request) { r.Action, r.Resource, r.ResourceAccount = "kinesis:UpdateShardCount", "*", "" }, want: NoIdentityAllow},
		{name: "NotResource and *", identity: []string{doc(`{"Effect": "Allow", "Action": "kinesis:*", "NotResource": "arn:aws:kinesis:*:*:stream/secret"}`)}, edit: func(r *Request) { r.Action, r.Resource, r.ResourceAccount = "kinesis:ListStreams", "*", "" }, want: Allowed},

		// Same account: either side suffices, but an account principal delegates.
		{name: "same account: resource policy names the user", resource: resourceDoc("Allow", `{"AWS": "`+userA+`"}`, "kinesis:PutRecord"), want: Allowed},
		{name: "same account: resource policy names *", resource: resourceDoc("Allow", `"*"`, "kinesis:PutRecord"), want: Allowed},
		{name: "same account: resource policy names AWS *", resource: resourceDoc("Allow", `{"AWS": "*"}`, "kinesis:PutRecord"), want: Allowed},
		{name: "same account: resource policy names the account id", resource: resourceDoc("Allow", `{"AWS": "`+acctA+`"}`, "kinesis:PutRecord"), want: NoIdentityAllow},
		{name: "same account: resource policy names :root", resource: resourceDoc("Allow", `{"AWS": "arn:aws:iam::`+acctA+`:root"}`, "kinesis:PutRecord"), want: NoIdentityAllow},
		{name: "same account: account principal plus identity allow", identity: []string{doc(allowPut)}, resource: resourceDoc("Allow", `{"AWS": "`+acctA+`"}`, "kinesis:PutRecord"), want: Allowed},
		{name: "same account: resource policy names another user", resource: resourceDoc("Allow", `{"AWS": "`+userA2+`"}`, "kinesis:PutRecord"), want: NoIdentityAllow},
		{name: "same account: resource policy for another action", resource: resourceDoc("Allow", `"*"`, "kinesis:GetRecords"), want: NoIdentityAllow},
		{name: "same account: resource statement for another resource", resource: doc(`{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "arn:aws:kinesis:*:*:stream/other"}`), want: NoIdentityAllow},
		{name: "same account: principal list", resource: resourceDoc("Allow", `{"AWS": ["`+userB+`", "`+userA+`"]}`, "kinesis:PutRecord"), want: Allowed},
		{name: "same account: ResourceAccount empty", identity: []string{doc(allowAll)}, edit: func(r *Request) { r.ResourceAccount = "" }, want: Allowed},
		{name: "account derived from ARN", resource: resourceDoc("Allow", `{"AWS": "`+userA+`"}`, "kinesis:PutRecord"), edit: func(r *Request) { r.Principal.Account = "" }, want: Allowed},

		// Cross-account: both sides.
		{name: "cross: both allow (account id)", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `{"AWS": "`+acctB+`"}`, "kinesis:PutRecord"), edit: caller(userB), want: Allowed},
		{name: "cross: both allow (:root)", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `{"AWS": "arn:aws:iam::`+acctB+`:root"}`, "kinesis:Put*"), edit: caller(userB), want: Allowed},
		{name: "cross: both allow (user ARN)", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `{"AWS": "`+userB+`"}`, "kinesis:PutRecord"), edit: caller(userB), want: Allowed},
		{name: "cross: both allow (*)", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `"*"`, "kinesis:PutRecord"), edit: caller(userB), want: Allowed},
		{name: "cross: identity only, no resource policy", identity: []string{doc(allowStreamsA)}, edit: caller(userB), want: NoResourceAllow},
		{name: "cross: resource policy names another account", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `{"AWS": "`+acctA+`"}`, "kinesis:PutRecord"), edit: caller(userB), want: NoResourceAllow},
		{name: "cross: resource policy names another user of the account", identity: []string{doc(allowStreamsA)}, resource: resourceDoc("Allow", `{"AWS": "arn:aws:iam::444455556666:user/other"}`, "kinesis:PutRecord"), edit: caller(userB), want: NoResourceAllow},
		{name: "cross: resource only", resource: resourceDoc("Allow", `"*"`, "kinesis:PutRecord"), edit: caller(userB), want: NoIdentityAllow},
		{name: "cross: neither", edit: caller(userB), want: NoIdentityAllow},
		{name: "cross: resource deny", identity: []string{doc(allowStreamsA)}, resource: doc(
			`{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}`,
			`{"Effect": "Deny", "Principal": {"AWS": "`+acctB+`"}, "Action": "kinesis:PutRecord", "Resource": "*"}`), edit: caller(userB), want: ExplicitDenyResource},

		// NotPrincipal.
		{name: "Deny NotPrincipal spares the listed user", identity: []string{doc(allowAll)}, resource: doc(`{"Effect": "Deny", "NotPrincipal": {"AWS": "` + userA + `"}, "Action": "*", "Resource": "*"}`), want: Allowed},
		{name: "Deny NotPrincipal denies the others", identity: []string{doc(allowAll)}, resource: doc(`{"Effect": "Deny", "NotPrincipal": {"AWS": "` + userA + `"}, "Action": "*", "Resource": "*"}`), edit: caller(userA2), want: ExplicitDenyResource},
		{name: "Deny NotPrincipal listing the account spares its users", identity: []string{doc(allowAll)}, resource: doc(`{"Effect": "Deny", "NotPrincipal": {"AWS": "` + acctA + `"}, "Action": "*", "Resource": "*"}`), edit: caller(userA2), want: Allowed},
		{name: "Allow NotPrincipal grants the others", resource: doc(`{"Effect": "Allow", "NotPrincipal": {"AWS": "` + userA2 + `"}, "Action": "*", "Resource": "*"}`), want: Allowed},
		{name: "Allow NotPrincipal excludes the listed", resource: doc(`{"Effect": "Allow", "NotPrincipal": {"AWS": "` + userA + `"}, "Action": "*", "Resource": "*"}`), want: NoIdentityAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []*Policy
			for _, d := range tt.identity {
				ids = append(ids, mustIdentity(t, d))
			}
			ids = append(ids, nil) // a nil entry is skipped
			var res *Policy
			if tt.resource != "" {
				res = mustResource(t, tt.resource)
			}
			req := baseRequest()
			if tt.edit != nil {
				tt.edit(&req)
			}
			got := Evaluate(req, ids, res)
			if got.Reason != tt.want || got.Allowed != (tt.want == Allowed) {
				t.Fatalf("Evaluate = %+v, want %v", got, tt.want)
			}
			if got.Allowed != (got.Message == "") {
				t.Fatalf("Allowed %v with message %q", got.Allowed, got.Message)
			}
		})
	}
}

func action(a string) func(*Request)   { return func(r *Request) { r.Action = a } }
func resource(a string) func(*Request) { return func(r *Request) { r.Resource = a } }
func caller(arn string) func(*Request) { return func(r *Request) { r.Principal = principals[arn] } }

func TestEvaluateMessages(t *testing.T) {
	put := baseRequest()
	list := baseRequest()
	list.Action, list.Resource, list.ResourceAccount = "kinesis:ListStreams", "*", ""
	cross := baseRequest()
	cross.Principal = principals[userB]
	cross.Action = "kinesis:DescribeStreamSummary"
	tests := []struct {
		name     string
		req      Request
		identity *Policy
		resource *Policy
		want     string
	}{
		{"implicit", put, nil, nil,
			"User: arn:aws:iam::111122223333:user/orders-producer is not authorized to perform: kinesis:PutRecord on resource: arn:aws:kinesis:us-east-1:111122223333:stream/orders because no identity-based policy allows the kinesis:PutRecord action"},
		{"identity deny", put, mustIdentity(t, doc(allowAll, denyPut)), nil,
			"User: arn:aws:iam::111122223333:user/orders-producer is not authorized to perform: kinesis:PutRecord on resource: arn:aws:kinesis:us-east-1:111122223333:stream/orders with an explicit deny in an identity-based policy"},
		{"resource deny", put, mustIdentity(t, doc(allowAll)), mustResource(t, resourceDoc("Deny", `"*"`, "kinesis:*")),
			"User: arn:aws:iam::111122223333:user/orders-producer is not authorized to perform: kinesis:PutRecord on resource: arn:aws:kinesis:us-east-1:111122223333:stream/orders with an explicit deny in a resource-based policy"},
		{"cross-account, no resource allow", cross, mustIdentity(t, doc(allowAll)), nil,
			"User: arn:aws:iam::444455556666:user/analytics is not authorized to perform: kinesis:DescribeStreamSummary on resource: arn:aws:kinesis:us-east-1:111122223333:stream/orders because no resource-based policy allows the kinesis:DescribeStreamSummary action"},
		{"resource-less", list, nil, nil,
			"User: arn:aws:iam::111122223333:user/orders-producer is not authorized to perform: kinesis:ListStreams on resource: * because no identity-based policy allows the kinesis:ListStreams action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []*Policy
			if tt.identity != nil {
				ids = []*Policy{tt.identity}
			}
			got := Evaluate(tt.req, ids, tt.resource)
			if got.Allowed || got.Message != tt.want {
				t.Fatalf("Evaluate = %+v\nwant message %q", got, tt.want)
			}
		})
	}
	if m := denyMessage(userA, "kinesis:PutRecord", streamA, "because no identity-based policy allows the kinesis:PutRecord action"); m != tests[0].want {
		t.Fatalf("denyMessage helper disagrees: %q", m)
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{
		Allowed: "Allowed", NoIdentityAllow: "NoIdentityAllow", NoResourceAllow: "NoResourceAllow",
		ExplicitDenyIdentity: "ExplicitDenyIdentity", ExplicitDenyResource: "ExplicitDenyResource", 0: "Reason(0)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, want)
		}
	}
}

// TestEvaluateAllowDoesNotAllocate holds Evaluate to its promise: the allow
// path, which the server takes on every PutRecord, allocates nothing.
func TestEvaluateAllowDoesNotAllocate(t *testing.T) {
	ids := []*Policy{mustIdentity(t, doc(
		`{"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "*"}`,
		`{"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Resource": "arn:aws:kinesis:*:111122223333:stream/orders*",
		  "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}, "Bool": {"aws:SecureTransport": "true"},
		                "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/orders-*"}, "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}`))}
	res := mustResource(t, resourceDoc("Allow", `{"AWS": "`+acctB+`"}`, "kinesis:PutRecord"))
	req := baseRequest()
	if got := Evaluate(req, ids, res); !got.Allowed {
		t.Fatalf("Evaluate = %+v, want allowed", got)
	}
	if n := testing.AllocsPerRun(100, func() { Evaluate(req, ids, res) }); n != 0 {
		t.Fatalf("Evaluate allocates %v times per allowed call, want 0", n)
	}
}
