package iampolicy

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	acctA    = "111122223333"
	acctB    = "444455556666"
	userA    = "arn:aws:iam::111122223333:user/orders-producer"
	userA2   = "arn:aws:iam::111122223333:user/billing"
	userB    = "arn:aws:iam::444455556666:user/analytics"
	streamA  = "arn:aws:kinesis:us-east-1:111122223333:stream/orders"
	consumer = "arn:aws:kinesis:us-east-1:111122223333:stream/orders/consumer/app:1616044553"
)

// doc wraps statements in a 2012-10-17 policy document.
func doc(stmts ...string) string {
	return `{"Version": "2012-10-17", "Statement": [` + strings.Join(stmts, ",") + `]}`
}

func mustIdentity(tb testing.TB, s string) *Policy {
	tb.Helper()
	p, err := ParseIdentity([]byte(s))
	if err != nil {
		tb.Fatalf("ParseIdentity(%s): %v", s, err)
	}
	return p
}

func mustResource(tb testing.TB, s string) *Policy {
	tb.Helper()
	p, err := ParseResource([]byte(s))
	if err != nil {
		tb.Fatalf("ParseResource(%s): %v", s, err)
	}
	return p
}

// principals by ARN, as the server would fill them in.
var principals = map[string]Principal{
	userA:  {ARN: userA, Account: acctA, UserName: "orders-producer"},
	userA2: {ARN: userA2, Account: acctA, UserName: "billing"},
	userB:  {ARN: userB, Account: acctB, UserName: "analytics"},
}

// baseRequest is user A putting a record to its own account's stream over
// TLS from 10.1.2.3 at a fixed time.
func baseRequest() Request {
	return Request{
		Principal:       principals[userA],
		Action:          "kinesis:PutRecord",
		Resource:        streamA,
		ResourceAccount: acctA,
		SourceIP:        netip.MustParseAddr("10.1.2.3"),
		Time:            time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		SecureTransport: true,
	}
}

func denyMessage(principal, action, resource, why string) string {
	return "User: " + principal + " is not authorized to perform: " + action + " on resource: " + resource + " " + why
}
