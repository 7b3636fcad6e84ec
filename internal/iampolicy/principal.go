package iampolicy

import (
	"strconv"
	"strings"
)

// principalSet is a compiled Principal or NotPrincipal element.
type principalSet struct {
	anyone   bool     // "*" or {"AWS": "*"}
	accounts []string // account ids, from "111122223333" or "arn:aws:iam::111122223333:root"
	arns     []string // user, role and session ARNs, matched exactly
}

// principalMatch says how a principal matched a principal set. The
// difference matters within one account: naming the account in a resource
// policy delegates to the account's identity-based policies rather than
// granting anything itself (see Evaluate).
type principalMatch uint8

const (
	matchNone    principalMatch = iota
	matchAccount                // through an account id or :root ARN
	matchNamed                  // through the principal's own ARN, or "*"
)

func (ps *principalSet) match(arn, account string) principalMatch {
	if ps.anyone {
		return matchNamed
	}
	for _, a := range ps.arns {
		if a == arn {
			return matchNamed
		}
	}
	for _, a := range ps.accounts {
		if a == account {
			return matchAccount
		}
	}
	return matchNone
}

// parsePrincipal reads "*" or {"AWS": "*" | id | ARN | [...]}. Service,
// Federated and CanonicalUser principals are refused: no caller of this
// server can be one, and accepting them silently would hide a policy that
// never applies.
func parsePrincipal(n *node, path string) (principalSet, error) {
	var ps principalSet
	switch n.kind {
	case '"':
		if n.str != "*" {
			return ps, errf(path, `a string principal must be "*", got `, strconv.Quote(n.str), ` (use {"AWS": ...})`)
		}
		ps.anyone = true
		return ps, nil
	case '{':
	default:
		return ps, typeError(path, `"*" or an object`, n)
	}
	if len(n.members) == 0 {
		return ps, errf(path, "must name at least one principal")
	}
	for _, m := range n.members {
		mpath := field(path, m.name)
		switch m.name {
		case "AWS":
		case "Service", "Federated", "CanonicalUser":
			return ps, errf(mpath, "principal type ", strconv.Quote(m.name), ` is not supported (only "AWS")`)
		default:
			return ps, unknownMember(path, m.name)
		}
		list, err := stringList(m.val, mpath)
		if err != nil {
			return ps, err
		}
		for i, v := range list {
			if err := ps.add(v); err != "" {
				return ps, errf(elemPath(mpath, m.val, i), err)
			}
		}
	}
	return ps, nil
}

// add adds one AWS principal value, or says what is wrong with it.
func (ps *principalSet) add(v string) string {
	if v == "*" {
		ps.anyone = true
		return ""
	}
	if IsAccountID(v) {
		ps.accounts = append(ps.accounts, v)
		return ""
	}
	bad := "principal " + strconv.Quote(v) + ` must be "*", a 12-digit account id, or an IAM ARN`
	if strings.ContainsAny(v, "*?") {
		return bad + " (wildcards are only allowed as \"*\" on its own)"
	}
	// arn:partition:service::account:resource (region empty for iam and sts)
	parts := strings.SplitN(v, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[3] != "" || !IsAccountID(parts[4]) {
		return bad
	}
	res := parts[5]
	switch parts[2] {
	case "iam":
		if res == "root" {
			ps.accounts = append(ps.accounts, parts[4])
			return ""
		}
		if hasNamedPrefix(res, "user/") || hasNamedPrefix(res, "role/") {
			ps.arns = append(ps.arns, v)
			return ""
		}
	case "sts":
		if hasNamedPrefix(res, "assumed-role/") || hasNamedPrefix(res, "federated-user/") {
			ps.arns = append(ps.arns, v)
			return ""
		}
	}
	return bad
}

func hasNamedPrefix(s, prefix string) bool {
	return len(s) > len(prefix) && strings.HasPrefix(s, prefix) && !strings.HasSuffix(s, "/")
}

// IsAccountID reports whether s is an AWS account id: 12 digits.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// accountOf returns the account field of an ARN (the fifth ':'-separated
// field), or "".
func accountOf(arn string) string {
	start := 0
	for field := 0; field < 4; field++ {
		i := strings.IndexByte(arn[start:], ':')
		if i < 0 {
			return ""
		}
		start += i + 1
	}
	end := strings.IndexByte(arn[start:], ':')
	if end < 0 {
		return ""
	}
	return arn[start : start+end]
}
