package iampolicy_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/shoalstream/shoal/internal/iampolicy"
)

// Example parses a producer's identity policy and asks about two requests:
// one it allows, and one only another account's resource policy could allow.
func Example() {
	producer, err := iampolicy.ParseIdentity([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
	     "Resource": "arn:aws:kinesis:*:111122223333:stream/orders-*",
	     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
	    {"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "*"}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := iampolicy.Request{
		Principal: iampolicy.Principal{
			ARN: "arn:aws:iam::111122223333:user/orders-producer", Account: "111122223333", UserName: "orders-producer",
		},
		Action:          "kinesis:PutRecord",
		Resource:        "arn:aws:kinesis:us-east-1:111122223333:stream/orders-eu",
		ResourceAccount: "111122223333",
		SourceIP:        netip.MustParseAddr("10.1.2.3"),
		Time:            time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		SecureTransport: true,
	}
	fmt.Println(iampolicy.Evaluate(req, []*iampolicy.Policy{producer}, nil).Reason)

	req.Action = "kinesis:DeleteStream"
	res := iampolicy.Evaluate(req, []*iampolicy.Policy{producer}, nil)
	fmt.Println(res.Reason)
	fmt.Println(res.Message)

	_, err = iampolicy.ParseIdentity([]byte(`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condtion": {}}]}`))
	fmt.Println(err)
	// Output:
	// Allowed
	// ExplicitDenyIdentity
	// User: arn:aws:iam::111122223333:user/orders-producer is not authorized to perform: kinesis:DeleteStream on resource: arn:aws:kinesis:us-east-1:111122223333:stream/orders-eu with an explicit deny in an identity-based policy
	// Statement[0]: unknown member "Condtion"
}
