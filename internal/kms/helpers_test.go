package kms_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

// Key ids and materials of the test keys files.
const (
	ordersID  = "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
	billingID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	region    = "eu-west-1"
	account   = "111122223333"
	arnPrefix = "arn:aws:kms:" + region + ":" + account + ":"
)

// material returns 32 bytes of test material named by label.
func material(label string) []byte {
	m := sha256.Sum256([]byte(label))
	return m[:]
}

// b64 is the base64 of material(label), as a keys file gives it.
func b64(label string) string { return base64.StdEncoding.EncodeToString(material(label)) }

// env is a data dir and keys file for Open.
type env struct {
	t   testing.TB
	cfg kms.Config
}

// newEnv makes a Config over a fresh temporary dir; keysFile, if not "",
// is written as the keys file.
func newEnv(t testing.TB, keysFile string) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, cfg: kms.Config{Dir: filepath.Join(root, "kms"), Region: region, AccountID: account}}
	if keysFile != "" {
		e.cfg.KeysFile = filepath.Join(root, "keys.json")
		e.writeKeys(keysFile)
	}
	return e
}

// writeKeys replaces the keys file.
func (e *env) writeKeys(content string) {
	e.t.Helper()
	if err := os.WriteFile(e.cfg.KeysFile, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// open opens the keyring, failing the test on error.
func (e *env) open() *kms.Keyring {
	e.t.Helper()
	k, err := kms.Open(e.cfg)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return k
}

// ordersKeys is a keys file with the orders key (alias/orders) of the given
// versions and state ("" for the default).
func ordersKeys(state string, versions ...string) string {
	var vs []string
	for _, v := range versions {
		vs = append(vs, `{"material": "`+b64(v)+`"}`)
	}
	st := ""
	if state != "" {
		st = `, "state": "` + state + `"`
	}
	return `{"keys": [{"id": "` + ordersID + `", "aliases": ["alias/orders"]` + st +
		`, "versions": [` + strings.Join(vs, ", ") + `]}]}`
}

// mustGenerate wraps a data key under keyID.
func mustGenerate(t testing.TB, k *kms.Keyring, keyID string) (dek, wrapped []byte) {
	t.Helper()
	dek, wrapped, err := k.GenerateDataKey(keyID)
	if err != nil {
		t.Fatalf("GenerateDataKey(%s): %v", keyID, err)
	}
	if len(dek) != kms.DataKeySize {
		t.Fatalf("data key of %d bytes", len(dek))
	}
	return dek, wrapped
}

// mustUnwrap unwraps and compares with want.
func mustUnwrap(t testing.TB, k *kms.Keyring, wrapped, want []byte) {
	t.Helper()
	got, err := k.Unwrap(wrapped)
	if err != nil {
		t.Fatalf("Unwrap: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("Unwrap returned another key")
	}
}

// wantErr fails unless err wraps target.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// wrappedVersion is the key version a wrapped key names.
func wrappedVersion(t testing.TB, wrapped []byte) kms.WrappedKey {
	t.Helper()
	w, err := kms.ParseWrapped(wrapped)
	if err != nil {
		t.Fatalf("ParseWrapped: %v", err)
	}
	return w
}
