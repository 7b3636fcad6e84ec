package iampolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// stmt is one Allow statement with the given extra members.
func stmt(extra string) string {
	s := `{"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": "*"`
	if extra != "" {
		s += ", " + extra
	}
	return s + "}"
}

func withCond(cond string) string { return doc(stmt(`"Condition": ` + cond)) }

func TestParseErrors(t *testing.T) {
	const ident, res = false, true
	tests := []struct {
		name     string
		resource bool
		doc      string
		want     string // the whole message
	}{
		{"unknown statement member", ident, doc(stmt(""), stmt(`"Condtion": {}`)), `Statement[1]: unknown member "Condtion"`},
		{"unknown top-level member", ident, `{"Version": "2012-10-17", "Statements": []}`, `unknown member "Statements"`},
		{"member names are case-sensitive", ident, `{"version": "2012-10-17"}`, `unknown member "version"`},
		{"missing Statement", ident, `{"Version": "2012-10-17"}`, `missing Statement`},
		{"empty Statement", ident, `{"Statement": []}`, `Statement: must not be an empty array`},
		{"Statement a string", ident, `{"Statement": "x"}`, `Statement: want an object or an array of objects, got string`},
		{"Statement element not an object", ident, `{"Statement": [1]}`, `Statement[0]: want object, got number`},
		{"document not an object", ident, `[]`, `want a policy object, got array`},
		{"bad Version", ident, `{"Version": "2012-10-18", "Statement": []}`, `Version: must be "2012-10-17" or "2008-10-17", got "2012-10-18"`},
		{"Version a number", ident, `{"Version": 2012, "Statement": []}`, `Version: want string, got number`},
		{"Id a number", ident, `{"Id": 1, "Statement": []}`, `Id: want string, got number`},
		{"bad Effect", ident, doc(`{"Effect": "allow", "Action": "*", "Resource": "*"}`), `Statement[0].Effect: must be "Allow" or "Deny", got "allow"`},
		{"Effect not a string", ident, doc(`{"Effect": true, "Action": "*", "Resource": "*"}`), `Statement[0].Effect: want string, got boolean`},
		{"missing Effect", ident, doc(`{"Action": "*", "Resource": "*"}`), `Statement[0]: missing Effect`},
		{"Sid a number", ident, doc(stmt(`"Sid": 5`)), `Statement[0].Sid: want string, got number`},
		{"duplicate Sid", ident, doc(stmt(`"Sid": "A"`), stmt(`"Sid": "B"`), stmt(`"Sid": "A"`)), `Statement[2].Sid: duplicate Sid "A" (also Statement[0])`},
		{"Action and NotAction", ident, doc(stmt(`"NotAction": "kinesis:Get*"`)), `Statement[0]: has both Action and NotAction`},
		{"no Action", ident, doc(`{"Effect": "Allow", "Resource": "*"}`), `Statement[0]: missing Action or NotAction`},
		{"Action a number", ident, doc(`{"Effect": "Allow", "Action": 7, "Resource": "*"}`), `Statement[0].Action: want a string or an array of strings, got number`},
		{"Action element a number", ident, doc(`{"Effect": "Allow", "Action": ["kinesis:PutRecord", 7], "Resource": "*"}`), `Statement[0].Action[1]: want string, got number`},
		{"Action empty array", ident, doc(`{"Effect": "Allow", "Action": [], "Resource": "*"}`), `Statement[0].Action: must not be an empty array`},
		{"Action without service", ident, doc(`{"Effect": "Allow", "Action": "PutRecord", "Resource": "*"}`), `Statement[0].Action: action "PutRecord" must be "*" or "service:Name" (for example "kinesis:PutRecord")`},
		{"Action with space", ident, doc(`{"Effect": "Allow", "Action": ["kinesis:Put Record"], "Resource": "*"}`), `Statement[0].Action[0]: action "kinesis:Put Record" contains white space or a control character`},
		{"Resource and NotResource", ident, doc(stmt(`"NotResource": "*"`)), `Statement[0]: has both Resource and NotResource`},
		{"no Resource", ident, doc(`{"Effect": "Allow", "Action": "*"}`), `Statement[0]: missing Resource or NotResource`},
		{"Resource not an ARN", ident, doc(`{"Effect": "Allow", "Action": "*", "Resource": ["*", "orders"]}`), `Statement[0].Resource[1]: resource "orders" must be "*" or an ARN`},
		{"Resource null", ident, doc(`{"Effect": "Allow", "Action": "*", "Resource": null}`), `Statement[0].Resource: want a string or an array of strings, got null`},
		{"policy variable", ident, doc(`{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:kinesis:*:*:stream/${aws:username}-*"}`), `Statement[0].Resource: policy variable "${aws:username}" is not supported`},
		{"Principal in identity policy", ident, doc(stmt(`"Principal": "*"`)), `Statement[0].Principal: not allowed in an identity-based policy`},
		{"NotPrincipal in identity policy", ident, doc(stmt(`"NotPrincipal": {"AWS": "111122223333"}`)), `Statement[0].NotPrincipal: not allowed in an identity-based policy`},
		{"missing Principal in resource policy", res, doc(stmt(`"Principal": "*"`), stmt("")), `Statement[1]: missing Principal or NotPrincipal (a resource-based policy must name who it applies to)`},
		{"Principal and NotPrincipal", res, doc(stmt(`"Principal": "*", "NotPrincipal": "*"`)), `Statement[0]: has both Principal and NotPrincipal`},
		{"Principal string not *", res, doc(stmt(`"Principal": "111122223333"`)), `Statement[0].Principal: a string principal must be "*", got "111122223333" (use {"AWS": ...})`},
		{"Principal array", res, doc(stmt(`"Principal": ["*"]`)), `Statement[0].Principal: want "*" or an object, got array`},
		{"Principal empty object", res, doc(stmt(`"Principal": {}`)), `Statement[0].Principal: must name at least one principal`},
		{"Principal Service", res, doc(stmt(`"Principal": {"Service": "firehose.amazonaws.com"}`)), `Statement[0].Principal.Service: principal type "Service" is not supported (only "AWS")`},
		{"Principal unknown type", res, doc(stmt(`"Principal": {"aws": "*"}`)), `Statement[0].Principal: unknown member "aws"`},
		{"Principal wildcard ARN", res, doc(stmt(`"Principal": {"AWS": ["111122223333", "arn:aws:iam::111122223333:user/*"]}`)), `Statement[0].Principal.AWS[1]: principal "arn:aws:iam::111122223333:user/*" must be "*", a 12-digit account id, or an IAM ARN (wildcards are only allowed as "*" on its own)`},
		{"Principal bad name", res, doc(stmt(`"Principal": {"AWS": "bob"}`)), `Statement[0].Principal.AWS: principal "bob" must be "*", a 12-digit account id, or an IAM ARN`},
		{"Principal short account", res, doc(stmt(`"Principal": {"AWS": "arn:aws:iam::1234:root"}`)), `Statement[0].Principal.AWS: principal "arn:aws:iam::1234:root" must be "*", a 12-digit account id, or an IAM ARN`},
		{"Principal kinesis ARN", res, doc(stmt(`"Principal": {"AWS": "arn:aws:kinesis::111122223333:stream/x"}`)), `Statement[0].Principal.AWS: principal "arn:aws:kinesis::111122223333:stream/x" must be "*", a 12-digit account id, or an IAM ARN`},
		{"Principal empty list", res, doc(stmt(`"Principal": {"AWS": []}`)), `Statement[0].Principal.AWS: must not be an empty array`},
		{"Condition an array", ident, withCond(`[]`), `Statement[0].Condition: want object, got array`},
		{"unsupported operator", ident, withCond(`{"NumericEquals": {"aws:EpochTime": "1"}}`), `Statement[0].Condition: unsupported condition operator "NumericEquals"`},
		{"unsupported set operator", ident, withCond(`{"ForAnyValue:StringEquals": {"aws:username": "a"}}`), `Statement[0].Condition: unsupported condition operator "ForAnyValue:StringEquals"`},
		{"operator names are case-sensitive", ident, withCond(`{"stringequals": {"aws:username": "a"}}`), `Statement[0].Condition: unsupported condition operator "stringequals"`},
		{"Null operator", ident, withCond(`{"Null": {"aws:username": "true"}}`), `Statement[0].Condition: unsupported condition operator "Null"`},
		{"unsupported tag key", ident, withCond(`{"StringEquals": {"aws:ResourceTag/env": "prod"}}`), `Statement[0].Condition.StringEquals: unsupported condition key "aws:ResourceTag/env"`},
		{"unsupported kinesis key", ident, withCond(`{"StringEquals": {"kinesis:FisActionId": "x"}}`), `Statement[0].Condition.StringEquals: unsupported condition key "kinesis:FisActionId"`},
		{"operator block not an object", ident, withCond(`{"StringEquals": "x"}`), `Statement[0].Condition.StringEquals: want object, got string`},
		{"operator block empty", ident, withCond(`{"StringEquals": {}}`), `Statement[0].Condition.StringEquals: must test at least one condition key`},
		{"string operator on IP key", ident, withCond(`{"StringEquals": {"aws:SourceIp": "10.0.0.1"}}`), `Statement[0].Condition.StringEquals: operator StringEquals needs a string key; aws:SourceIp is an IP address key`},
		{"IP operator on string key", ident, withCond(`{"IpAddressIfExists": {"aws:username": "10.0.0.1"}}`), `Statement[0].Condition.IpAddressIfExists: operator IpAddress needs an IP address key; aws:username is a string key`},
		{"bad CIDR", ident, withCond(`{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "10.0.0.300/8"]}}`), `Statement[0].Condition.IpAddress.aws:SourceIp[1]: invalid IP address or CIDR block "10.0.0.300/8"`},
		{"CIDR too long", ident, withCond(`{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/33"}}`), `Statement[0].Condition.NotIpAddress.aws:SourceIp: invalid IP address or CIDR block "10.0.0.0/33"`},
		{"IP with zone", ident, withCond(`{"IpAddress": {"aws:SourceIp": "fe80::1%eth0"}}`), `Statement[0].Condition.IpAddress.aws:SourceIp: invalid IP address or CIDR block "fe80::1%eth0"`},
		{"bad date", ident, withCond(`{"DateLessThan": {"aws:CurrentTime": "tomorrow"}}`), `Statement[0].Condition.DateLessThan.aws:CurrentTime: invalid date "tomorrow" (want ISO 8601, such as 2026-01-02T15:04:05Z, or epoch seconds)`},
		{"bad bool", ident, withCond(`{"Bool": {"aws:SecureTransport": "yes"}}`), `Statement[0].Condition.Bool.aws:SecureTransport: invalid boolean "yes" (want "true" or "false")`},
		{"condition value object", ident, withCond(`{"StringEquals": {"aws:username": {}}}`), `Statement[0].Condition.StringEquals.aws:username: want a string, number, boolean or an array of them, got object`},
		{"condition value null element", ident, withCond(`{"StringEquals": {"aws:username": ["a", null]}}`), `Statement[0].Condition.StringEquals.aws:username[1]: want a string, number or boolean, got null`},
		{"condition values empty", ident, withCond(`{"StringEquals": {"aws:username": []}}`), `Statement[0].Condition.StringEquals.aws:username: must not be an empty array`},
		{"condition policy variable", ident, withCond(`{"StringLike": {"aws:PrincipalArn": "${aws:PrincipalArn}"}}`), `Statement[0].Condition.StringLike.aws:PrincipalArn: policy variable "${aws:PrincipalArn}" is not supported`},
		{"single statement object path", ident, `{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1}}`, `Statement: unknown member "Extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseIdentity
			if tt.resource {
				parse = ParseResource
			}
			p, err := parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("parsed %s: %+v, want error %q", tt.doc, p, tt.want)
			}
			if p != nil {
				t.Fatalf("got a policy with the error %v", err)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestParseInvalidJSON(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"Statement": [}`, `{"Version": "2012-10-17",}`, `{"Statement": []} {}`, `{"Statement": []} x`,
		`{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}`, // duplicate member
		"{\"Id\": \"\xff\", \"Statement\": []}",                               // invalid UTF-8
	} {
		_, err := ParseIdentity([]byte(in))
		var perr *Error
		if !errors.As(err, &perr) || !strings.HasPrefix(err.Error(), "invalid JSON: ") {
			t.Errorf("ParseIdentity(%q) = %v, want an invalid JSON *Error", in, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name     string
		resource bool
		doc      string
		check    func(t *testing.T, p *Policy)
	}{
		{"single statement object, no Version", false,
			`{"Statement": {"Sid": "Put", "Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": "*"}}`,
			func(t *testing.T, p *Policy) {
				if p.Version != "" || len(p.Statements) != 1 || p.Statements[0].Sid != "Put" || p.Statements[0].Effect != Allow {
					t.Fatalf("parsed %+v", p)
				}
			}},
		{"legacy version keeps ${ literal", false,
			`{"Version": "2008-10-17", "Id": "legacy", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "arn:aws:kinesis:*:*:stream/${x}"}]}`,
			func(t *testing.T, p *Policy) {
				if p.ID != "legacy" || p.Version != VersionLegacy || p.Statements[0].Effect != Deny {
					t.Fatalf("parsed %+v", p)
				}
				req := baseRequest()
				req.Resource = "arn:aws:kinesis:us-east-1:111122223333:stream/${x}"
				if got := Evaluate(req, []*Policy{p}, nil); got.Reason != ExplicitDenyIdentity {
					t.Fatalf("literal ${x} resource: %+v", got)
				}
			}},
		{"every principal form", true,
			`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*", "111122223333",
			  "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/a", "arn:aws:iam::111122223333:role/path/r",
			  "arn:aws:sts::111122223333:assumed-role/r/session", "arn:aws-cn:iam::111122223333:user/b"]},
			  "Action": "kinesis:*", "Resource": "*"}]}`,
			func(t *testing.T, p *Policy) {
				ps := p.Statements[0].principals
				if !ps.anyone || len(ps.accounts) != 2 || len(ps.arns) != 4 || !p.IsResourcePolicy() {
					t.Fatalf("principals %+v", ps)
				}
			}},
		{"every operator with IfExists", false, withCond(`{
			"StringEqualsIfExists": {"aws:username": "a"}, "StringNotEqualsIfExists": {"aws:username": "a"},
			"StringEqualsIgnoreCaseIfExists": {"aws:username": "a"}, "StringNotEqualsIgnoreCaseIfExists": {"aws:username": "a"},
			"StringLikeIfExists": {"aws:username": "a*"}, "StringNotLikeIfExists": {"aws:username": "a?"},
			"IpAddressIfExists": {"aws:SourceIp": "::1"}, "NotIpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"},
			"DateEqualsIfExists": {"aws:CurrentTime": 0}, "DateNotEqualsIfExists": {"aws:CurrentTime": "2020-01-01"},
			"DateLessThanIfExists": {"aws:EpochTime": 1}, "DateLessThanEqualsIfExists": {"aws:EpochTime": 1},
			"DateGreaterThanIfExists": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}, "DateGreaterThanEqualsIfExists": {"aws:CurrentTime": 1},
			"BoolIfExists": {"aws:SecureTransport": true}}`),
			func(t *testing.T, p *Policy) {
				if n := len(p.Statements[0].conditions); n != 15 {
					t.Fatalf("%d conditions, want 15", n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseIdentity
			if tt.resource {
				parse = ParseResource
			}
			p, err := parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

// TestRaw checks that a policy keeps its document byte for byte, and that
// changing the input buffer or Raw's result afterwards changes nothing.
func TestRaw(t *testing.T) {
	in := []byte("{ \"Statement\" : [ {\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"} ] ,\n \"Version\": \"2012-10-17\" }")
	orig := bytes.Clone(in)
	p, err := ParseIdentity(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	raw := p.Raw()
	if !bytes.Equal(raw, orig) || p.String() != string(orig) {
		t.Fatalf("Raw = %q, want %q", raw, orig)
	}
	raw[0] = 'Y'
	if !bytes.Equal(p.Raw(), orig) {
		t.Fatal("changing Raw's result changed the policy")
	}
	out, err := json.Marshal(struct{ Policy *Policy }{p})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Policy json.RawMessage }
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, orig); err != nil {
		t.Fatal(err)
	}
	if string(back.Policy) != want.String() {
		t.Fatalf("marshalled %s, want %s", back.Policy, want.String())
	}
	if p.IsResourcePolicy() {
		t.Fatal("an identity policy says it is a resource policy")
	}
}
