package iampolicy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// condOp is a condition operator without its negation and IfExists.
type condOp uint8

const (
	opStringEquals condOp = iota
	opStringEqualsIgnoreCase
	opStringLike
	opIPAddress
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
)

// keyType is the type of a condition key, which decides the operators that
// may test it.
type keyType uint8

const (
	typeString keyType = iota
	typeIP
	typeDate
	typeBool
)

// keyTypeNames name the types, with an article.
var keyTypeNames = [...]string{typeString: "a string", typeIP: "an IP address", typeDate: "a date", typeBool: "a boolean"}

type opInfo struct {
	op      condOp
	negated bool
	typ     keyType
}

// operators are the supported operators, by their exact (case-sensitive)
// name. Each may also carry the IfExists suffix.
var operators = map[string]opInfo{
	"StringEquals":              {opStringEquals, false, typeString},
	"StringNotEquals":           {opStringEquals, true, typeString},
	"StringEqualsIgnoreCase":    {opStringEqualsIgnoreCase, false, typeString},
	"StringNotEqualsIgnoreCase": {opStringEqualsIgnoreCase, true, typeString},
	"StringLike":                {opStringLike, false, typeString},
	"StringNotLike":             {opStringLike, true, typeString},
	"IpAddress":                 {opIPAddress, false, typeIP},
	"NotIpAddress":              {opIPAddress, true, typeIP},
	"DateEquals":                {opDateEquals, false, typeDate},
	"DateNotEquals":             {opDateEquals, true, typeDate},
	"DateLessThan":              {opDateLessThan, false, typeDate},
	"DateLessThanEquals":        {opDateLessThanEquals, false, typeDate},
	"DateGreaterThan":           {opDateGreaterThan, false, typeDate},
	"DateGreaterThanEquals":     {opDateGreaterThanEquals, false, typeDate},
	"Bool":                      {opBool, false, typeBool},
}

// condKey is a supported condition key.
type condKey uint8

const (
	keySourceIP condKey = iota
	keyCurrentTime
	keyEpochTime
	keySecureTransport
	keyUsername
	keyPrincipalArn
	keyPrincipalAccount
)

type keyInfo struct {
	key condKey
	typ keyType
}

// condKeys are the supported keys, lower-cased: IAM matches key names
// without regard to case.
var condKeys = map[string]keyInfo{
	"aws:sourceip":         {keySourceIP, typeIP},
	"aws:currenttime":      {keyCurrentTime, typeDate},
	"aws:epochtime":        {keyEpochTime, typeDate},
	"aws:securetransport":  {keySecureTransport, typeBool},
	"aws:username":         {keyUsername, typeString},
	"aws:principalarn":     {keyPrincipalArn, typeString},
	"aws:principalaccount": {keyPrincipalAccount, typeString},
}

// condition is one key tested by one operator against one or more values.
type condition struct {
	op       condOp
	negated  bool
	ifExists bool
	key      condKey

	strs     []string // StringEquals, StringEqualsIgnoreCase
	globs    patterns // StringLike
	prefixes []netip.Prefix
	times    []time.Time
	bools    []bool
}

func (b *builder) conditions(n *node, path string) ([]condition, error) {
	if n.kind != '{' {
		return nil, typeError(path, "object", n)
	}
	var out []condition
	for _, m := range n.members {
		opPath := field(path, m.name)
		name, ifExists := strings.CutSuffix(m.name, "IfExists")
		info, ok := operators[name]
		if !ok {
			return nil, errf(path, "unsupported condition operator ", strconv.Quote(m.name))
		}
		if m.val.kind != '{' {
			return nil, typeError(opPath, "object", m.val)
		}
		if len(m.val.members) == 0 {
			return nil, errf(opPath, "must test at least one condition key")
		}
		for _, k := range m.val.members {
			kPath := field(opPath, k.name)
			ki, ok := condKeys[strings.ToLower(k.name)]
			if !ok {
				return nil, errf(opPath, "unsupported condition key ", strconv.Quote(k.name))
			}
			if ki.typ != info.typ {
				return nil, errf(opPath, "operator ", name, " needs ", keyTypeNames[info.typ],
					" key; ", k.name, " is ", keyTypeNames[ki.typ], " key")
			}
			c := condition{op: info.op, negated: info.negated, ifExists: ifExists, key: ki.key}
			if err := b.conditionValues(&c, k.val, kPath); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// conditionValues reads a condition's values: a string, number or boolean,
// or a non-empty array of them (IAM reads numbers and booleans as their
// text).
func (b *builder) conditionValues(c *condition, n *node, path string) error {
	var vals []*node
	switch n.kind {
	case '"', '0', 't', 'f':
		vals = []*node{n}
	case '[':
		if len(n.elems) == 0 {
			return errf(path, "must not be an empty array")
		}
		vals = n.elems
	default:
		return typeError(path, "a string, number, boolean or an array of them", n)
	}
	for i, v := range vals {
		vp := elemPath(path, n, i)
		switch v.kind {
		case '"', '0', 't', 'f':
		default:
			return typeError(vp, "a string, number or boolean", v)
		}
		s := v.str
		switch c.op {
		case opStringEquals, opStringEqualsIgnoreCase:
			if err := b.noVariable(vp, s); err != nil {
				return err
			}
			c.strs = append(c.strs, s)
		case opStringLike:
			if err := b.noVariable(vp, s); err != nil {
				return err
			}
			c.globs = append(c.globs, compilePattern(s, false))
		case opIPAddress:
			p, ok := parseIPPrefix(s)
			if !ok {
				return errf(vp, "invalid IP address or CIDR block ", strconv.Quote(s))
			}
			c.prefixes = append(c.prefixes, p)
		case opBool:
			switch strings.ToLower(s) {
			case "true":
				c.bools = append(c.bools, true)
			case "false":
				c.bools = append(c.bools, false)
			default:
				return errf(vp, `invalid boolean `, strconv.Quote(s), ` (want "true" or "false")`)
			}
		default:
			t, ok := parseDate(s)
			if !ok {
				return errf(vp, "invalid date ", strconv.Quote(s), " (want ISO 8601, such as 2026-01-02T15:04:05Z, or epoch seconds)")
			}
			c.times = append(c.times, t)
		}
	}
	return nil
}

// parseIPPrefix reads a CIDR block or a single address (a /32 or /128).
// Zones are refused: a request's source address never carries one.
func parseIPPrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: Evaluate compares unmapped addresses.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// dateLayouts are the ISO 8601 forms accepted besides epoch seconds; a form
// without a zone is read as UTC.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
	"20060102T150405Z0700",
	"20060102T150405Z",
	"20060102",
}

func parseDate(s string) (time.Time, bool) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > 253402300799 { // past 9999-12-31
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// eval decides the condition. A key the request lacks makes the condition
// true with IfExists, true for a negated operator (AWS: "the condition
// returns true" when a key is missing for a negated operator), and false
// otherwise. With the key present, a positive operator needs any value to
// match and a negated one needs none to match.
func (c *condition) eval(x *evalCtx) bool {
	var present, m bool
	switch c.key {
	case keySourceIP:
		if present = x.req.SourceIP.IsValid(); present {
			m = c.matchIP(x.req.SourceIP.Unmap())
		}
	case keyCurrentTime, keyEpochTime:
		if present = !x.req.Time.IsZero(); present {
			m = c.matchTime(x.req.Time.Truncate(time.Second))
		}
	case keySecureTransport:
		present = true
		for _, b := range c.bools {
			m = m || b == x.req.SecureTransport
		}
	case keyUsername:
		if present = x.req.Principal.UserName != ""; present {
			m = c.matchString(x.req.Principal.UserName)
		}
	case keyPrincipalArn:
		if present = x.req.Principal.ARN != ""; present {
			m = c.matchString(x.req.Principal.ARN)
		}
	case keyPrincipalAccount:
		if present = x.account != ""; present {
			m = c.matchString(x.account)
		}
	}
	if !present {
		return c.ifExists || c.negated
	}
	return m != c.negated
}

func (c *condition) matchString(v string) bool {
	switch c.op {
	case opStringEquals:
		for _, s := range c.strs {
			if s == v {
				return true
			}
		}
	case opStringEqualsIgnoreCase:
		for _, s := range c.strs {
			if strings.EqualFold(s, v) {
				return true
			}
		}
	case opStringLike:
		return c.globs.match(v)
	}
	return false
}

func (c *condition) matchIP(a netip.Addr) bool {
	for _, p := range c.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// matchTime compares the request time, truncated to the second (the
// precision of aws:EpochTime), with each value.
func (c *condition) matchTime(t time.Time) bool {
	for _, v := range c.times {
		var ok bool
		switch c.op {
		case opDateEquals:
			ok = t.Equal(v)
		case opDateLessThan:
			ok = t.Before(v)
		case opDateLessThanEquals:
			ok = !t.After(v)
		case opDateGreaterThan:
			ok = t.After(v)
		case opDateGreaterThanEquals:
			ok = !t.Before(v)
		}
		if ok {
			return true
		}
	}
	return false
}
