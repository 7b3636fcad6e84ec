// Package iampolicy parses IAM policy documents and decides requests against
// them the way AWS IAM does, for the subset of the policy language that
// Kinesis Data Streams uses.
//
// [ParseIdentity] reads a policy attached to a caller, [ParseResource] one
// attached to a stream or consumer (PutResourcePolicy). [Evaluate] then
// answers one question, "may this principal perform this action on this
// resource?", with a [Result] whose Message is the AccessDeniedException
// text AWS sends.
//
// # Language
//
// Version is "2012-10-17" or "2008-10-17" (absent reads as the latter);
// Statement is one object or an array. A statement has an optional Sid, an
// Effect (Allow or Deny), exactly one of Action and NotAction, exactly one
// of Resource and NotResource, an optional Condition, and, in resource-based
// policies only and there required, exactly one of Principal and
// NotPrincipal.
//
//   - Actions ("kinesis:PutRecord", "kinesis:Get*", "*") match without regard
//     to case; '*' matches any run of characters and '?' one character.
//   - Resources ("arn:aws:kinesis:*:111122223333:stream/orders-*") match
//     case-sensitively with the same wildcards; '*' crosses ':' and '/'.
//   - Principals are "*" or {"AWS": ...} holding "*", a 12-digit account id,
//     an account's :root ARN (both mean every principal of the account), or
//     a user, role or session ARN (that principal only).
//   - Condition operators: StringEquals, StringNotEquals,
//     StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike,
//     StringNotLike, IpAddress, NotIpAddress, DateEquals, DateNotEquals,
//     DateLessThan, DateLessThanEquals, DateGreaterThan,
//     DateGreaterThanEquals and Bool, each also with IfExists. Keys (any
//     case): aws:SourceIp, aws:CurrentTime, aws:EpochTime,
//     aws:SecureTransport, aws:username, aws:PrincipalArn and
//     aws:PrincipalAccount. Each operator tests only keys of its type (string
//     operators the three string keys, and so on).
//
// # Guarantees
//
// Anything outside that subset is refused when the policy is parsed, never
// ignored: an unknown member, another operator (NumericEquals,
// ForAnyValue:StringEquals, ...) or key (aws:ResourceTag/..., kinesis:...),
// a Service principal, a policy variable ("${aws:username}" under
// 2012-10-17), an invalid CIDR block, date or boolean, or a value of the
// wrong JSON type. Errors are [*Error] values naming where the problem is,
// as in `Statement[1]: unknown member "Condtion"`. So nothing in a policy
// that parses is silently ignored.
//
// A parsed [Policy] is immutable and safe for concurrent use, and keeps its
// document byte for byte ([Policy.Raw]). Patterns are compiled when parsed,
// and [Evaluate] allocates nothing unless it denies.
//
// # Caveats
//
// Only IAM users, roles and sessions are modelled as callers: there are no
// permission boundaries, session policies, SCPs or root-user shortcut.
// Action names fold ASCII case only (all AWS action names are ASCII). Date
// conditions compare the request time truncated to the second. Principal
// ARNs match exactly, not by the unique ids IAM keeps behind them, so a
// re-created user with the same name matches again.
package iampolicy
