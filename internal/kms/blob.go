package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// The wrapped data key format (doc.go, "Wrapped data keys").
const (
	blobMagic   = "SK"
	blobFormat  = 1
	idOff       = 3                                // after magic and format
	versionOff  = idOff + 16                       // u32 little-endian key version, 1-based
	nonceOff    = versionOff + 4                   // 12-byte GCM nonce; [0, nonceOff) is the associated data
	headerLen   = nonceOff + nonceLen              // 35: where the ciphertext starts
	blobLen     = headerLen + DataKeySize + tagLen // 83
	nonceLen    = 12
	tagLen      = 16
	kekInfoText = "shoal kms key-encryption key v1"
)

// DataKeySize is the length of a data key: an AES-256 key.
const DataKeySize = 32

// WrappedKey is what a wrapped data key says about itself; ParseWrapped reads
// it without unwrapping anything.
type WrappedKey struct {
	KeyID   string // the master key's id (a UUID)
	Version int    // the master key version that wrapped it, from 1
}

// ParseWrapped reads the header of a wrapped data key. It checks the format
// only, not the key (see [Keyring.Unwrap]); errors wrap [ErrCorrupt].
func ParseWrapped(wrapped []byte) (WrappedKey, error) {
	id, ver, err := parseBlob(wrapped)
	if err != nil {
		return WrappedKey{}, err
	}
	return WrappedKey{KeyID: formatUUID(id), Version: int(ver)}, nil
}

// parseBlob checks the framing of a wrapped key and returns the master key
// id and version it names.
func parseBlob(b []byte) (id [16]byte, version uint32, err error) {
	switch {
	case len(b) < idOff:
		return id, 0, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	case string(b[:2]) != blobMagic:
		return id, 0, fmt.Errorf("%w: not a wrapped data key (bad magic)", ErrCorrupt)
	case b[2] != blobFormat:
		return id, 0, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, b[2])
	case len(b) != blobLen:
		return id, 0, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(b), blobLen)
	}
	copy(id[:], b[idOff:versionOff])
	return id, binary.LittleEndian.Uint32(b[versionOff:nonceOff]), nil
}

// seal wraps dek under version ver (1-based) of k with the given nonce.
func seal(k *key, ver uint32, dek, nonce []byte) ([]byte, error) {
	aead, err := newAEAD(&k.versions[ver-1].kek)
	if err != nil {
		return nil, err
	}
	b := make([]byte, headerLen, blobLen)
	copy(b, blobMagic)
	b[2] = blobFormat
	copy(b[idOff:], k.id[:])
	binary.LittleEndian.PutUint32(b[versionOff:], ver)
	copy(b[nonceOff:], nonce)
	return aead.Seal(b, b[nonceOff:headerLen], dek, b[:nonceOff]), nil
}

// open unwraps b, whose header parseBlob accepted, with version ver of k.
func open(k *key, ver uint32, b []byte) ([]byte, error) {
	aead, err := newAEAD(&k.versions[ver-1].kek)
	if err != nil {
		return nil, err
	}
	dek, err := aead.Open(make([]byte, 0, DataKeySize), b[nonceOff:headerLen], b[headerLen:], b[:nonceOff])
	if err != nil {
		// Either the blob was changed after sealing or the material of this
		// key version is not the material that sealed it.
		return nil, fmt.Errorf("%w: authentication failed under key %s version %d", ErrCorrupt, k.idStr, ver)
	}
	return dek, nil
}

// newAEAD builds AES-256-GCM for one call. Building it costs a key expansion
// (tens of nanoseconds); crypto/cipher does not promise that an AEAD may be
// shared between goroutines, and wrapping is far from any hot path.
func newAEAD(kek *[32]byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// deriveKEK returns the key-encryption key of one version of a master key:
// HKDF-SHA256 of the material, with the key id and version in the info, so
// that the material itself never keys a cipher and the same material under
// two ids or versions gives unrelated keys.
func deriveKEK(material *[32]byte, id [16]byte, ver uint32) ([32]byte, error) {
	var kek [32]byte
	info := make([]byte, 0, len(kekInfoText)+len(id)+4)
	info = append(info, kekInfoText...)
	info = append(info, id[:]...)
	info = binary.LittleEndian.AppendUint32(info, ver)
	b, err := hkdf.Key(sha256.New, material[:], nil, string(info), len(kek))
	if err != nil {
		return kek, err
	}
	copy(kek[:], b)
	return kek, nil
}
