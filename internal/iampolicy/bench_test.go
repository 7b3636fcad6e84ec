package iampolicy

import (
	"testing"
)

// BenchmarkEvaluate measures the per-request cost the server pays on every
// call, for typical policies: a producer's identity policy (with a Deny
// guard and conditions), a cross-account call through a resource policy,
// and a denial (which builds the message).
func BenchmarkEvaluate(b *testing.B) {
	producer := []*Policy{
		mustIdentity(b, doc(
			`{"Sid": "NoDeletes", "Effect": "Deny", "Action": ["kinesis:Delete*", "kinesis:Deregister*"], "Resource": "*"}`,
			`{"Sid": "Read", "Effect": "Allow", "Action": ["kinesis:Describe*", "kinesis:List*"], "Resource": "arn:aws:kinesis:*:111122223333:stream/*"}`,
			`{"Sid": "Write", "Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"], "Resource": "arn:aws:kinesis:*:111122223333:stream/orders*"}`)),
	}
	conditioned := []*Policy{
		mustIdentity(b, doc(
			`{"Effect": "Allow", "Action": "kinesis:Put*", "Resource": "arn:aws:kinesis:*:111122223333:stream/orders",
			  "Condition": {"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}, "Bool": {"aws:SecureTransport": "true"},
			                "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/orders-*"}, "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}`,
			`{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}`)),
	}
	crossIdentity := []*Policy{mustIdentity(b, doc(allowStreamsA))}
	resourcePolicy := mustResource(b, doc(
		`{"Effect": "Deny", "Principal": "*", "Action": "kinesis:Delete*", "Resource": "*"}`,
		`{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root", "444455556666"]}, "Action": ["kinesis:Get*", "kinesis:Put*"], "Resource": "`+streamA+`"}`))

	same := baseRequest()
	cross := baseRequest()
	cross.Principal = principals[userB]
	denied := baseRequest()
	denied.Action = "kinesis:DeleteStream"

	cases := []struct {
		name     string
		req      Request
		identity []*Policy
		resource *Policy
		allowed  bool
	}{
		{"allow/identity", same, producer, nil, true},
		{"allow/conditions", same, conditioned, nil, true},
		{"allow/cross-account", cross, crossIdentity, resourcePolicy, true},
		{"deny/explicit", denied, producer, nil, false},
		{"deny/implicit", same, crossIdentity[:0], nil, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if got := Evaluate(c.req, c.identity, c.resource); got.Allowed != c.allowed {
				b.Fatalf("Evaluate = %+v, want allowed %v", got, c.allowed)
			}
			b.ReportAllocs()
			for b.Loop() {
				Evaluate(c.req, c.identity, c.resource)
			}
		})
	}
}

// BenchmarkParse measures parsing a typical identity policy (done once per
// config load or PutResourcePolicy, not per request).
func BenchmarkParse(b *testing.B) {
	in := []byte(doc(allowPut, denyPut, allowStreamsA, stmt(`"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`)))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseIdentity(in); err != nil {
			b.Fatal(err)
		}
	}
}
