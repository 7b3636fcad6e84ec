package kms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"testing"
)

// testKey is a keys-file key with fixed id and material (0x01 to 0x20).
func testKey(t *testing.T) *key {
	t.Helper()
	id, _ := parseUUID("6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
	var m [32]byte
	for i := range m {
		m[i] = byte(i + 1)
	}
	var gen key
	gen.generated = true
	s, err := newSnapshot(&gen, []keySpec{{id: id, state: StateEnabled, materials: [][32]byte{m}}}, "arn:aws:kms:us-east-1:000000000000:")
	if err != nil {
		t.Fatal(err)
	}
	return s.byID[id]
}

// TestBlobGolden pins format 1: wrapped keys already on disk must keep
// unwrapping, so a change to the KEK derivation or the layout fails here.
// The vector was computed independently, with HKDF written out in Python
// (hmac, hashlib) and AESGCM of its cryptography package.
func TestBlobGolden(t *testing.T) {
	k := testKey(t)
	dek := bytes.Repeat([]byte{0xd0}, DataKeySize)
	nonce := bytes.Repeat([]byte{0x0e}, nonceLen)
	b, err := seal(k, 1, dek, nonce)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "534b01" + "6f0b2a6e1c2d4e5f8a9b0c1d2e3f4a5b" + "01000000" + "0e0e0e0e0e0e0e0e0e0e0e0e" +
		"91eb6dba3d0ee7e2423c2ac18e87ac89d697a49f56ba1dd1266d476ebc3c3f18" + "8be7c148d434aa86f790555d1673d2f9"
	if got := hex.EncodeToString(b); got != golden {
		t.Fatalf("wrapped key\n got %s\nwant %s", got, golden)
	}
	got, err := open(k, 1, b)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("open: %x, %v", got, err)
	}
}

// TestRandomNonceGCMCompatible: the layout after the header is exactly
// cipher.NewGCMWithRandomNonce's (package doc, "Cipher"), both ways.
func TestRandomNonceGCMCompatible(t *testing.T) {
	k := testKey(t)
	block, err := aes.NewCipher(k.versions[0].kek[:])
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		t.Fatal(err)
	}
	dek := bytes.Repeat([]byte{0xd0}, DataKeySize)
	b, err := seal(k, 1, dek, bytes.Repeat([]byte{0x0e}, nonceLen))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := aead.Open(nil, nil, b[nonceOff:], b[:nonceOff]); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("NewGCMWithRandomNonce cannot open a wrapped key: %v", err)
	}
	theirs := aead.Seal(bytes.Clone(b[:nonceOff]), nil, dek, b[:nonceOff])
	if got, err := open(k, 1, theirs); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("a NewGCMWithRandomNonce seal does not unwrap: %v", err)
	}
}
