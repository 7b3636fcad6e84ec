package kms_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

// The regions of a wrapped key (package doc, "Wrapped data keys").
const (
	blobLen    = 83
	idStart    = 3
	nonceStart = 23
)

// TestUnwrapDamaged truncates, extends and flips every bit of a wrapped key:
// each damage is reported as the region it hits says, and no data key is
// ever returned.
func TestUnwrapDamaged(t *testing.T) {
	k := newEnv(t, "").open()
	dek, w := mustGenerate(t, k, kms.DefaultAlias)
	if len(w) != blobLen {
		t.Fatalf("wrapped key of %d bytes, want %d", len(w), blobLen)
	}
	check := func(what string, b []byte, want error) {
		t.Helper()
		got, err := k.Unwrap(b)
		if got != nil || !errors.Is(err, want) {
			t.Fatalf("%s: Unwrap = %d bytes, %v; want %v", what, len(got), err, want)
		}
	}
	for n := range len(w) {
		check("truncated", w[:n], kms.ErrCorrupt)
	}
	check("extended", append(bytes.Clone(w), 0), kms.ErrCorrupt)
	check("nil", nil, kms.ErrCorrupt)
	for i := range len(w) * 8 {
		b := bytes.Clone(w)
		b[i/8] ^= 1 << (i % 8)
		want := kms.ErrCorrupt // magic, format, nonce, ciphertext, tag
		if i/8 >= idStart && i/8 < nonceStart {
			want = kms.ErrNotFound // another key id, or a version the key lacks
		}
		check("bit flipped", b, want)
	}
	mustUnwrap(t, k, w, dek) // and the original still unwraps
}

// TestUnwrapForeign: a wrapped key from another keyring names a key this
// one lacks; one from a keyring holding the same key id with other material
// fails authentication.
func TestUnwrapForeign(t *testing.T) {
	k := newEnv(t, ordersKeys("", "o1")).open()
	_, other := mustGenerate(t, newEnv(t, "").open(), kms.DefaultAlias)
	_, err := k.Unwrap(other)
	wantErr(t, "Unwrap(another keyring's default key)", err, kms.ErrNotFound)

	_, w := mustGenerate(t, newEnv(t, ordersKeys("", "impostor")).open(), "alias/orders")
	_, err = k.Unwrap(w)
	wantErr(t, "Unwrap(same id, other material)", err, kms.ErrCorrupt)
}

func TestParseWrapped(t *testing.T) {
	k := newEnv(t, ordersKeys("", "o1", "o2")).open()
	_, w := mustGenerate(t, k, "alias/orders")
	got, err := kms.ParseWrapped(w)
	if err != nil || got != (kms.WrappedKey{KeyID: ordersID, Version: 2}) {
		t.Fatalf("ParseWrapped = %+v, %v", got, err)
	}
	for _, b := range [][]byte{nil, w[:2], []byte("XK\x01"), append([]byte("SK\x02"), w[3:]...), w[:blobLen-1]} {
		if _, err := kms.ParseWrapped(b); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("ParseWrapped(%q): %v, want ErrCorrupt", b, err)
		}
	}
}
