package authconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/shoalstream/shoal/internal/iampolicy"
	"github.com/shoalstream/shoal/internal/strictjson"
)

// Config is a parsed auth config. It is immutable after Parse and safe for
// concurrent reads; callers must not change what it holds.
type Config struct {
	// Principals are the configured callers, in file order.
	Principals []*Principal

	keys map[string]keyRef // by access key id
}

type keyRef struct {
	p *Principal
	i int // index in p.AccessKeys
}

// Principal is one IAM user.
type Principal struct {
	// Name is the IAM user name.
	Name string
	// AccountID is the user's 12-digit account.
	AccountID string
	// ARN is arn:aws:iam::<AccountID>:user/<Name>.
	ARN string
	// AccessKeys are the user's credentials (at least one).
	AccessKeys []AccessKey
	// Policies are the user's identity-based policies (possibly none, which
	// denies everything the resource policies do not allow).
	Policies []*iampolicy.Policy
}

// IAMPrincipal returns p as the caller of an iampolicy.Request.
func (p *Principal) IAMPrincipal() iampolicy.Principal {
	return iampolicy.Principal{ARN: p.ARN, Account: p.AccountID, UserName: p.Name}
}

// AccessKey is one credential of a principal.
type AccessKey struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must accompany every request signed with the
	// key (X-Amz-Security-Token), as with temporary AWS credentials.
	SessionToken string
}

// Printing any of AccessKey, Principal or Config, with any verb, shows
// REDACTED for secrets and session tokens: each implements fmt.Formatter,
// so fmt never walks their fields itself.
var (
	_ fmt.Formatter = AccessKey{}
	_ fmt.Formatter = Principal{}
	_ fmt.Formatter = Config{}
)

func (k AccessKey) String() string {
	s := "{AccessKeyID:" + k.AccessKeyID + " SecretAccessKey:REDACTED"
	if k.SessionToken != "" {
		s += " SessionToken:REDACTED"
	}
	return s + "}"
}

// Format writes String, whatever the verb.
func (k AccessKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, k.String())
}

func (p Principal) String() string {
	var b strings.Builder
	b.WriteString("{Name:" + p.Name + " AccountID:" + p.AccountID + " ARN:" + p.ARN + " AccessKeys:[")
	for i, k := range p.AccessKeys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k.String())
	}
	b.WriteString("] Policies:" + strconv.Itoa(len(p.Policies)) + "}")
	return b.String()
}

// Format writes String, whatever the verb.
func (p Principal) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, p.String())
}

func (c Config) String() string {
	var b strings.Builder
	b.WriteString("{Principals:[")
	for i, p := range c.Principals {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	b.WriteString("]}")
	return b.String()
}

// Format writes String, whatever the verb.
func (c Config) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, c.String())
}

// Key finds the principal and key of an access key id.
func (c *Config) Key(accessKeyID string) (*Principal, AccessKey, bool) {
	r, ok := c.keys[accessKeyID]
	if !ok {
		return nil, AccessKey{}, false
	}
	return r.p, r.p.AccessKeys[r.i], true
}

// Load reads and parses the auth config at path. See Parse.
func Load(path, defaultAccount string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth config: %w", err)
	}
	c, err := Parse(data, defaultAccount)
	if err != nil {
		return nil, fmt.Errorf("auth config %s: %w", path, err)
	}
	return c, nil
}

// Limits from IAM: user names are [\w+=,.@-]{1,64} and access key ids
// [\w]{16,128} (API_User, API_AccessKey). Real secret access keys are 40
// characters; shorter than minSecretLen is refused as a likely mistake.
const (
	maxNameLen    = 64
	minKeyIDLen   = 16
	maxKeyIDLen   = 128
	minSecretLen  = 16
	userARNPrefix = "arn:aws:iam::"
)

// Parse parses an auth config (see the package documentation for the
// format). A principal without accountId gets defaultAccount. Errors name
// the offending element by path, as in `principals[0].accessKeys[0]: unknown
// field "secretKey"`, and never contain a secret access key or session
// token.
func Parse(data []byte, defaultAccount string) (*Config, error) {
	var f fileJSON
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, err
	}
	if len(f.Principals) == 0 {
		return nil, errors.New("principals: required, with at least one principal")
	}
	c := &Config{keys: map[string]keyRef{}}
	users := map[string]int{}       // account + "/" + lower-cased name -> principal index
	keyPaths := map[string]string{} // access key id -> path of its first use
	for i := range f.Principals {
		pj := &f.Principals[i]
		path := "principals[" + strconv.Itoa(i) + "]"
		p, err := buildPrincipal(pj, path, defaultAccount)
		if err != nil {
			return nil, err
		}
		// IAM user names are unique within an account, regardless of case.
		user := p.AccountID + "/" + strings.ToLower(p.Name)
		if j, dup := users[user]; dup {
			return nil, fmt.Errorf("%s.name: duplicate user %q in account %s (also principals[%d])", path, p.Name, p.AccountID, j)
		}
		users[user] = i
		for k, key := range p.AccessKeys {
			kpath := path + ".accessKeys[" + strconv.Itoa(k) + "].accessKeyId"
			if first, dup := keyPaths[key.AccessKeyID]; dup {
				return nil, fmt.Errorf("%s: duplicate access key id %q (also %s)", kpath, key.AccessKeyID, first)
			}
			keyPaths[key.AccessKeyID] = kpath
			c.keys[key.AccessKeyID] = keyRef{p: p, i: k}
		}
		c.Principals = append(c.Principals, p)
	}
	return c, nil
}

func buildPrincipal(pj *principalJSON, path, defaultAccount string) (*Principal, error) {
	p := &Principal{Name: pj.Name, AccountID: pj.AccountID}
	switch {
	case p.Name == "":
		return nil, errors.New(path + ".name: required")
	case !validName(p.Name):
		return nil, fmt.Errorf("%s.name: %q is not an IAM user name (1 to %d of letters, digits and _+=,.@-)", path, p.Name, maxNameLen)
	}
	switch {
	case p.AccountID != "":
		if !iampolicy.IsAccountID(p.AccountID) {
			return nil, fmt.Errorf("%s.accountId: %q is not a 12-digit account id", path, p.AccountID)
		}
	case defaultAccount == "":
		return nil, errors.New(path + ".accountId: required (there is no default account)")
	case !iampolicy.IsAccountID(defaultAccount):
		return nil, fmt.Errorf("%s.accountId: missing, and the default account %q is not a 12-digit account id", path, defaultAccount)
	default:
		p.AccountID = defaultAccount
	}
	p.ARN = userARNPrefix + p.AccountID + ":user/" + p.Name

	if len(pj.AccessKeys) == 0 {
		return nil, errors.New(path + ".accessKeys: required, with at least one access key")
	}
	for k, kj := range pj.AccessKeys {
		kpath := path + ".accessKeys[" + strconv.Itoa(k) + "]"
		// The messages below name fields, never the secret or token values.
		switch n := len(kj.AccessKeyID); {
		case n == 0:
			return nil, errors.New(kpath + ".accessKeyId: required")
		case n < minKeyIDLen || n > maxKeyIDLen || !isWord(kj.AccessKeyID):
			// Not quoted: a malformed id may well be a secret in the wrong field.
			return nil, fmt.Errorf("%s.accessKeyId: not an access key id (want %d to %d letters, digits or _; got %d characters)",
				kpath, minKeyIDLen, maxKeyIDLen, n)
		}
		switch n := utf8.RuneCountInString(kj.SecretAccessKey); {
		case n == 0:
			return nil, errors.New(kpath + ".secretAccessKey: required")
		case n < minSecretLen:
			return nil, fmt.Errorf("%s.secretAccessKey: must be at least %d characters", kpath, minSecretLen)
		}
		p.AccessKeys = append(p.AccessKeys, AccessKey(kj))
	}

	for j, raw := range pj.Policies {
		pol, err := iampolicy.ParseIdentity(raw)
		if err != nil {
			return nil, fmt.Errorf("%s.policies[%d]: %w", path, j, err)
		}
		p.Policies = append(p.Policies, pol)
	}
	return p, nil
}

// fileJSON and the types below are the file's schema; decode rejects members
// they do not name.
type fileJSON struct {
	Principals []principalJSON `json:"principals"`
}

type principalJSON struct {
	Name       string           `json:"name"`
	AccountID  string           `json:"accountId"`
	AccessKeys []accessKeyJSON  `json:"accessKeys"`
	Policies   []jsontext.Value `json:"policies"`
}

type accessKeyJSON struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) && !strings.ContainsRune("+=,.@-", rune(s[i])) {
			return false
		}
	}
	return true
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

func isWordByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_'
}
