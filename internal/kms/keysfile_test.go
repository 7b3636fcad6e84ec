package kms_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

// keyWith is a keys file holding one key: member is the text after "id".
func keyWith(rest string) string {
	return `{"keys": [{"id": "` + ordersID + `"` + rest + `}]}`
}

// versions is a versions member with the given materials.
func versions(ms ...string) string {
	var vs []string
	for _, m := range ms {
		vs = append(vs, `{"material": "`+m+`"}`)
	}
	return `, "versions": [` + strings.Join(vs, ", ") + `]`
}

// leaks reports the first 8-character run of a base64 material, or of its
// raw bytes, found in msg.
func leaks(msg string, materials ...string) string {
	for _, m := range materials {
		raw, _ := base64.StdEncoding.DecodeString(m)
		for _, s := range []string{m, string(raw)} {
			for i := 0; i+8 <= len(s); i++ {
				if strings.Contains(msg, s[i:i+8]) {
					return s[i : i+8]
				}
			}
		}
	}
	return ""
}

func TestKeysFileInvalid(t *testing.T) {
	good := versions(b64("o1"))
	short := base64.StdEncoding.EncodeToString(material("o1")[:31])
	long := base64.StdEncoding.EncodeToString(append(material("o1"), material("o2")...))
	notB64 := strings.Repeat("!", 44)
	for _, tc := range []struct{ file, want string }{
		{`{"keys": [`, `keys: unexpected end of JSON`},
		{`{"keys": [}`, `keys[0]: invalid JSON at line 1, column 11`},
		{"{\"keys\": [\n  {\"id\": 1}]}", `keys[0].id: want string, got number`},
		{"{\"keys\":\n [\n  {\"id\": \"x\"\n}", `keys: unexpected end of JSON at line 4, column 2`},
		{`{"key": []}`, `unknown field "key"`},
		{keyWith(good + `, "enabled": true`), `keys[0]: unknown field "enabled"`},
		{keyWith(`, "versions": [{"material": "` + b64("o1") + `", "key": "x"}]`), `keys[0].versions[0]: unknown field "key"`},
		{keyWith(good + `, "state": "Enabled", "state": "Disabled"`), `keys[0]: duplicate field "state"`},
		{keyWith(`, "versions": {}`), `keys[0].versions: want array, got object`},
		{keyWith(`, "aliases": "alias/orders"` + good), `keys[0].aliases: want array, got string`},
		{`{"keys": [{"versions": [{"material": "` + b64("o1") + `"}]}]}`, `keys[0].id: required`},
		{`{"keys": [{"id": "` + strings.ToUpper(ordersID) + `"` + good + `}]}`, `keys[0].id: not a key id`},
		{`{"keys": [{"id": "` + b64("o2") + `"` + good + `}]}`, `keys[0].id: not a key id`},
		{`{"keys": [{"id": "` + ordersID + `"` + good + `}, {"id": "` + ordersID + `"` + versions(b64("o2")) + `}]}`, `keys[1].id: ` + ordersID + ` is also keys[0].id`},
		{keyWith(good + `, "state": "Deleted"`), `keys[0].state: want Enabled, Disabled or PendingDeletion`},
		{keyWith(good + `, "aliases": ["orders"]`), `keys[0].aliases[0]: not an alias name`},
		{keyWith(good + `, "aliases": ["alias/"]`), `keys[0].aliases[0]: not an alias name`},
		{keyWith(good + `, "aliases": ["alias/a b"]`), `keys[0].aliases[0]: not an alias name`},
		{keyWith(good + `, "aliases": ["alias/` + strings.Repeat("a", 251) + `"]`), `keys[0].aliases[0]: not an alias name`},
		{keyWith(good + `, "aliases": ["alias/aws/s3"]`), `keys[0].aliases[0]: alias/aws/s3: alias/aws/ is reserved`},
		{keyWith(good + `, "aliases": ["alias/x", "alias/x"]`), `keys[0].aliases[1]: alias/x is also keys[0].aliases[0]`},
		{keyWith(``), `keys[0].versions: required`},
		{keyWith(`, "versions": []`), `keys[0].versions: required`},
		{keyWith(`, "versions": [{}]`), `keys[0].versions[0].material: required`},
		{keyWith(versions(short)), `keys[0].versions[0].material: 31 bytes, want 32`},
		{keyWith(versions(long)), `keys[0].versions[0].material: 64 bytes, want 32`},
		{keyWith(versions(notB64)), `keys[0].versions[0].material: not standard base64`},
		{keyWith(versions(b64("o1"), b64("o1"))), `keys[0].versions[1]: the same key material as keys[0].versions[0]`},
		{keyWith(`, "versions": [{"material": "` + b64("o1") + `", "materialFile": "x"}]`), `give material or materialFile, not both`},
		{keyWith(`, "versions": [{"materialFile": "missing.key"}]`), `keys[0].versions[0].materialFile: open `},
		{keyWith(`, "versions": [{"materialFile": "short.key"}]`), `keys[0].versions[0].materialFile: short.key holds 31 bytes: want 32 raw bytes or their base64`},
	} {
		e := newEnv(t, tc.file)
		if err := os.WriteFile(filepath.Join(filepath.Dir(e.cfg.KeysFile), "short.key"), material("o1")[:31], 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := kms.Open(e.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %s\nerror %v\nwant  ...%s...", tc.file, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), e.cfg.KeysFile) {
			t.Errorf("error %q does not name the file", err)
		}
		if _, err := os.Stat(e.cfg.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused keys file left the key dir behind (%v)", err)
		}
		if l := leaks(err.Error(), b64("o1"), b64("o2"), short, long); l != "" {
			t.Errorf("error %q contains key material (%q)", err, l)
		}
	}
}

func TestMaterialFile(t *testing.T) {
	e := newEnv(t, keyWith(`, "versions": [{"materialFile": "raw.key"}, {"materialFile": "b64.key"}, {"materialFile": "ABS"}]`))
	dir := filepath.Dir(e.cfg.KeysFile)
	abs := filepath.Join(t.TempDir(), "abs.key")
	e.writeKeys(strings.Replace(keyWith(`, "versions": [{"materialFile": "raw.key"}, {"materialFile": "b64.key"}, {"materialFile": "ABS"}]`), "ABS", abs, 1))
	for name, data := range map[string]string{
		filepath.Join(dir, "raw.key"): string(material("o1")),
		filepath.Join(dir, "b64.key"): "\n " + b64("o2") + "\n",
		abs:                           b64("o3"),
	} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k := e.open()
	if got := mustResolve(t, k, ordersID); got.Versions != 3 {
		t.Fatalf("%d versions", got.Versions)
	}
	// The same materials given inline make the same key: what one wraps,
	// the other unwraps.
	inline := newEnv(t, ordersKeys("", "o1", "o2", "o3")).open()
	d, w := mustGenerate(t, inline, ordersID)
	mustUnwrap(t, k, w, d)
}

// TestReloadRefused: a reload that fails leaves the keyring as it was, and
// its error says why without key material.
func TestReloadRefused(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1", "o2"))
	k := e.open()
	d, w := mustGenerate(t, k, "alias/orders")
	for _, tc := range []struct{ file, want string }{
		{`{"keys": [`, `unexpected end of JSON`},
		{keyWith(`, "aliases": ["alias/new"], "versions": [{"material": "` + b64("o1") + `", "secret": "` + b64("o9") + `"}]`), `keys[0].versions[0]: unknown field "secret"`},
		{keyWith(`, "aliases": ["alias/new"]` + versions(b64("o1"))), `key ` + ordersID + ` has 1 versions, had 2`},
		{keyWith(`, "aliases": ["alias/new"]` + versions(b64("o1"), b64("o9"))), `key ` + ordersID + ` version 2: the material changed`},
		{keyWith(`, "aliases": ["alias/new"]` + versions(b64("o2"), b64("o1"))), `key ` + ordersID + ` version 1: the material changed`},
		{`{"keys": []}`, `key ` + ordersID + ` is gone from the file while Enabled`},
		{`{"keys": [{"id": "` + billingID + `", "aliases": ["alias/new"]` + versions(b64("b1")) + `}]}`, `key ` + ordersID + ` is gone`},
	} {
		e.writeKeys(tc.file)
		err := k.Reload()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "the keyring is unchanged") {
			t.Errorf("Reload of %s\nerror %v\nwant  ...%s...", tc.file, err, tc.want)
		}
		if err != nil {
			if l := leaks(err.Error(), b64("o1"), b64("o2"), b64("o9"), b64("b1")); l != "" {
				t.Errorf("error %q contains key material (%q)", err, l)
			}
		}
		if _, err := k.Resolve("alias/new"); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("after a refused reload alias/new resolves (%v)", err)
		}
		mustUnwrap(t, k, w, d)
	}
	if err := os.Remove(e.cfg.KeysFile); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload of a missing file: %v", err)
	}
	mustUnwrap(t, k, w, d)
}

// TestReloadWithoutKeysFile: Reload without a KeysFile does nothing.
func TestReloadWithoutKeysFile(t *testing.T) {
	k := newEnv(t, "").open()
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	mustResolve(t, k, kms.DefaultAlias)
}
