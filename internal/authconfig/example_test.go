package authconfig_test

import (
	"fmt"

	"github.com/shoalstream/shoal/internal/authconfig"
	"github.com/shoalstream/shoal/internal/iampolicy"
)

// Example parses a config, finds the principal behind an access key id, and
// asks whether it may put records to its stream.
func Example() {
	cfg, err := authconfig.Parse([]byte(`{"principals": [
	  {"name": "orders-producer",
	   "accessKeys": [{"accessKeyId": "AKIAORDERSPRODUCER01", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}],
	   "policies": [{"Version": "2012-10-17", "Statement": [
	     {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
	      "Resource": "arn:aws:kinesis:*:111122223333:stream/orders"}]}]}
	]}`), "111122223333")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, key, ok := cfg.Key("AKIAORDERSPRODUCER01")
	fmt.Println(ok, p.ARN)
	fmt.Println(key) // the secret is not printed

	res := iampolicy.Evaluate(iampolicy.Request{
		Principal: p.IAMPrincipal(),
		Action:    "kinesis:PutRecord",
		Resource:  "arn:aws:kinesis:us-east-1:111122223333:stream/orders",
	}, p.Policies, nil)
	fmt.Println(res.Allowed)

	_, err = authconfig.Parse([]byte(`{"principals": [{"name": "x", "accessKeys": [{"accessKeyId": "AKIAORDERSPRODUCER01", "secretKey": "s"}]}]}`), "111122223333")
	fmt.Println(err)
	// Output:
	// true arn:aws:iam::111122223333:user/orders-producer
	// {AccessKeyID:AKIAORDERSPRODUCER01 SecretAccessKey:REDACTED}
	// true
	// principals[0].accessKeys[0]: unknown field "secretKey"
}
