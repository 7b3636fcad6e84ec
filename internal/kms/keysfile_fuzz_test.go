package kms

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

const fuzzPrefix = "arn:aws:kms:us-east-1:000000000000:"

// fuzzMaterialFiles are the files a fuzzed keys file may name.
func fuzzReadFile(name string) ([]byte, error) {
	switch name {
	case "raw.key":
		m := sha256.Sum256([]byte("raw"))
		return m[:], nil
	case "b64.key":
		m := sha256.Sum256([]byte("b64"))
		return []byte(base64.StdEncoding.EncodeToString(m[:]) + "\n"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// FuzzKeysFile parses arbitrary keys files. Invariants: no panic; a failure
// has a message, no keys, and does not depend on the key material given
// inline (a material value masked, as below, gives the same message); a
// success obeys every rule of the package doc and builds a keyring in which
// every id and alias finds its key.
func FuzzKeysFile(f *testing.F) {
	m1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	m2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 31))
	for _, s := range []string{
		``, `{}`, `{"keys": []}`, `{"keys": null}`, `[]`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "aliases": ["alias/orders", "alias/aws/kinesis"], "state": "Disabled",
		  "versions": [{"material": "` + m1 + `"}, {"materialFile": "raw.key"}, {"materialFile": "b64.key"}]}]}`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "versions": [{"material": "` + m2 + `"}]}]}`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "versions": [{"material": "` + m1 + `"}]},
		           {"id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "versions": [{"material": "` + m1 + `"}]}]}`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "versions": [{"material": "` + m1 + `", "materialFile": "x"}]}]}`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "aliases": ["alias/aws/x"], "versions": [{"material": "` + m1 + `"}]}]}`,
		`{"keys": [{"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "versions": [{"material": "` + m1 + `\u0041"}], "versions": []}]}`,
	} {
		f.Add([]byte(s))
	}
	var gen key
	gen.id[0] = 0xff
	gen.idStr = formatUUID(gen.id)
	gen.generated = true
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := parseKeysFile(data, fuzzReadFile)
		if err != nil {
			if specs != nil || err.Error() == "" {
				t.Fatalf("error %q with %d keys", err, len(specs))
			}
			if d := materialDependence(data, err.Error()); d != "" {
				t.Fatal(d)
			}
			return
		}
		s, err := newSnapshot(&gen, specs, fuzzPrefix)
		if err != nil {
			if len(specs) > 0 && specs[0].id == gen.id {
				return // the fuzzer found the generated key's id
			}
			t.Fatalf("valid keys, no keyring: %v", err)
		}
		checkSnapshot(t, specs, s)
	})
}

func checkSnapshot(t *testing.T, specs []keySpec, s *snapshot) {
	t.Helper()
	var materials [][32]byte
	aliases, claimed := 0, 0
	for _, sp := range specs {
		if !sp.state.valid() || len(sp.materials) == 0 {
			t.Fatalf("key %x: state %q, %d versions", sp.id, sp.state, len(sp.materials))
		}
		idStr := formatUUID(sp.id)
		for _, keyID := range append([]string{idStr, fuzzPrefix + "key/" + idStr}, sp.aliases...) {
			k, err := s.lookup(keyID, fuzzPrefix)
			if err != nil || k.id != sp.id || len(k.versions) != len(sp.materials) || k.state != sp.state {
				t.Fatalf("lookup(%s) = %v, %v", keyID, k, err)
			}
		}
		for _, a := range sp.aliases {
			if checkAlias(a) != nil {
				t.Fatalf("alias %q accepted", a)
			}
			if a == DefaultAlias {
				claimed++
			}
		}
		aliases += len(sp.aliases)
		for _, m := range sp.materials {
			for _, o := range materials {
				if m == o {
					t.Fatal("two versions share material")
				}
			}
			materials = append(materials, m)
		}
	}
	if len(s.byID) != len(specs)+1 || len(s.byAlias) != aliases+1-claimed {
		t.Fatalf("%d keys and %d aliases indexed, from %d keys and %d aliases", len(s.byID), len(s.byAlias), len(specs), aliases)
	}
	if d, err := s.lookup(DefaultAlias, fuzzPrefix); err != nil || d.generated != (claimed == 0) {
		t.Fatalf("the default alias: %v, %v", d, err)
	}
}

// materialDependence reparses data with each inline material value masked
// and describes the first mask that changes the error message msg ("" if
// none does). The mask maps each base64 character to the one 32 places
// away in the alphabet: the value stays base64 or not, of the same length,
// with the same padding bits, so only a message that shows or depends on the
// material's content can change. Messages about two versions sharing
// material may change, as masking makes or breaks the likeness.
func materialDependence(data []byte, msg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for _, sp := range materialSpans(data) {
		masked := bytes.Clone(data)
		for i := sp[0]; i < sp[1]; i++ {
			if j := strings.IndexByte(alphabet, masked[i]); j >= 0 {
				masked[i] = alphabet[j^32]
			}
		}
		got := "no error"
		if _, err := parseKeysFile(masked, fuzzReadFile); err != nil {
			got = err.Error()
		}
		if got == msg || strings.Contains(got+msg, "the same key material") {
			continue
		}
		return fmt.Sprintf("the error depends on the material %q:\n with it: %q\n masked:  %q", data[sp[0]:sp[1]], msg, got)
	}
	return ""
}

// materialSpans finds the contents of the string values of members named
// "material", up to the first syntax error; values with escapes are left
// out (masking them could change what they decode to).
func materialSpans(data []byte) [][2]int {
	var spans [][2]int
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return spans
		}
		kind, n := dec.StackIndex(dec.StackDepth())
		if tok.Kind() != '"' || kind != '{' || n%2 != 1 || tok.String() != "material" {
			continue
		}
		if dec.PeekKind() != '"' {
			continue
		}
		v, err := dec.ReadValue()
		if err != nil {
			return spans
		}
		end := int(dec.InputOffset())
		if !bytes.ContainsRune(v, '\\') {
			spans = append(spans, [2]int{end - len(v) + 1, end - 1})
		}
	}
}

// TestMaterialDependence pins the helpers the fuzz target relies on.
func TestMaterialDependence(t *testing.T) {
	data := []byte(`{"keys": [{"material": "QUJD", "x": {"material": "RE\\u0041"}, "id": "material"}], "material": 1}`)
	if got := materialSpans(data); len(got) != 1 || string(data[got[0][0]:got[0][1]]) != "QUJD" {
		t.Fatalf("materialSpans = %v", got)
	}
	// The check catches an error that quotes material.
	if materialDependence(data, `bad material "QUJD"`) == "" {
		t.Fatal("materialDependence missed an error that quotes the material")
	}
	if d := materialDependence(data, `keys[0]: unknown field "material"`); d != "" {
		t.Fatal(d)
	}
}
