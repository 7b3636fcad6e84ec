package kms_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

const pendingID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"

// FuzzUnwrap unwraps arbitrary bytes with a keyring holding an enabled
// generated key of two versions, an enabled file key, a disabled one and
// one pending deletion. Invariants: no panic; a data key comes back only for
// a blob GenerateDataKey made (a forgery would have to beat GCM), and it is
// that blob's key; every failure is the one the documented format predicts:
// ErrCorrupt for bad framing or a failed tag, ErrNotFound for a key or
// version the keyring lacks, ErrDisabled or ErrInvalidState for the key's
// state.
func FuzzUnwrap(f *testing.F) {
	e := newEnv(f, `{"keys": [
	  {"id": "`+ordersID+`", "versions": [{"material": "`+b64("o1")+`"}]},
	  {"id": "`+billingID+`", "versions": [{"material": "`+b64("b1")+`"}]},
	  {"id": "`+pendingID+`", "versions": [{"material": "`+b64("p1")+`"}]}]}`)
	// The fuzzing engine runs this setup in each of its processes, and the
	// seeds of one go to the others: all must make the same keys and blobs.
	e.cfg.Random = rand.NewChaCha8([32]byte{'k', 'm', 's'})
	k := e.open()
	if err := k.Rotate(kms.DefaultAlias); err != nil {
		f.Fatal(err)
	}
	deks := make(map[string][]byte) // by blob
	for _, keyID := range []string{kms.DefaultAlias, ordersID, billingID, pendingID} {
		dek, w := mustGenerate(f, k, keyID)
		deks[string(w)] = dek
		f.Add(w)
		for _, n := range []int{0, 2, 3, 19, 23, 35, 82} {
			f.Add(w[:n])
		}
		v1 := bytes.Clone(w)
		binary.LittleEndian.PutUint32(v1[19:], 1) // another version
		f.Add(v1)
	}
	e.writeKeys(`{"keys": [
	  {"id": "` + ordersID + `", "versions": [{"material": "` + b64("o1") + `"}]},
	  {"id": "` + billingID + `", "state": "Disabled", "versions": [{"material": "` + b64("b1") + `"}]},
	  {"id": "` + pendingID + `", "state": "PendingDeletion", "versions": [{"material": "` + b64("p1") + `"}]}]}`)
	if err := k.Reload(); err != nil {
		f.Fatal(err)
	}
	keys := make(map[string]kms.Key)
	for _, id := range []string{kms.DefaultAlias, ordersID, billingID, pendingID} {
		key, _ := k.Resolve(id)
		keys[key.ID] = key
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		dek, err := k.Unwrap(b)
		want := expectedUnwrap(b, keys)
		if err == nil {
			if d, ok := deks[string(b)]; !ok || !bytes.Equal(d, dek) || want != nil {
				t.Fatalf("Unwrap(%x) returned a data key (made here: %v; expected error %v)", b, ok, want)
			}
			return
		}
		if dek != nil {
			t.Fatalf("Unwrap(%x) returned bytes and the error %v", b, err)
		}
		if want == nil { // only the tag can fail, and a genuine blob's does not
			if _, made := deks[string(b)]; made {
				t.Fatalf("Unwrap of a blob made here, of an enabled key: %v", err)
			}
			want = kms.ErrCorrupt
		}
		if !errors.Is(err, want) {
			t.Fatalf("Unwrap(%x) = %v, want %v", b, err, want)
		}
	})
}

// expectedUnwrap is what the format documentation says Unwrap of b gives:
// nil if it may succeed (then only the tag decides).
func expectedUnwrap(b []byte, keys map[string]kms.Key) error {
	if len(b) != blobLen || string(b[:3]) != "SK\x01" {
		return kms.ErrCorrupt
	}
	h := hex.EncodeToString(b[3:19])
	key, ok := keys[h[:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:]]
	switch ver := binary.LittleEndian.Uint32(b[19:]); {
	case !ok || ver < 1 || uint64(ver) > uint64(key.Versions):
		return kms.ErrNotFound
	case key.State == kms.StateDisabled:
		return kms.ErrDisabled
	case key.State == kms.StatePendingDeletion:
		return kms.ErrInvalidState
	}
	return nil
}
