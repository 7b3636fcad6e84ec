package iampolicy

import (
	"slices"
)

// The policy language versions IAM knows. A document without Version is read
// as VersionLegacy, as IAM does.
const (
	Version2012   = "2012-10-17"
	VersionLegacy = "2008-10-17"
)

// Policy is a parsed policy document. It is immutable once parsed and safe for
// concurrent use; the exported fields describe it and must not be changed.
type Policy struct {
	// Version is the document's Version, or "" when it has none (which IAM
	// reads as 2008-10-17).
	Version string
	// ID is the document's Id, or "".
	ID string
	// Statements are the document's statements in order (Statement may be
	// one object; it is then the only element).
	Statements []Statement

	resource bool   // parsed by ParseResource: statements carry principals
	raw      []byte // the document as given
}

// Effect is a statement's Effect.
type Effect string

// The two effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Statement is one parsed statement. Only Sid and Effect are exported; the
// compiled Action, Resource, Principal and Condition elements are not.
type Statement struct {
	Sid    string
	Effect Effect

	actions      patterns // case-insensitive
	notAction    bool
	resources    patterns // case-sensitive
	notResource  bool
	principals   principalSet // resource-based policies only
	notPrincipal bool
	conditions   []condition // all must hold
}

// Error is a policy that cannot be parsed. Path says where, in the style
// Statement[1].Condition.StringEquals ("" for the document as a whole).
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ParseIdentity parses an identity-based policy (one attached to a user):
// Principal and NotPrincipal are errors. A failure is an *Error.
func ParseIdentity(doc []byte) (*Policy, error) {
	return parse(doc, false)
}

// ParseResource parses a resource-based policy (one attached to a stream or
// consumer): every statement needs Principal or NotPrincipal. A failure is an
// *Error.
func ParseResource(doc []byte) (*Policy, error) {
	return parse(doc, true)
}

func parse(doc []byte, resource bool) (*Policy, error) {
	root, err := decodeTree(doc)
	if err != nil {
		return nil, err
	}
	p, err := buildPolicy(root, resource)
	if err != nil {
		return nil, err
	}
	p.raw = slices.Clone(doc)
	return p, nil
}

// Raw returns a copy of the document exactly as it was parsed (whitespace,
// member order and all), as GetResourcePolicy must return it.
func (p *Policy) Raw() []byte {
	return slices.Clone(p.raw)
}

// MarshalJSON returns the document as it was parsed.
func (p *Policy) MarshalJSON() ([]byte, error) {
	return p.Raw(), nil
}

// String returns the document as it was parsed.
func (p *Policy) String() string {
	return string(p.raw)
}

// IsResourcePolicy reports whether p was parsed by ParseResource.
func (p *Policy) IsResourcePolicy() bool {
	return p.resource
}
