package authconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shoalstream/shoal/internal/iampolicy"
)

const (
	defaultAcct = "111122223333"
	secret1     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	secret2     = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
	token2      = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue"
)

const goodConfig = `{"principals": [
  {"name": "orders-producer",
   "accessKeys": [{"accessKeyId": "AKIAORDERSPRODUCER01", "secretAccessKey": "` + secret1 + `"}],
   "policies": [{"Version": "2012-10-17", "Statement": [
     {"Effect": "Allow", "Action": ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:ListShards"],
      "Resource": "arn:aws:kinesis:*:111122223333:stream/orders"}]}]},
  {"name": "analytics", "accountId": "444455556666",
   "accessKeys": [
     {"accessKeyId": "AKIAANALYTICS0000001", "secretAccessKey": "` + secret2 + `"},
     {"accessKeyId": "ASIAANALYTICSTEMP001", "secretAccessKey": "` + secret2 + `", "sessionToken": "` + token2 + `"}],
   "policies": [
     {"Statement": {"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}},
     {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "*"}]}]},
  {"name": "no-policies", "accessKeys": [{"accessKeyId": "AKIANOPOLICIES000001", "secretAccessKey": "` + secret1 + `"}]}
]}`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(goodConfig), defaultAcct)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Principals) != 3 {
		t.Fatalf("%d principals", len(c.Principals))
	}
	p := c.Principals[0]
	if p.Name != "orders-producer" || p.AccountID != defaultAcct || p.ARN != "arn:aws:iam::111122223333:user/orders-producer" ||
		len(p.AccessKeys) != 1 || len(p.Policies) != 1 {
		t.Fatalf("principal 0: %+v", p)
	}
	if got := p.IAMPrincipal(); got != (iampolicy.Principal{ARN: p.ARN, Account: defaultAcct, UserName: "orders-producer"}) {
		t.Fatalf("IAMPrincipal = %+v", got)
	}
	a := c.Principals[1]
	if a.AccountID != "444455556666" || a.ARN != "arn:aws:iam::444455556666:user/analytics" || len(a.AccessKeys) != 2 || len(a.Policies) != 2 {
		t.Fatalf("principal 1: %+v", a)
	}
	if len(c.Principals[2].Policies) != 0 {
		t.Fatalf("principal 2 has policies")
	}

	for id, want := range map[string]struct {
		p   *Principal
		key AccessKey
	}{
		"AKIAORDERSPRODUCER01": {p, AccessKey{AccessKeyID: "AKIAORDERSPRODUCER01", SecretAccessKey: secret1}},
		"AKIAANALYTICS0000001": {a, AccessKey{AccessKeyID: "AKIAANALYTICS0000001", SecretAccessKey: secret2}},
		"ASIAANALYTICSTEMP001": {a, AccessKey{AccessKeyID: "ASIAANALYTICSTEMP001", SecretAccessKey: secret2, SessionToken: token2}},
	} {
		gp, gk, ok := c.Key(id)
		if !ok || gp != want.p || gk != want.key {
			t.Errorf("Key(%s) = %v, %v, %v; want %v, %v", id, gp, gk, ok, want.p.Name, want.key)
		}
	}
	for _, id := range []string{"", "AKIAUNKNOWN000000001", "akiaordersproducer01"} {
		if p, k, ok := c.Key(id); ok || p != nil || k != (AccessKey{}) {
			t.Errorf("Key(%q) found %v %v", id, p, k)
		}
	}

	// The policies are the file's, byte for byte, and work.
	if raw := string(a.Policies[0].Raw()); raw != `{"Statement": {"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}}` {
		t.Fatalf("policy raw %s", raw)
	}
	req := iampolicy.Request{Principal: p.IAMPrincipal(), Action: "kinesis:PutRecord", Resource: "arn:aws:kinesis:us-east-1:111122223333:stream/orders"}
	if res := iampolicy.Evaluate(req, p.Policies, nil); !res.Allowed {
		t.Fatalf("orders-producer PutRecord: %+v", res)
	}
	req.Action = "kinesis:DeleteStream"
	if res := iampolicy.Evaluate(req, p.Policies, nil); res.Reason != iampolicy.NoIdentityAllow {
		t.Fatalf("orders-producer DeleteStream: %+v", res)
	}
}

func TestDefaultAccount(t *testing.T) {
	cfg := `{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret1 + `"}]}]}`
	c, err := Parse([]byte(cfg), "999988887777")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Principals[0]; p.AccountID != "999988887777" || p.ARN != "arn:aws:iam::999988887777:user/a" {
		t.Fatalf("principal %+v", p)
	}
	for def, want := range map[string]string{
		"":      "principals[0].accountId: required (there is no default account)",
		"12345": `principals[0].accountId: missing, and the default account "12345" is not a 12-digit account id`,
	} {
		if _, err := Parse([]byte(cfg), def); err == nil || err.Error() != want {
			t.Errorf("default %q: error %v, want %q", def, err, want)
		}
	}
	// An explicit accountId needs no default.
	cfg = strings.Replace(cfg, `"name": "a",`, `"name": "a", "accountId": "444455556666",`, 1)
	if c, err := Parse([]byte(cfg), ""); err != nil || c.Principals[0].AccountID != "444455556666" {
		t.Fatalf("explicit account: %v", err)
	}
}

// principalJSONText is one principal named name, with one key whose id is
// AKIA + the name's bytes in hex (so unique per name) and with extra members
// appended.
func principalJSONText(name, extra string) string {
	id := fmt.Sprintf("AKIA%016X", name)
	return `{"name": "` + name + `", "accessKeys": [{"accessKeyId": "` + id[:min(len(id), 128)] + `", "secretAccessKey": "` + secret1 + `"}]` + extra + `}`
}

func TestParseErrors(t *testing.T) {
	key := func(id, secret string) string {
		return `{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "` + id + `", "secretAccessKey": "` + secret + `"}]}]}`
	}
	tests := []struct {
		name, config, want string
	}{
		{"empty file", ``, "unexpected end of JSON at line 1, column 1"},
		{"not an object", `[]`, "want object, got array"},
		{"no principals", `{}`, "principals: required, with at least one principal"},
		{"null principals", `{"principals": null}`, "principals: required, with at least one principal"},
		{"empty principals", `{"principals": []}`, "principals: required, with at least one principal"},
		{"principals an object", `{"principals": {}}`, "principals: want array, got object"},
		{"unknown top-level field", `{"principal": []}`, `unknown field "principal"`},
		{"field names are case-sensitive", `{"Principals": []}`, `unknown field "Principals"`},
		{"unknown principal field", `{"principals": [{"name": "a", "role": "x"}]}`, `principals[0]: unknown field "role"`},
		{"unknown key field", `{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretKey": "x"}]}]}`, `principals[0].accessKeys[0]: unknown field "secretKey"`},
		{"duplicate field", `{"principals": [{"name": "a", "name": "b"}]}`, `principals[0]: duplicate field "name"`},
		{"trailing data", `{"principals": []} {}`, "invalid JSON at line 1, column 20"},
		{"syntax error position", "{\"principals\": [\n  {\"name\": \"a\",,}]}", "principals[0]: invalid JSON at line 2, column 16"},
		{"missing name", `{"principals": [{"accessKeys": []}]}`, "principals[0].name: required"},
		{"null principal", `{"principals": [null]}`, "principals[0].name: required"},
		{"name a number", `{"principals": [{"name": 5}]}`, "principals[0].name: want string, got number"},
		{"bad name", `{"principals": [` + principalJSONText("orders producer", "") + `]}`, `principals[0].name: "orders producer" is not an IAM user name (1 to 64 of letters, digits and _+=,.@-)`},
		{"name too long", `{"principals": [` + principalJSONText(strings.Repeat("n", 65), "") + `]}`, `principals[0].name: "` + strings.Repeat("n", 65) + `" is not an IAM user name (1 to 64 of letters, digits and _+=,.@-)`},
		{"duplicate name in account", `{"principals": [` + principalJSONText("a", "") + `, ` + principalJSONText("b", "") + `, ` + principalJSONText("A", `, "accountId": "111122223333"`) + `]}`,
			`principals[2].name: duplicate user "A" in account 111122223333 (also principals[0])`},
		{"bad accountId", `{"principals": [{"name": "a", "accountId": "1111-2222-3333"}]}`, `principals[0].accountId: "1111-2222-3333" is not a 12-digit account id`},
		{"accountId a number", `{"principals": [{"name": "a", "accountId": 111122223333}]}`, "principals[0].accountId: want string, got number"},
		{"no accessKeys", `{"principals": [{"name": "a"}]}`, "principals[0].accessKeys: required, with at least one access key"},
		{"empty accessKeys", `{"principals": [{"name": "a", "accessKeys": []}]}`, "principals[0].accessKeys: required, with at least one access key"},
		{"accessKeys an object", `{"principals": [{"name": "a", "accessKeys": {}}]}`, "principals[0].accessKeys: want array, got object"},
		{"missing accessKeyId", key("", secret1), "principals[0].accessKeys[0].accessKeyId: required"},
		{"short accessKeyId", key("AKIASHORT", secret1), "principals[0].accessKeys[0].accessKeyId: not an access key id (want 16 to 128 letters, digits or _; got 9 characters)"},
		{"accessKeyId with dash", key("AKIA-AAAAAAAAAAAAAAA", secret1), "principals[0].accessKeys[0].accessKeyId: not an access key id (want 16 to 128 letters, digits or _; got 20 characters)"},
		{"missing secret", key("AKIAAAAAAAAAAAAAAAA1", ""), "principals[0].accessKeys[0].secretAccessKey: required"},
		{"short secret", key("AKIAAAAAAAAAAAAAAAA1", "hunter2"), "principals[0].accessKeys[0].secretAccessKey: must be at least 16 characters"},
		{"duplicate key id across principals", `{"principals": [
			{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret1 + `"}]},
			{"name": "b", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA2", "secretAccessKey": "` + secret1 + `"},
			                             {"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret2 + `"}]}]}`,
			`principals[1].accessKeys[1].accessKeyId: duplicate access key id "AKIAAAAAAAAAAAAAAAA1" (also principals[0].accessKeys[0].accessKeyId)`},
		{"duplicate key id in one principal", `{"principals": [{"name": "a", "accessKeys": [
			{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret1 + `"},
			{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + secret1 + `"}]}]}`,
			`principals[0].accessKeys[1].accessKeyId: duplicate access key id "AKIAAAAAAAAAAAAAAAA1" (also principals[0].accessKeys[0].accessKeyId)`},
		{"policies an object", `{"principals": [` + principalJSONText("a", `, "policies": {}`) + `]}`, "principals[0].policies: want array, got object"},
		{"policy unknown member", `{"principals": [` + principalJSONText("a", `, "policies": [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condtion": {}}]}]`) + `]}`,
			`principals[0].policies[0]: Statement[0]: unknown member "Condtion"`},
		{"policy with Principal", `{"principals": [` + principalJSONText("a", `, "policies": [{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}}, {}]`) + `]}`,
			`principals[0].policies[0]: Statement.Principal: not allowed in an identity-based policy`},
		{"second policy bad", `{"principals": [` + principalJSONText("a", `, "policies": [{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}, {}]`) + `]}`,
			`principals[0].policies[1]: missing Statement`},
		{"policy null", `{"principals": [` + principalJSONText("a", `, "policies": [null]`) + `]}`, `principals[0].policies[0]: want a policy object, got null`},
		{"policy unsupported operator", `{"principals": [` + principalJSONText("a", `, "policies": [{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"aws:EpochTime": 1}}}}]`) + `]}`,
			`principals[0].policies[0]: Statement.Condition: unsupported condition operator "NumericLessThan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.config), defaultAcct)
			if err == nil {
				t.Fatalf("parsed: %+v", c)
			}
			if c != nil {
				t.Fatal("a config with an error")
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
	// Policy errors keep their type.
	_, err := Parse([]byte(`{"principals": [`+principalJSONText("a", `, "policies": [{}]`)+`]}`), defaultAcct)
	var perr *iampolicy.Error
	if !errors.As(err, &perr) || perr.Message != "missing Statement" {
		t.Fatalf("policy error %v is not an *iampolicy.Error", err)
	}
}

// TestSecretsNeverInErrors breaks configs in ways that put the decoder's
// attention on, or next to, a secret or a session token, and checks that no
// error repeats them.
func TestSecretsNeverInErrors(t *testing.T) {
	const sec = "SuperSecretValue/ABCDEFGHIJ1234567890"
	const tok = "FQoGZXIvYXdzEXAMPLE+tok/987654321"
	keyWith := func(fields string) string {
		return `{"principals": [{"name": "a", "accessKeys": [{` + fields + `}]}]}`
	}
	for name, cfg := range map[string]string{
		"secret a number":         keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": 12345678901234567890`),
		"secret unquoted":         keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": ` + sec),
		"secret bad escape":       keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `\q"`),
		"secret control char":     keyWith("\"accessKeyId\": \"AKIAAAAAAAAAAAAAAAA1\", \"secretAccessKey\": \"" + sec + "\x01\""),
		"secret invalid UTF-8":    keyWith("\"accessKeyId\": \"AKIAAAAAAAAAAAAAAAA1\", \"secretAccessKey\": \"" + sec + "\xff\""),
		"secret unterminated":     keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec),
		"secret an array":         keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": ["` + sec + `"]`),
		"secret an object":        keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": {"v": "` + sec + `"}`),
		"secret twice":            keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "secretAccessKey": "` + sec + `"`),
		"secret then unknown":     keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "secret": "` + sec + `"`),
		"secret, bad key id":      keyWith(`"accessKeyId": "bad id", "secretAccessKey": "` + sec + `"`),
		"secret, no key id":       keyWith(`"secretAccessKey": "` + sec + `"`),
		"secret as key id":        keyWith(`"accessKeyId": "` + sec + `", "secretAccessKey": "` + sec + `"`),
		"secret too short":        keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec[:15] + `"`),
		"secret literal typo":     keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": t` + sec),
		"token a number":          keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": 1`),
		"token bad escape":        keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": "` + tok + `\x"`),
		"token unquoted":          keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": ` + tok),
		"token then bad policy":   `{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": "` + tok + `"}], "policies": [{"Statement": 1}]}]}`,
		"secret then bad name":    `{"principals": [{"accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": "` + tok + `"}], "name": "bad name"}]}`,
		"secret then trailing":    keyWith(`"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "`+sec+`"`) + sec,
		"secret in a top-level":   `{"secretAccessKey": "` + sec + `"}`,
		"secret, duplicate keyid": `{"principals": [{"name": "a", "accessKeys": [{"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `"}, {"accessKeyId": "AKIAAAAAAAAAAAAAAAA1", "secretAccessKey": "` + sec + `", "sessionToken": "` + tok + `"}]}]}`,
	} {
		_, err := Parse([]byte(cfg), defaultAcct)
		if err == nil {
			t.Errorf("%s: parsed", name)
			continue
		}
		// Any 8 characters of either would be a leak.
		for _, s := range []string{sec, tok} {
			for i := 0; i+8 <= len(s); i++ {
				if strings.Contains(err.Error(), s[i:i+8]) {
					t.Errorf("%s: error %q contains %q", name, err, s[i:i+8])
					break
				}
			}
		}
	}
}

func TestAccessKeyPrintingRedacts(t *testing.T) {
	c, err := Parse([]byte(goodConfig), defaultAcct)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := c.Key("ASIAANALYTICSTEMP001")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{p.AccessKeys[1], &p.AccessKeys[1], p.AccessKeys, p, *p, c, *c, c.Principals} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret2) || strings.Contains(out, token2) {
				t.Errorf("Sprintf(%q, %T) leaks: %s", verb, v, out)
			}
		}
	}
	if s := fmt.Sprint(p); s != "{Name:analytics AccountID:444455556666 ARN:arn:aws:iam::444455556666:user/analytics AccessKeys:["+
		"{AccessKeyID:AKIAANALYTICS0000001 SecretAccessKey:REDACTED} "+
		"{AccessKeyID:ASIAANALYTICSTEMP001 SecretAccessKey:REDACTED SessionToken:REDACTED}] Policies:2}" {
		t.Errorf("Sprint(principal) = %s", s)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(path, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, defaultAcct)
	if err != nil || len(c.Principals) != 3 {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), defaultAcct); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"principals": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad, defaultAcct); err == nil || err.Error() != "auth config "+bad+": principals: required, with at least one principal" {
		t.Fatalf("Load of a bad file: %v", err)
	}
}

// TestConcurrentReads runs lookups and evaluations from many goroutines
// (meaningful under -race).
func TestConcurrentReads(t *testing.T) {
	c, err := Parse([]byte(goodConfig), defaultAcct)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				p, _, ok := c.Key("AKIAORDERSPRODUCER01")
				if !ok {
					t.Error("key not found")
					return
				}
				iampolicy.Evaluate(iampolicy.Request{Principal: p.IAMPrincipal(), Action: "kinesis:PutRecord", Resource: "*"}, p.Policies, nil)
			}
		})
	}
	wg.Wait()
}
