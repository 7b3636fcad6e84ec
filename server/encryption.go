package server

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/kms"
)

// Server-side encryption at rest (StartStreamEncryption). Encryption sits at
// the storage seam, so every engine stores only ciphertext: the server
// encrypts each record of an encrypted stream before Append and decrypts it
// after Read.
//
// Keys: each shard log has its own data keys (a new one each time
// encryption starts or changes key, and for every shard a reshard of an
// encrypted stream creates), made by the key service (internal/kms) and
// kept only wrapped by the stream's master key, in the shard's catalog
// record (ShardMeta.DataKeys). A data key is unwrapped for each call that
// uses it, so disabling the master key stops reads and writes of the
// stream at once, and enabling it again resumes them with nothing lost.
//
// Records: an encrypted record is stored as an engine record whose
// partition key is sealedPK, the one byte 0xff, which no request can carry
// (partition keys are UTF-8 text: the JSON and CBOR decoders refuse invalid
// UTF-8), so plaintext records are told apart without a flag, and whose
// data is
//
//	version (1 byte, 1) | key index (uvarint) | nonce (24 bytes) |
//	XChaCha20-Poly1305(uvarint(len(pk)) | pk | data)
//
// with the associated data "shoal/record/1", the stream's id, the shard's
// index and the key index, so that a ciphertext moved to another shard,
// stream or key fails to open. XChaCha20-Poly1305 (golang.org/x/crypto,
// already in the module graph) rather than AES-256-GCM: its 192-bit random
// nonces are safe for any number of records under one key, where GCM's
// 96-bit random nonces would bound a shard's lifetime to about 2^32 records.

const (
	envelopeVersion = 1
	recordAADPrefix = "shoal/record/1"
	sealedPK        = "\xff"
)

// dataKey is one wrapped data key of a shard.
type dataKey struct {
	wrapped []byte
}

// shardKeys is a shard's data keys, by index, and the one new records are
// encrypted with (seal < 0: records are written in plain text). Immutable;
// replaced whole under st.ctl and st.mu.
type shardKeys struct {
	keys []dataKey
	seal int
}

// keysOf returns the shard's keys (never nil).
func (sh *shard) keysOf() *shardKeys {
	if k := sh.keys.Load(); k != nil {
		return k
	}
	return &noKeys
}

var noKeys = shardKeys{seal: -1}

// withKey returns k plus wrapped as the key new records use.
func (k *shardKeys) withKey(wrapped []byte) *shardKeys {
	keys := append(append([]dataKey(nil), k.keys...), dataKey{wrapped: wrapped})
	return &shardKeys{keys: keys, seal: len(keys) - 1}
}

// plain returns k with new records written in plain text.
func (k *shardKeys) plain() *shardKeys {
	return &shardKeys{keys: k.keys, seal: -1}
}

// metaKeys is k's catalog form.
func (k *shardKeys) metaKeys() []engine.DataKey {
	if len(k.keys) == 0 {
		return nil
	}
	out := make([]engine.DataKey, len(k.keys))
	for i, d := range k.keys {
		out[i] = engine.DataKey{Wrapped: d.wrapped}
	}
	out[len(out)-1].Current = k.seal == len(k.keys)-1
	return out
}

// keysFromMeta builds a shard's keys from its catalog record.
func keysFromMeta(m []engine.DataKey) *shardKeys {
	k := &shardKeys{seal: -1}
	for i, d := range m {
		k.keys = append(k.keys, dataKey{wrapped: d.Wrapped})
		if d.Current {
			k.seal = i
		}
	}
	return k
}

// recordAAD is the associated data of a record sealed with key index idx
// in shard sh of st.
func recordAAD(st *stream, sh *shard, idx int) []byte {
	aad := make([]byte, 0, len(recordAADPrefix)+len(st.id)+4+binary.MaxVarintLen64)
	aad = append(aad, recordAADPrefix...)
	aad = append(aad, st.id...)
	aad = binary.BigEndian.AppendUint32(aad, sh.index)
	return binary.AppendUvarint(aad, uint64(idx))
}

// sealRecords encrypts recs for shard sh of st when the shard writes
// encrypted records, and reports whether it did. The records' memory is
// the caller's; the result is new.
func (s *Server) sealRecords(st *stream, sh *shard, recs []engine.Record) ([]engine.Record, bool, error) {
	k := sh.keysOf()
	if k.seal < 0 {
		return recs, false, nil
	}
	aead, err := s.openKey(k.keys[k.seal])
	if err != nil {
		return nil, true, err
	}
	aad := recordAAD(st, sh, k.seal)
	// One allocation for every record's envelope, one read of randomness
	// for every nonce; each record is sealed in place.
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = envelopeVersion
	hdrLen := 1 + binary.PutUvarint(hdr[1:], uint64(k.seal))
	size := 0
	for _, r := range recs {
		size += hdrLen + chacha20poly1305.NonceSizeX + binary.MaxVarintLen64 + len(r.PartitionKey) + len(r.Data) + aead.Overhead()
	}
	arena := make([]byte, 0, size)
	nonces := make([]byte, len(recs)*chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonces); err != nil {
		return nil, true, fmt.Errorf("record nonces: %w", err)
	}
	out := make([]engine.Record, len(recs))
	for i, r := range recs {
		start := len(arena)
		arena = append(arena, hdr[:hdrLen]...)
		arena = append(arena, nonces[i*chacha20poly1305.NonceSizeX:(i+1)*chacha20poly1305.NonceSizeX]...)
		body := len(arena)
		arena = binary.AppendUvarint(arena, uint64(len(r.PartitionKey)))
		arena = append(arena, r.PartitionKey...)
		arena = append(arena, r.Data...)
		sealed := aead.Seal(arena[body:body], arena[body-chacha20poly1305.NonceSizeX:body], arena[body:], aad)
		arena = arena[:body+len(sealed)]
		out[i] = engine.Record{PartitionKey: sealedPK, Data: arena[start:len(arena):len(arena)]}
	}
	return out, true, nil
}

// errCorruptRecord reports an encrypted record that does not open.
var errCorruptRecord = errors.New("encrypted record does not open")

// openEntries decrypts the encrypted entries of shard sh of st in place and
// reports, per entry, whether it was encrypted (nil when none was).
func (s *Server) openEntries(st *stream, sh *shard, entries []engine.Entry) ([]bool, error) {
	var enc []bool
	var aeads map[uint64]cipherAEAD
	var arena []byte // every plaintext, one allocation
	for i := range entries {
		e := &entries[i]
		if e.PartitionKey != sealedPK {
			continue
		}
		if enc == nil {
			enc = make([]bool, len(entries))
			size := 0
			for _, e := range entries[i:] {
				size += len(e.Data)
			}
			arena = make([]byte, 0, size)
		}
		enc[i] = true
		if len(e.Data) < 1 || e.Data[0] != envelopeVersion {
			return nil, fmt.Errorf("%s/%s at %s: %w: unknown version", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		idx, n := binary.Uvarint(e.Data[1:])
		if n <= 0 || len(e.Data) < 1+n+chacha20poly1305.NonceSizeX {
			return nil, fmt.Errorf("%s/%s at %s: %w: short header", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		aead, ok := aeads[idx]
		if !ok {
			keys := sh.keysOf().keys
			if idx >= uint64(len(keys)) {
				return nil, fmt.Errorf("%s/%s at %s: %w: no data key %d", st.name, sh.id, e.Pos, errCorruptRecord, idx)
			}
			a, err := s.openKey(keys[idx])
			if err != nil {
				return nil, err
			}
			if aeads == nil {
				aeads = map[uint64]cipherAEAD{}
			}
			aeads[idx], aead = a, a
		}
		nonce := e.Data[1+n : 1+n+chacha20poly1305.NonceSizeX]
		plain, err := aead.Open(arena[len(arena):], nonce, e.Data[1+n+chacha20poly1305.NonceSizeX:], recordAAD(st, sh, int(idx)))
		arena = arena[:len(arena)+len(plain)]
		if err != nil {
			return nil, fmt.Errorf("%s/%s at %s: %w", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		pkLen, m := binary.Uvarint(plain)
		if m <= 0 || uint64(len(plain)-m) < pkLen {
			return nil, fmt.Errorf("%s/%s at %s: %w: bad plaintext", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		e.PartitionKey = string(plain[m : m+int(pkLen)])
		e.Data = plain[m+int(pkLen):]
	}
	return enc, nil
}

// cipherAEAD is the AEAD of a data key.
type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	Overhead() int
}

// openKey unwraps a data key with the key service, which refuses when its
// master key is disabled or gone.
func (s *Server) openKey(d dataKey) (cipherAEAD, error) {
	keys, err := s.keyring()
	if err != nil {
		return nil, err
	}
	key, err := keys.Unwrap(d.wrapped)
	if err != nil {
		return nil, kmsError(err)
	}
	aead, err := chacha20poly1305.NewX(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return aead, nil
}

// kmsError maps a key service error to the KMS error Kinesis answers.
func kmsError(err error) error {
	switch {
	case errors.Is(err, kms.ErrNotFound):
		return ErrKMSNotFound.With("%s", err.Error())
	case errors.Is(err, kms.ErrDisabled):
		return ErrKMSDisabled.With("%s", err.Error())
	case errors.Is(err, kms.ErrInvalidState):
		return ErrKMSInvalidState.With("%s", err.Error())
	}
	return fmt.Errorf("key service: %w", err)
}

// encryptionType is the API's name of a record's or stream's encryption.
func encryptionType(encrypted bool) string {
	if encrypted {
		return encryptionKMS
	}
	return encryptionNone
}

const (
	encryptionKMS  = "KMS"
	encryptionNone = "NONE"
)

// asKMSError reports whether err is one of the KMS errors.
func asKMSError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) && (ae.Is(ErrKMSNotFound) || ae.Is(ErrKMSDisabled) || ae.Is(ErrKMSInvalidState) || ae.Is(ErrKMSAccessDenied)) {
		return ae, true
	}
	return nil, false
}

// encrypted reports whether new records of the stream are encrypted.
func (st *stream) encrypted() bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.encKeyID != ""
}

// ReloadKeys reads Config.KMSKeysFile again: keys added, rotated, enabled
// or disabled there take effect at once. A file that does not parse leaves
// the keys in force and returns why.
func (s *Server) ReloadKeys() error {
	keys := s.kms.Load()
	if s.cfg.KMSKeysFile == "" || keys == nil {
		return nil
	}
	if err := keys.Reload(); err != nil {
		return fmt.Errorf("reload %s (the keys in force stay): %w", s.cfg.KMSKeysFile, err)
	}
	s.log.Info("key service reloaded")
	return nil
}

// keyring returns the key service, opening it on first use: the server
// writes its default key into the data directory only once some stream is
// encrypted.
func (s *Server) keyring() (*kms.Keyring, error) {
	if k := s.kms.Load(); k != nil {
		return k, nil
	}
	s.kmsMu.Lock()
	defer s.kmsMu.Unlock()
	if k := s.kms.Load(); k != nil {
		return k, nil
	}
	if s.kmsDir == "" {
		return nil, ErrKMSNotFound.With("The server has no key service (it has no data directory for its keys).")
	}
	k, err := kms.Open(kms.Config{KeysFile: s.cfg.KMSKeysFile, Dir: s.kmsDir, Region: s.cfg.Region, AccountID: s.cfg.AccountID, Now: s.cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("key service: %w", err)
	}
	s.kms.Store(k)
	return k, nil
}
