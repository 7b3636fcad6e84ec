package iampolicy

import (
	"net/netip"
	"testing"
	"time"
)

// condAllows evaluates baseRequest, edited, against an Allow of everything
// under condition cond, and reports whether it was allowed.
func condAllows(t *testing.T, cond string, edit func(*Request)) bool {
	t.Helper()
	p := mustIdentity(t, doc(`{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": `+cond+`}`))
	req := baseRequest()
	if edit != nil {
		edit(&req)
	}
	return Evaluate(req, []*Policy{p}, nil).Allowed
}

func noUser(r *Request)   { r.Principal.UserName = "" }
func noIP(r *Request)     { r.SourceIP = netip.Addr{} }
func noTime(r *Request)   { r.Time = time.Time{} }
func insecure(r *Request) { r.SecureTransport = false }
func from(ip string) func(*Request) {
	return func(r *Request) { r.SourceIP = netip.MustParseAddr(ip) }
}

// TestConditions covers each operator true, false, with the key missing, and
// with IfExists. baseRequest is user orders-producer of 111122223333, from
// 10.1.2.3, over TLS, at 2026-03-01T12:00:00.123456789Z.
func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		cond string
		edit func(*Request)
		want bool
	}{
		// StringEquals and its negation; a missing key fails StringEquals and
		// passes StringNotEquals (AWS: negated operators are true for a
		// missing key) and every IfExists.
		{"StringEquals match", `{"StringEquals": {"aws:username": "orders-producer"}}`, nil, true},
		{"StringEquals mismatch", `{"StringEquals": {"aws:username": "billing"}}`, nil, false},
		{"StringEquals is case-sensitive", `{"StringEquals": {"aws:username": "Orders-Producer"}}`, nil, false},
		{"StringEquals any of values", `{"StringEquals": {"aws:username": ["billing", "orders-producer"]}}`, nil, true},
		{"StringEquals missing key", `{"StringEquals": {"aws:username": "orders-producer"}}`, noUser, false},
		{"StringEqualsIfExists missing key", `{"StringEqualsIfExists": {"aws:username": "orders-producer"}}`, noUser, true},
		{"StringEqualsIfExists present mismatch", `{"StringEqualsIfExists": {"aws:username": "billing"}}`, nil, false},
		{"StringNotEquals match", `{"StringNotEquals": {"aws:username": "billing"}}`, nil, true},
		{"StringNotEquals mismatch", `{"StringNotEquals": {"aws:username": "orders-producer"}}`, nil, false},
		{"StringNotEquals none of values", `{"StringNotEquals": {"aws:username": ["billing", "orders-producer"]}}`, nil, false},
		{"StringNotEquals missing key", `{"StringNotEquals": {"aws:username": "billing"}}`, noUser, true},
		{"StringNotEqualsIfExists missing key", `{"StringNotEqualsIfExists": {"aws:username": "billing"}}`, noUser, true},
		{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase": {"aws:username": "ORDERS-producer"}}`, nil, true},
		{"StringEqualsIgnoreCase mismatch", `{"StringEqualsIgnoreCase": {"aws:username": "billing"}}`, nil, false},
		{"StringEqualsIgnoreCase missing key", `{"StringEqualsIgnoreCase": {"aws:username": "x"}}`, noUser, false},
		{"StringNotEqualsIgnoreCase", `{"StringNotEqualsIgnoreCase": {"aws:username": "ORDERS-PRODUCER"}}`, nil, false},
		{"StringNotEqualsIgnoreCase other", `{"StringNotEqualsIgnoreCase": {"aws:username": "BILLING"}}`, nil, true},
		{"StringLike", `{"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/orders-*"}}`, nil, true},
		{"StringLike ?", `{"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/orders-produce?"}}`, nil, true},
		{"StringLike mismatch", `{"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/billing*"}}`, nil, false},
		{"StringLike case-sensitive", `{"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/ORDERS-*"}}`, nil, false},
		{"StringLike missing key", `{"StringLike": {"aws:PrincipalArn": "*"}}`, func(r *Request) { r.Principal.ARN = "" }, false},
		{"StringLikeIfExists missing key", `{"StringLikeIfExists": {"aws:PrincipalArn": "x"}}`, func(r *Request) { r.Principal.ARN = "" }, true},
		{"StringNotLike", `{"StringNotLike": {"aws:PrincipalArn": ["*:user/billing", "*:role/*"]}}`, nil, true},
		{"StringNotLike mismatch", `{"StringNotLike": {"aws:PrincipalArn": ["*:user/billing", "*:user/orders-*"]}}`, nil, false},
		{"PrincipalAccount", `{"StringEquals": {"aws:PrincipalAccount": "111122223333"}}`, nil, true},
		{"PrincipalAccount from ARN", `{"StringEquals": {"aws:PrincipalAccount": "111122223333"}}`, func(r *Request) { r.Principal.Account = "" }, true},
		{"PrincipalAccount other", `{"StringEquals": {"aws:PrincipalAccount": "444455556666"}}`, nil, false},

		// IP addresses.
		{"IpAddress CIDR", `{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, nil, true},
		{"IpAddress outside", `{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, from("192.168.0.1"), false},
		{"IpAddress single address", `{"IpAddress": {"aws:SourceIp": "10.1.2.3"}}`, nil, true},
		{"IpAddress single address other", `{"IpAddress": {"aws:SourceIp": "10.1.2.4"}}`, nil, false},
		{"IpAddress host bits set", `{"IpAddress": {"aws:SourceIp": "10.9.9.9/8"}}`, nil, true},
		{"IpAddress any of values", `{"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.0.0/16"]}}`, nil, true},
		{"IpAddress IPv6", `{"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}`, from("2001:db8:1::5"), true},
		{"IpAddress IPv6 outside", `{"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}`, from("2001:db9::5"), false},
		{"IpAddress v4 block, v6 caller", `{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}`, from("2001:db8::1"), false},
		{"IpAddress v4-mapped caller", `{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, from("::ffff:10.1.2.3"), true},
		{"IpAddress v4-mapped block", `{"IpAddress": {"aws:SourceIp": "::ffff:10.0.0.0/104"}}`, nil, true},
		{"IpAddress missing key", `{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}`, noIP, false},
		{"IpAddressIfExists missing key", `{"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}`, noIP, true},
		{"NotIpAddress inside", `{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, nil, false},
		{"NotIpAddress outside", `{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, from("192.168.0.1"), true},
		{"NotIpAddress missing key", `{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, noIP, true},

		// Dates, against 2026-03-01T12:00:00Z (the request's fraction is dropped).
		{"DateGreaterThan", `{"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}`, nil, true},
		{"DateGreaterThan future", `{"DateGreaterThan": {"aws:CurrentTime": "2027-01-01"}}`, nil, false},
		{"DateGreaterThan equal", `{"DateGreaterThan": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}`, nil, false},
		{"DateGreaterThanEquals equal", `{"DateGreaterThanEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}`, nil, true},
		{"DateLessThan", `{"DateLessThan": {"aws:CurrentTime": "2026-03-01T12:00:01Z"}}`, nil, true},
		{"DateLessThan equal", `{"DateLessThan": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}`, nil, false},
		{"DateLessThanEquals equal", `{"DateLessThanEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}`, nil, true},
		{"DateLessThanEquals past", `{"DateLessThanEquals": {"aws:CurrentTime": "2026-03-01T11:59:59Z"}}`, nil, false},
		{"DateEquals epoch seconds", `{"DateEquals": {"aws:CurrentTime": "1772366400"}}`, nil, true},
		{"DateEquals offset", `{"DateEquals": {"aws:CurrentTime": "2026-03-01T13:00:00+01:00"}}`, nil, true},
		{"DateEquals other", `{"DateEquals": {"aws:CurrentTime": "2026-03-01T12:00:01Z"}}`, nil, false},
		{"DateNotEquals", `{"DateNotEquals": {"aws:CurrentTime": "2026-03-01T12:00:01Z"}}`, nil, true},
		{"DateNotEquals equal", `{"DateNotEquals": {"aws:CurrentTime": "2026-03-01T12:00:00Z"}}`, nil, false},
		{"EpochTime number", `{"DateGreaterThan": {"aws:EpochTime": 1772366399}}`, nil, true},
		{"EpochTime ISO", `{"DateLessThan": {"aws:EpochTime": "2026-03-01T12:00:00Z"}}`, nil, false},
		{"Date any of values", `{"DateLessThan": {"aws:CurrentTime": ["2020-01-01", "2030-01-01"]}}`, nil, true},
		{"Date missing key", `{"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}`, noTime, false},
		{"DateIfExists missing key", `{"DateLessThanIfExists": {"aws:CurrentTime": "2020-01-01"}}`, noTime, true},
		{"DateNotEquals missing key", `{"DateNotEquals": {"aws:CurrentTime": "2020-01-01"}}`, noTime, true},

		// Bool.
		{"Bool true", `{"Bool": {"aws:SecureTransport": "true"}}`, nil, true},
		{"Bool true, insecure", `{"Bool": {"aws:SecureTransport": "true"}}`, insecure, false},
		{"Bool false, insecure", `{"Bool": {"aws:SecureTransport": "false"}}`, insecure, true},
		{"Bool JSON boolean", `{"Bool": {"aws:SecureTransport": false}}`, nil, false},
		{"Bool any case", `{"Bool": {"aws:SecureTransport": "TRUE"}}`, nil, true},
		{"BoolIfExists", `{"BoolIfExists": {"aws:SecureTransport": "false"}}`, nil, false},

		// Combining: keys in one operator, and operators, are ANDed.
		{"AND within an operator", `{"StringEquals": {"aws:username": "orders-producer", "aws:PrincipalAccount": "111122223333"}}`, nil, true},
		{"AND within an operator, one fails", `{"StringEquals": {"aws:username": "orders-producer", "aws:PrincipalAccount": "444455556666"}}`, nil, false},
		{"AND across operators", `{"StringEquals": {"aws:username": "orders-producer"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "Bool": {"aws:SecureTransport": true}}`, nil, true},
		{"AND across operators, one fails", `{"StringEquals": {"aws:username": "orders-producer"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}`, from("172.16.0.1"), false},
		{"key names any case", `{"IpAddress": {"AWS:SOURCEIP": "10.0.0.0/8"}, "StringEquals": {"Aws:UserName": "orders-producer"}}`, nil, true},
		{"empty Condition", `{}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := condAllows(t, tt.cond, tt.edit); got != tt.want {
				t.Fatalf("condition %s: allowed = %v, want %v", tt.cond, got, tt.want)
			}
		})
	}
}

// TestConditionOnDeny checks a condition on a Deny: the usual "deny unless
// from the corporate network" policy.
func TestConditionOnDeny(t *testing.T) {
	p := mustIdentity(t, doc(allowAll,
		`{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}}`))
	for ip, want := range map[string]Reason{
		"10.1.2.3":    Allowed,
		"192.0.2.200": Allowed,
		"203.0.113.9": ExplicitDenyIdentity,
	} {
		req := baseRequest()
		req.SourceIP = netip.MustParseAddr(ip)
		if got := Evaluate(req, []*Policy{p}, nil); got.Reason != want {
			t.Errorf("from %s: %+v, want %v", ip, got, want)
		}
	}
	// An unknown source address is a missing key: NotIpAddress is then true,
	// so the Deny applies (fail closed).
	req := baseRequest()
	req.SourceIP = netip.Addr{}
	if got := Evaluate(req, []*Policy{p}, nil); got.Reason != ExplicitDenyIdentity {
		t.Errorf("no source address: %+v, want explicit deny", got)
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.000Z", "2026-03-01T12:00Z", "2026-03-01T14:00:00+02:00",
		"2026-03-01T12:00:00", "2026-03-01T12:00", "20260301T120000Z", "1772366400",
	} {
		got, ok := parseDate(s)
		if !ok || !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	if got, ok := parseDate("2026-03-01"); !ok || !got.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parseDate(date only) = %v, %v", got, ok)
	}
	for _, s := range []string{"", "yesterday", "2026-13-01", "-5", "1.5", "99999999999999999999", "2026-03-01T25:00:00Z"} {
		if got, ok := parseDate(s); ok {
			t.Errorf("parseDate(%q) = %v, want failure", s, got)
		}
	}
}

// TestMissingKeyEveryOperator: with the key absent from the request, every
// operator with IfExists matches, every negated operator matches, and every
// other operator fails. (aws:SecureTransport is always present, so Bool has
// no missing case.)
func TestMissingKeyEveryOperator(t *testing.T) {
	missing := map[keyType]struct {
		key, value string
		edit       func(*Request)
	}{
		typeString: {"aws:username", `"nobody"`, noUser},
		typeIP:     {"aws:SourceIp", `"192.0.2.0/24"`, noIP},
		typeDate:   {"aws:CurrentTime", `"2000-01-01T00:00:00Z"`, noTime},
	}
	n := 0
	for name, info := range operators {
		m, ok := missing[info.typ]
		if !ok {
			continue
		}
		for _, ifExists := range []bool{false, true} {
			op := name
			if ifExists {
				op += "IfExists"
			}
			want := ifExists || info.negated
			if got := condAllows(t, `{"`+op+`": {"`+m.key+`": `+m.value+`}}`, m.edit); got != want {
				t.Errorf("%s with %s missing: allowed = %v, want %v", op, m.key, got, want)
			}
			n++
		}
	}
	if n != 28 {
		t.Fatalf("checked %d operator forms, want 28 (14 operators, with and without IfExists)", n)
	}
}
