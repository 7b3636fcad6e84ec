package authconfig

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/iampolicy"
)

// FuzzAuthConfig parses arbitrary files. Invariants: no panic; a failure
// has a message and no config; a config obeys every rule in the package
// documentation and finds each of its keys; and no error depends on the text
// of a secret or session token: replacing one (quoted, printable ASCII,
// found once in the file) with as many DEL characters must leave the error
// message exactly as it was. A message that quoted any part of the secret
// would change.
func FuzzAuthConfig(f *testing.F) {
	for _, s := range []string{
		goodConfig,
		``,
		`{}`,
		`{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret1 + `", "sessionToken": "t"}]}]}`,
		`{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "s3cr3t-but-too-short"}], "policies": [{"Statement": []}]}]}`,
		`{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "0123456789abcdef\q"}]}]}`,
		`{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "0123456789abcdef"`,
		`{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "0123456789abcdef", "secretAccessKey": "x"}]}]}`,
		`{"principals": [{"name": "a", "accessKeys": [{"secretAccessKey": "0123456789abcdef", "accessKeyId": "0123456789abcdef"}]}]}`,
		`{"principals": [{"name": "a", "accountId": "1", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "0123456789abcdef"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, defaultAcct)
		if err != nil {
			if c != nil || err.Error() == "" {
				t.Fatalf("error %q with config %v", err, c)
			}
			if leak := secretDependence(data, err.Error()); leak != "" {
				t.Fatal(leak)
			}
			return
		}
		checkConfig(t, c)
	})
}

func checkConfig(t *testing.T, c *Config) {
	t.Helper()
	if len(c.Principals) == 0 {
		t.Fatal("a config without principals")
	}
	keys := 0
	for _, p := range c.Principals {
		if !validName(p.Name) || !iampolicy.IsAccountID(p.AccountID) || p.ARN != "arn:aws:iam::"+p.AccountID+":user/"+p.Name || len(p.AccessKeys) == 0 {
			t.Fatalf("principal %v", p)
		}
		for _, k := range p.AccessKeys {
			keys++
			gp, gk, ok := c.Key(k.AccessKeyID)
			if !ok || gp != p || gk != k || len(k.AccessKeyID) < minKeyIDLen || !isWord(k.AccessKeyID) || len(k.SecretAccessKey) < minSecretLen {
				t.Fatalf("key %v of %s: found %v %v %v", k, p.Name, gp, gk, ok)
			}
		}
		for _, pol := range p.Policies {
			if pol == nil || pol.IsResourcePolicy() {
				t.Fatalf("policy %v", pol)
			}
		}
	}
	if keys != len(c.keys) {
		t.Fatalf("%d keys, %d indexed", keys, len(c.keys))
	}
}

// secretDependence reparses data with each findable secret or token
// replaced, and describes the first one whose replacement changes the error
// message msg ("" if none does).
func secretDependence(data []byte, msg string) string {
	for _, field := range []string{`"secretAccessKey"`, `"sessionToken"`} {
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(field))
			if i < 0 {
				break
			}
			off += i + len(field)
			start, end := secretSpan(data, off)
			if end-start < 4 || bytes.Count(data, data[start:end]) != 1 {
				continue
			}
			masked := bytes.Clone(data)
			copy(masked[start:end], bytes.Repeat([]byte{0x7f}, end-start))
			_, err := Parse(masked, defaultAcct)
			if err == nil || err.Error() != msg {
				return fmt.Sprintf("the error depends on the value of %s %q:\n with it:    %q\n without it: %v", field, data[start:end], msg, err)
			}
		}
	}
	return ""
}

// secretSpan finds, after a member name ending at off, a ':' and a quoted
// string, and returns the span of its leading printable-ASCII run (up to a
// quote, backslash, control or non-ASCII byte).
func secretSpan(data []byte, off int) (start, end int) {
	i := skipSpace(data, off)
	if i >= len(data) || data[i] != ':' {
		return 0, 0
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return 0, 0
	}
	start = i + 1
	end = start
	for end < len(data) && data[end] >= 0x20 && data[end] < 0x7f && data[end] != '"' && data[end] != '\\' {
		end++
	}
	return start, end
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && strings.IndexByte(" \t\r\n", data[i]) >= 0 {
		i++
	}
	return i
}

// TestSecretSpan pins the helper the fuzz target relies on.
func TestSecretSpan(t *testing.T) {
	for in, want := range map[string]string{
		`"secretAccessKey": "abc\"def"`: "abc",
		`"secretAccessKey" :"abcdef`:    "abcdef",
		`"secretAccessKey": 12`:         "",
		`"secretAccessKey" "x"`:         "",
	} {
		off := len(`"secretAccessKey"`)
		s, e := secretSpan([]byte(in), off)
		if got := in[s:e]; got != want {
			t.Errorf("secretSpan(%q) = %q, want %q", in, got, want)
		}
	}
	// And the check itself catches a leak: an error quoting the secret.
	data := []byte(`{"secretAccessKey": "LeakyLeakyLeaky"}`)
	if secretDependence(data, `bad secret "LeakyLeakyLeaky"`) == "" {
		t.Fatal("secretDependence missed an error that quotes the secret")
	}
	if d := secretDependence(data, `unknown field "secretAccessKey"`); d != "" {
		t.Fatalf("secretDependence on the real error: %s", d)
	}
}
