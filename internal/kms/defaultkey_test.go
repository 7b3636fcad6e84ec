package kms_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

func TestDefaultKeyFileModes(t *testing.T) {
	e := newEnv(t, "")
	e.open()
	path := filepath.Join(e.cfg.Dir, "default-key.json")
	for p, want := range map[string]os.FileMode{e.cfg.Dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %#o, want %#o", p, got, want)
		}
	}
	// A rotation rewrites the file: still 0600, and no temporary file left.
	k := e.open()
	if err := k.Rotate(kms.DefaultAlias); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after Rotate: %v, %v", fi, err)
	}
	if names, _ := os.ReadDir(e.cfg.Dir); len(names) != 1 {
		t.Fatalf("the key dir holds %d files, want 1", len(names))
	}

	// Others may not read the key: Open refuses, and changes nothing.
	for _, p := range []string{path, e.cfg.Dir} {
		fi, _ := os.Stat(p)
		if err := os.Chmod(p, fi.Mode().Perm()|0o044); err != nil {
			t.Fatal(err)
		}
		_, err := kms.Open(e.cfg)
		if err == nil || !strings.Contains(err.Error(), "group and others must have no access") {
			t.Fatalf("Open with %s readable by others: %v", p, err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	e.open()
}

// TestDefaultKeyFileDamaged: a default key file that does not parse is an
// error, never replaced by a new key, and the error shows no material.
func TestDefaultKeyFileDamaged(t *testing.T) {
	e := newEnv(t, "")
	e.open()
	path := filepath.Join(e.cfg.Dir, "default-key.json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mat := generatedMaterial(t, e.cfg.Dir)[0]
	for name, tc := range map[string]struct {
		data []byte
		why  string
	}{
		"empty":          {[]byte{}, "(unexpected end of JSON at line 1, column 1)"},
		"truncated":      {good[:len(good)/2], "(versions[0]: unexpected end of JSON"},
		"short material": {bytes.Replace(good, []byte(`"material":"`), []byte(`"material":"AAAA`), 1), "(versions[0].material: not the base64 of 32 bytes)"},
		"unknown format": {bytes.Replace(good, []byte(`"format":1`), []byte(`"format":2`), 1), "(format: 2, want 1)"},
		"unknown field":  {bytes.Replace(good, []byte(`"format":1`), []byte(`"format":1,"x":0`), 1), `(unknown field "x")`},
		"no versions":    {[]byte(`{"format":1,"id":"` + ordersID + `","state":"Enabled","versions":[]}`), "(versions: none)"},
		"pending":        {bytes.Replace(good, []byte(`"Enabled"`), []byte(`"PendingDeletion"`), 1), "(state: want Enabled or Disabled)"},
		"not a key id":   {bytes.Replace(good, []byte(`"id":"`), []byte(`"id":"x`), 1), "(id: not a key id)"},
		"binary":         {[]byte("\x00\x01"), "(invalid JSON at line 1, column 1)"},
	} {
		data := tc.data
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := kms.Open(e.cfg)
		if err == nil || !strings.Contains(err.Error(), path+" is damaged "+tc.why) {
			t.Errorf("%s: Open: %v, want ...is damaged %s...", name, err, tc.why)
		}
		if err != nil {
			if l := leaks(err.Error(), string(mat)); l != "" || bytes.Contains([]byte(err.Error()), mat[:8]) {
				t.Errorf("%s: error %q shows key material", name, err)
			}
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, data) {
			t.Fatalf("%s: Open changed the damaged file", name)
		}
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := generatedMaterial(t, e.cfg.Dir)[0]; !bytes.Equal(got, mat) {
		t.Fatal("the key changed")
	}
	e.open()
}

// failingReader returns n bytes of crypto/rand, then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	f.n -= len(p)
	return rand.Read(p)
}

func TestRandomFails(t *testing.T) {
	boom := errors.New("entropy source failed")
	e := newEnv(t, "")
	e.cfg.Random = &failingReader{n: 20, err: boom} // fails during the key's material
	if _, err := kms.Open(e.cfg); !errors.Is(err, boom) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, "default-key.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was written: %v", err)
	}
	e.cfg.Random = &failingReader{n: 48 + 20, err: boom} // enough for the key, not for a data key
	k := e.open()
	if _, _, err := k.GenerateDataKey(kms.DefaultAlias); !errors.Is(err, boom) {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if err := k.Rotate(kms.DefaultAlias); !errors.Is(err, boom) {
		t.Fatalf("Rotate: %v", err)
	}
	if got := mustResolve(t, k, kms.DefaultAlias); got.Versions != 1 {
		t.Fatalf("a failed rotation left %d versions", got.Versions)
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, cfg := range []kms.Config{
		{},
		{Dir: t.TempDir(), Region: "us east"},
		{Dir: t.TempDir(), AccountID: "12345"},
		{Dir: t.TempDir(), KeysFile: filepath.Join(t.TempDir(), "missing.json")},
	} {
		if k, err := kms.Open(cfg); err == nil {
			t.Errorf("Open(%+v) = %v, want an error", cfg, k)
		}
	}
	// Defaults: the server's region and account.
	k, err := kms.Open(kms.Config{Dir: filepath.Join(t.TempDir(), "kms"), Random: io.MultiReader(rand.Reader)})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, k, "arn:aws:kms:us-east-1:000000000000:alias/aws/kinesis"); !got.Generated {
		t.Fatalf("%+v", got)
	}
}
