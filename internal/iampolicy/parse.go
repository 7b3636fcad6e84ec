package iampolicy

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/shoalstream/shoal/internal/strictjson"
)

// node is a decoded JSON value that keeps object members in document order,
// so that the first problem in a document is the one reported, every time.
type node struct {
	kind    jsontext.Kind // '"', '0', 't', 'f', 'n', '{' or '['
	str     string        // a string's value, or a number's or literal's text
	members []member      // '{'
	elems   []*node       // '['
}

type member struct {
	name string
	val  *node
}

// decodeTree decodes doc, which must hold exactly one JSON value. The decoder
// rejects invalid UTF-8 and duplicate member names.
func decodeTree(doc []byte) (*node, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(doc))
	n, err := readNode(dec)
	if err != nil {
		return nil, syntaxError(err)
	}
	switch _, err := dec.ReadToken(); {
	case err == nil:
		return nil, &Error{Message: "invalid JSON: more than one value in the document"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(err)
	}
	return n, nil
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &Error{Message: "invalid JSON: " + strings.TrimPrefix(err.Error(), "jsontext: ")}
}

func readNode(dec *jsontext.Decoder) (*node, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	n := &node{kind: tok.Kind()}
	switch n.kind {
	case '{':
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String() // a Token is valid only until the next read
			v, err := readNode(dec)
			if err != nil {
				return nil, err
			}
			n.members = append(n.members, member{name: name, val: v})
		}
	case '[':
		for dec.PeekKind() != ']' {
			v, err := readNode(dec)
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, v)
		}
	default:
		n.str = tok.String()
		return n, nil
	}
	if _, err := dec.ReadToken(); err != nil { // the closing '}' or ']'
		return nil, err
	}
	return n, nil
}

func errf(path string, parts ...string) *Error {
	return &Error{Path: path, Message: strings.Join(parts, "")}
}

func typeError(path, want string, n *node) *Error {
	return errf(path, "want ", want, ", got ", strictjson.KindName(n.kind))
}

func unknownMember(path, name string) *Error {
	return errf(path, "unknown member ", strconv.Quote(name))
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// stringList reads a string or a non-empty array of strings.
func stringList(n *node, path string) ([]string, error) {
	switch n.kind {
	case '"':
		return []string{n.str}, nil
	case '[':
		if len(n.elems) == 0 {
			return nil, errf(path, "must not be an empty array")
		}
		out := make([]string, len(n.elems))
		for i, e := range n.elems {
			if e.kind != '"' {
				return nil, typeError(index(path, i), "string", e)
			}
			out[i] = e.str
		}
		return out, nil
	}
	return nil, typeError(path, "a string or an array of strings", n)
}

// elemPath names element i of a list element that may have been one string.
func elemPath(path string, n *node, i int) string {
	if n.kind == '[' {
		return index(path, i)
	}
	return path
}

func buildPolicy(root *node, resource bool) (*Policy, error) {
	if root.kind != '{' {
		return nil, typeError("", "a policy object", root)
	}
	p := &Policy{resource: resource}
	var stmts *node
	for _, m := range root.members {
		switch m.name {
		case "Version":
			if m.val.kind != '"' {
				return nil, typeError("Version", "string", m.val)
			}
			if m.val.str != Version2012 && m.val.str != VersionLegacy {
				return nil, errf("Version", "must be ", strconv.Quote(Version2012), " or ",
					strconv.Quote(VersionLegacy), ", got ", strconv.Quote(m.val.str))
			}
			p.Version = m.val.str
		case "Id":
			if m.val.kind != '"' {
				return nil, typeError("Id", "string", m.val)
			}
			p.ID = m.val.str
		case "Statement":
			stmts = m.val
		default:
			return nil, unknownMember("", m.name)
		}
	}
	if stmts == nil {
		return nil, errf("", "missing Statement")
	}
	b := builder{resource: resource, variables: p.Version == Version2012}
	switch stmts.kind {
	case '{':
		st, err := b.statement(stmts, "Statement")
		if err != nil {
			return nil, err
		}
		p.Statements = []Statement{st}
	case '[':
		if len(stmts.elems) == 0 {
			return nil, errf("Statement", "must not be an empty array")
		}
		sids := map[string]int{}
		for i, e := range stmts.elems {
			path := index("Statement", i)
			if e.kind != '{' {
				return nil, typeError(path, "object", e)
			}
			st, err := b.statement(e, path)
			if err != nil {
				return nil, err
			}
			if st.Sid != "" {
				if j, dup := sids[st.Sid]; dup {
					return nil, errf(field(path, "Sid"), "duplicate Sid ", strconv.Quote(st.Sid), " (also ", index("Statement", j), ")")
				}
				sids[st.Sid] = i
			}
			p.Statements = append(p.Statements, st)
		}
	default:
		return nil, typeError("Statement", "an object or an array of objects", stmts)
	}
	return p, nil
}

// builder carries what a statement's parse depends on.
type builder struct {
	resource  bool // resource-based: Principal or NotPrincipal required
	variables bool // Version 2012-10-17: "${" starts a policy variable
}

// noVariable rejects policy variables: under 2012-10-17 IAM substitutes
// "${...}" from the request context, which this package does not do. Reading
// them literally would match something other than what AWS matches, so such a
// policy is refused rather than misread. (Under 2008-10-17 "${" is literal.)
func (b *builder) noVariable(path, s string) error {
	if !b.variables {
		return nil
	}
	if i := strings.Index(s, "${"); i >= 0 {
		v := s[i:]
		if j := strings.IndexByte(v, '}'); j >= 0 {
			v = v[:j+1]
		}
		return errf(path, "policy variable ", strconv.Quote(v), " is not supported")
	}
	return nil
}

func (b *builder) statement(n *node, path string) (Statement, error) {
	var st Statement
	var action, notAction, res, notRes, prin, notPrin, cond *node
	effectSeen := false
	for _, m := range n.members {
		mpath := field(path, m.name)
		switch m.name {
		case "Sid":
			if m.val.kind != '"' {
				return st, typeError(mpath, "string", m.val)
			}
			st.Sid = m.val.str
		case "Effect":
			if m.val.kind != '"' {
				return st, typeError(mpath, "string", m.val)
			}
			if e := Effect(m.val.str); e != Allow && e != Deny {
				return st, errf(mpath, `must be "Allow" or "Deny", got `, strconv.Quote(m.val.str))
			}
			st.Effect = Effect(m.val.str)
			effectSeen = true
		case "Action":
			action = m.val
		case "NotAction":
			notAction = m.val
		case "Resource":
			res = m.val
		case "NotResource":
			notRes = m.val
		case "Principal":
			prin = m.val
		case "NotPrincipal":
			notPrin = m.val
		case "Condition":
			cond = m.val
		default:
			return st, unknownMember(path, m.name)
		}
	}
	if !effectSeen {
		return st, errf(path, "missing Effect")
	}

	var err error
	switch {
	case action != nil && notAction != nil:
		return st, errf(path, "has both Action and NotAction")
	case action == nil && notAction == nil:
		return st, errf(path, "missing Action or NotAction")
	case action != nil:
		st.actions, err = b.actions(action, field(path, "Action"))
	default:
		st.notAction = true
		st.actions, err = b.actions(notAction, field(path, "NotAction"))
	}
	if err != nil {
		return st, err
	}

	switch {
	case res != nil && notRes != nil:
		return st, errf(path, "has both Resource and NotResource")
	case res == nil && notRes == nil:
		return st, errf(path, "missing Resource or NotResource")
	case res != nil:
		st.resources, err = b.resources(res, field(path, "Resource"))
	default:
		st.notResource = true
		st.resources, err = b.resources(notRes, field(path, "NotResource"))
	}
	if err != nil {
		return st, err
	}

	switch {
	case !b.resource && prin != nil:
		return st, errf(field(path, "Principal"), "not allowed in an identity-based policy")
	case !b.resource && notPrin != nil:
		return st, errf(field(path, "NotPrincipal"), "not allowed in an identity-based policy")
	case prin != nil && notPrin != nil:
		return st, errf(path, "has both Principal and NotPrincipal")
	case prin != nil:
		st.principals, err = parsePrincipal(prin, field(path, "Principal"))
	case notPrin != nil:
		st.notPrincipal = true
		st.principals, err = parsePrincipal(notPrin, field(path, "NotPrincipal"))
	case b.resource:
		return st, errf(path, "missing Principal or NotPrincipal (a resource-based policy must name who it applies to)")
	}
	if err != nil {
		return st, err
	}

	if cond != nil {
		st.conditions, err = b.conditions(cond, field(path, "Condition"))
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

func (b *builder) actions(n *node, path string) (patterns, error) {
	list, err := stringList(n, path)
	if err != nil {
		return nil, err
	}
	out := make(patterns, len(list))
	for i, a := range list {
		if err := checkAction(a); err != "" {
			return nil, errf(elemPath(path, n, i), err)
		}
		out[i] = compilePattern(a, true)
	}
	return out, nil
}

// checkAction returns what is wrong with an action pattern, or "".
func checkAction(a string) string {
	if a == "*" {
		return ""
	}
	service, name, ok := strings.Cut(a, ":")
	if !ok || service == "" || name == "" || strings.Contains(name, ":") {
		return "action " + strconv.Quote(a) + ` must be "*" or "service:Name" (for example "kinesis:PutRecord")`
	}
	if strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "action " + strconv.Quote(a) + " contains white space or a control character"
	}
	return ""
}

func (b *builder) resources(n *node, path string) (patterns, error) {
	list, err := stringList(n, path)
	if err != nil {
		return nil, err
	}
	out := make(patterns, len(list))
	for i, r := range list {
		ep := elemPath(path, n, i)
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return nil, errf(ep, "resource ", strconv.Quote(r), ` must be "*" or an ARN`)
		}
		if err := b.noVariable(ep, r); err != nil {
			return nil, err
		}
		out[i] = compilePattern(r, false)
	}
	return out, nil
}
