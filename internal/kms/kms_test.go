package kms_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/shoalstream/shoal/internal/kms"
)

func TestResolveForms(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	def, err := k.Resolve(kms.DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	if !def.Generated || def.ARN != arnPrefix+"key/"+def.ID || !slices.Equal(def.Aliases, []string{kms.DefaultAlias}) || !def.Enabled() || def.Versions != 1 {
		t.Fatalf("default key %+v", def)
	}
	orders := kms.Key{ID: ordersID, ARN: arnPrefix + "key/" + ordersID, Aliases: []string{"alias/orders"}, State: kms.StateEnabled, Versions: 1}
	for _, tc := range []struct {
		keyID string
		want  kms.Key
	}{
		{ordersID, orders},
		{arnPrefix + "key/" + ordersID, orders},
		{"alias/orders", orders},
		{arnPrefix + "alias/orders", orders},
		{kms.DefaultAlias, def},
		{arnPrefix + "alias/aws/kinesis", def},
		{def.ID, def},
		{def.ARN, def},
	} {
		got, err := k.Resolve(tc.keyID)
		if err != nil {
			t.Errorf("Resolve(%s): %v", tc.keyID, err)
			continue
		}
		if got.ID != tc.want.ID || got.ARN != tc.want.ARN || !slices.Equal(got.Aliases, tc.want.Aliases) ||
			got.State != tc.want.State || got.Versions != tc.want.Versions || got.Generated != tc.want.Generated {
			t.Errorf("Resolve(%s) = %+v, want %+v", tc.keyID, got, tc.want)
		}
	}
	for _, keyID := range []string{
		"",
		"11111111-2222-4333-8444-555555555555", // no such key
		"6F0B2A6E-1C2D-4E5F-8A9B-0C1D2E3F4A5B", // ids are lowercase
		"alias/nope",                           //
		"alias/Orders",                         // alias names are case-sensitive
		"key/" + ordersID,                      // neither a key id nor an ARN
		"arn:aws:kms:us-east-1:" + account + ":key/" + ordersID,   // another region
		"arn:aws:kms:" + region + ":999988887777:key/" + ordersID, // another account
		"arn:aws:kms:us-east-1:" + account + ":alias/orders",      // alias ARN, another region
		"arn:aws:kms:" + region + ":999988887777:alias/orders",    // alias ARN, another account
		"arn:aws-cn:kms:" + region + ":" + account + ":alias/orders",
		"arn:aws:kinesis:" + region + ":" + account + ":alias/orders",
		arnPrefix + "key/alias/orders",
		arnPrefix + "alias/nope",
		arnPrefix + ordersID,
		arnPrefix + "key/",
	} {
		if got, err := k.Resolve(keyID); !errors.Is(err, kms.ErrNotFound) {
			t.Errorf("Resolve(%q) = %+v, %v; want ErrNotFound", keyID, got, err)
		}
	}
}

func TestResolveState(t *testing.T) {
	e := newEnv(t, `{"keys": [
	  {"id": "`+ordersID+`", "state": "Disabled", "versions": [{"material": "`+b64("o1")+`"}]},
	  {"id": "`+billingID+`", "state": "PendingDeletion", "versions": [{"material": "`+b64("b1")+`"}]}]}`)
	k := e.open()
	got, err := k.Resolve(ordersID)
	wantErr(t, "Resolve(disabled)", err, kms.ErrDisabled)
	if got.ID != ordersID || got.State != kms.StateDisabled || got.Enabled() {
		t.Errorf("disabled key: %+v", got)
	}
	got, err = k.Resolve(billingID)
	wantErr(t, "Resolve(pending deletion)", err, kms.ErrInvalidState)
	if got.ID != billingID || got.State != kms.StatePendingDeletion {
		t.Errorf("pending key: %+v", got)
	}
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	def, _ := k.Resolve(kms.DefaultAlias)
	genMaterial := generatedMaterial(t, e.cfg.Dir)
	for _, keyID := range []string{kms.DefaultAlias, "alias/orders"} {
		dek1, w1 := mustGenerate(t, k, keyID)
		dek2, w2 := mustGenerate(t, k, keyID)
		if bytes.Equal(dek1, dek2) || bytes.Equal(w1, w2) {
			t.Fatalf("%s: two data keys alike", keyID)
		}
		mustUnwrap(t, k, w1, dek1)
		mustUnwrap(t, k, w2, dek2)
		wantID := def.ID
		if keyID == "alias/orders" {
			wantID = ordersID
		}
		if w := wrappedVersion(t, w1); w.KeyID != wantID || w.Version != 1 {
			t.Fatalf("%s: blob names %+v", keyID, w)
		}
		// The blob holds neither the data key nor master material, not even
		// a third of either.
		for _, secret := range append([][]byte{dek1, material("o1")}, genMaterial...) {
			for i := 0; i+11 <= len(secret); i++ {
				if bytes.Contains(w1, secret[i:i+11]) {
					t.Fatalf("%s: the wrapped key contains secret bytes", keyID)
				}
			}
		}
		// The caller owns the data key: changing it changes nothing here.
		clear(dek1)
		if got, _ := k.Unwrap(w1); bytes.Equal(got, dek1) {
			t.Fatal("Unwrap returned the cleared slice")
		}
	}
}

// generatedMaterial reads the generated key's materials from its file.
func generatedMaterial(t *testing.T, dir string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "default-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Versions []struct{ Material string } `json:"versions"`
	}
	if err := json.Unmarshal(data, &f, json.MatchCaseInsensitiveNames(true)); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, v := range f.Versions {
		m, err := base64.StdEncoding.DecodeString(v.Material)
		if err != nil || len(m) != 32 {
			t.Fatalf("default key file material: %v, %d bytes", err, len(m))
		}
		out = append(out, m)
	}
	return out
}

// TestRestart: a keyring opened again on the same Dir and KeysFile unwraps
// what the first wrapped, with the rotation and state it had.
func TestRestart(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	defID := mustResolve(t, k, kms.DefaultAlias).ID
	dDef1, wDef1 := mustGenerate(t, k, kms.DefaultAlias)
	dOrd, wOrd := mustGenerate(t, k, "alias/orders")
	if err := k.Rotate(kms.DefaultAlias); err != nil {
		t.Fatal(err)
	}
	dDef2, wDef2 := mustGenerate(t, k, kms.DefaultAlias)

	k2 := e.open()
	if got := mustResolve(t, k2, kms.DefaultAlias); got.ID != defID || got.Versions != 2 {
		t.Fatalf("after restart the default key is %+v, was %s with 2 versions", got, defID)
	}
	mustUnwrap(t, k2, wDef1, dDef1)
	mustUnwrap(t, k2, wDef2, dDef2)
	mustUnwrap(t, k2, wOrd, dOrd)

	if err := k2.SetEnabled(defID, false); err != nil {
		t.Fatal(err)
	}
	k3 := e.open()
	_, err := k3.Unwrap(wDef1)
	wantErr(t, "Unwrap after a restart of a disabled key", err, kms.ErrDisabled)
}

func mustResolve(t testing.TB, k *kms.Keyring, keyID string) kms.Key {
	t.Helper()
	key, err := k.Resolve(keyID)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", keyID, err)
	}
	return key
}

func TestRotate(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	d1, w1 := mustGenerate(t, k, kms.DefaultAlias)
	for want := 2; want <= 3; want++ {
		if err := k.Rotate(arnPrefix + "alias/aws/kinesis"); err != nil {
			t.Fatal(err)
		}
		d, w := mustGenerate(t, k, kms.DefaultAlias)
		if v := wrappedVersion(t, w).Version; v != want {
			t.Fatalf("after rotation a new blob has version %d, want %d", v, want)
		}
		mustUnwrap(t, k, w, d)
	}
	mustUnwrap(t, k, w1, d1)
	if got := generatedMaterial(t, e.cfg.Dir); len(got) != 3 || bytes.Equal(got[0], got[1]) || bytes.Equal(got[1], got[2]) {
		t.Fatalf("the default key file holds %d versions, or repeats one", len(got))
	}

	// A keys-file key rotates by a new version in the file.
	o1, wo1 := mustGenerate(t, k, "alias/orders")
	wantErr(t, "Rotate(file key)", k.Rotate("alias/orders"), kms.ErrReadOnly)
	e.writeKeys(ordersKeys("", "o1", "o2"))
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	o2, wo2 := mustGenerate(t, k, "alias/orders")
	if v := wrappedVersion(t, wo2).Version; v != 2 {
		t.Fatalf("after a reload with 2 versions a new blob has version %d", v)
	}
	mustUnwrap(t, k, wo1, o1)
	mustUnwrap(t, k, wo2, o2)
}

func TestDisable(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	d, w := mustGenerate(t, k, kms.DefaultAlias)
	if err := k.SetEnabled(kms.DefaultAlias, false); err != nil {
		t.Fatal(err)
	}
	_, _, err := k.GenerateDataKey(kms.DefaultAlias)
	wantErr(t, "GenerateDataKey(disabled)", err, kms.ErrDisabled)
	_, err = k.Unwrap(w)
	wantErr(t, "Unwrap(disabled)", err, kms.ErrDisabled)
	_, err = k.Resolve(kms.DefaultAlias)
	wantErr(t, "Resolve(disabled)", err, kms.ErrDisabled)
	wantErr(t, "Rotate(disabled)", k.Rotate(kms.DefaultAlias), kms.ErrDisabled)
	if err := k.SetEnabled(kms.DefaultAlias, false); err != nil { // no change, no error
		t.Fatal(err)
	}
	if err := k.SetEnabled(kms.DefaultAlias, true); err != nil {
		t.Fatal(err)
	}
	mustUnwrap(t, k, w, d)

	// A keys-file key takes its state from the file.
	o, wo := mustGenerate(t, k, "alias/orders")
	wantErr(t, "SetEnabled(file key)", k.SetEnabled("alias/orders", false), kms.ErrReadOnly)
	e.writeKeys(ordersKeys("Disabled", "o1"))
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	_, _, err = k.GenerateDataKey("alias/orders")
	wantErr(t, "GenerateDataKey(file key disabled)", err, kms.ErrDisabled)
	_, err = k.Unwrap(wo)
	wantErr(t, "Unwrap(file key disabled)", err, kms.ErrDisabled)
	e.writeKeys(ordersKeys("Enabled", "o1"))
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	mustUnwrap(t, k, wo, o)
}

func TestPendingDeletion(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	_, w := mustGenerate(t, k, "alias/orders")
	e.writeKeys(ordersKeys("PendingDeletion", "o1"))
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	_, _, err := k.GenerateDataKey("alias/orders")
	wantErr(t, "GenerateDataKey(pending deletion)", err, kms.ErrInvalidState)
	_, err = k.Unwrap(w)
	wantErr(t, "Unwrap(pending deletion)", err, kms.ErrInvalidState)
	// Now the key may leave the file; what it wrapped is gone with it.
	e.writeKeys(`{"keys": []}`)
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = k.Unwrap(w)
	wantErr(t, "Unwrap(deleted key)", err, kms.ErrNotFound)
	_, err = k.Resolve("alias/orders")
	wantErr(t, "Resolve(deleted key)", err, kms.ErrNotFound)
}

// TestDefaultAliasFromFile: a keys file may give the default alias to its
// own key; the generated key stays, by id, for what it wrapped.
func TestDefaultAliasFromFile(t *testing.T) {
	e := newEnv(t, ordersKeys("", "o1"))
	k := e.open()
	gen := mustResolve(t, k, kms.DefaultAlias)
	d, w := mustGenerate(t, k, kms.DefaultAlias)

	e.writeKeys(`{"keys": [{"id": "` + ordersID + `", "aliases": ["alias/orders", "alias/aws/kinesis"], "versions": [{"material": "` + b64("o1") + `"}]}]}`)
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	// The reloaded keyring and one opened afresh agree.
	for name, k := range map[string]*kms.Keyring{"reloaded": k, "reopened": e.open()} {
		if got := mustResolve(t, k, kms.DefaultAlias); got.ID != ordersID || got.Generated {
			t.Fatalf("%s: the default alias names %+v, want the file's key", name, got)
		}
		if got := mustResolve(t, k, gen.ID); len(got.Aliases) != 0 || !got.Generated {
			t.Fatalf("%s: the generated key is %+v, want it without aliases", name, got)
		}
		mustUnwrap(t, k, w, d)
		if _, w2 := mustGenerate(t, k, kms.DefaultAlias); wrappedVersion(t, w2).KeyID != ordersID {
			t.Fatalf("%s: new wraps under the default alias do not use the file's key", name)
		}
	}
}
