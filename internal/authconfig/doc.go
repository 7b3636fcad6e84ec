// Package authconfig reads the server's --auth-config file: the IAM users
// that may call the server, their access keys, and their identity-based
// policies.
//
// The file is JSON:
//
//	{"principals": [
//	  {"name": "orders-producer", "accountId": "111122223333",
//	   "accessKeys": [{"accessKeyId": "AKIAORDERSPRODUCER01", "secretAccessKey": "...",
//	                   "sessionToken": "optional"}],
//	   "policies": [{"Version": "2012-10-17", "Statement": [
//	     {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:ListShards"],
//	      "Resource": "arn:aws:kinesis:*:111122223333:stream/orders"}]}]}
//	]}
//
// Each principal is an IAM user, arn:aws:iam::<accountId>:user/<name>:
//
//   - name: required, 1 to 64 of letters, digits and _+=,.@- (IAM's user
//     name rule), unique within its account regardless of case;
//   - accountId: 12 digits; when absent, the default account given to
//     [Parse] (the server's own account);
//   - accessKeys: at least one. accessKeyId is 16 to 128 letters, digits or
//     '_' and unique across the file; secretAccessKey is at least 16
//     characters; sessionToken is optional, and when set a request signed with
//     the key must carry it;
//   - policies: identity-based policy documents (package iampolicy);
//     optional, and a principal without any is allowed only what resource
//     policies allow it.
//
// # Guarantees
//
// Parse refuses unknown or duplicate members, values of the wrong type and
// anything the rules above exclude, with an error naming the path, as in
// `principals[0].accessKeys[0]: unknown field "secretKey"`. No error ever
// contains a secret access key or session token: the JSON decoder's own
// messages, which quote values, are replaced. Printing an [AccessKey],
// [Principal] or [Config] with fmt, with any verb, shows REDACTED in their
// place.
//
// A [Config] is immutable after Parse and safe for concurrent reads.
package authconfig
