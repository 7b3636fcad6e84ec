package server

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

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
//	version (1 byte, 1) | key index (uvarint) | salt (16 bytes) |
//	counter (4 bytes) | AES-256-GCM(uvarint(len(pk)) | pk | data)
//
// The AES key is derived for each sealing call (a PutRecord, or a
// PutRecords batch for one shard) from the shard's data key and a fresh
// random salt with HKDF-SHA256, and the GCM nonce is the salt-scoped
// counter: nonces never repeat under a key, however many records a shard
// takes (one data key with random 96-bit nonces would be safe only up to
// about 2^32 records). The associated data is "shoal/record/1", the
// stream's id, the shard's index and the key index, so that a ciphertext
// moved to another shard, stream or key fails to open. AES-256-GCM (the
// standard library, with the CPU's AES instructions) rather than
// XChaCha20-Poly1305, which needs no derivation but ran at a third of the
// speed here (BenchmarkSealOpen).

const (
	envelopeVersion = 1
	recordAADPrefix = "shoal/record/1"
	sealedPK        = "\xff"
	saltLen         = 16
	counterLen      = 4
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
	key, err := s.openKey(k.keys[k.seal])
	if err != nil {
		return nil, true, err
	}
	defer clear(key)
	aad := recordAAD(st, sh, k.seal)
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, true, fmt.Errorf("record salt: %w", err)
	}
	aead, err := deriveRecordKey(key, salt[:])
	if err != nil {
		return nil, true, err
	}
	// One allocation for every record's envelope; each record is sealed in
	// place.
	var hdr [1 + binary.MaxVarintLen64 + saltLen]byte
	hdr[0] = envelopeVersion
	hdrLen := 1 + binary.PutUvarint(hdr[1:], uint64(k.seal))
	hdrLen += copy(hdr[hdrLen:], salt[:])
	size := 0
	for _, r := range recs {
		size += hdrLen + counterLen + binary.MaxVarintLen64 + len(r.PartitionKey) + len(r.Data) + aead.Overhead()
	}
	arena := make([]byte, 0, size)
	var nonce [12]byte
	out := make([]engine.Record, len(recs))
	for i, r := range recs {
		start := len(arena)
		arena = append(arena, hdr[:hdrLen]...)
		arena = binary.BigEndian.AppendUint32(arena, uint32(i))
		binary.BigEndian.PutUint32(nonce[8:], uint32(i))
		body := len(arena)
		arena = binary.AppendUvarint(arena, uint64(len(r.PartitionKey)))
		arena = append(arena, r.PartitionKey...)
		arena = append(arena, r.Data...)
		sealed := aead.Seal(arena[body:body], nonce[:], arena[body:], aad)
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
	var (
		enc   []bool
		keys  map[uint64][]byte // unwrapped data keys by index
		arena []byte            // every plaintext, one allocation
		// The AEAD of the last salt: a batch's records share it.
		lastIdx  uint64
		lastSalt []byte
		aead     cipher.AEAD
		aad      []byte
		nonce    = make([]byte, 12) // one allocation: it escapes into the AEAD
	)
	defer func() {
		for _, k := range keys {
			clear(k)
		}
	}()
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
		hdr := 1 + n + saltLen + counterLen
		if n <= 0 || len(e.Data) < hdr {
			return nil, fmt.Errorf("%s/%s at %s: %w: short header", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		salt := e.Data[1+n : 1+n+saltLen]
		if aead == nil || idx != lastIdx || !bytes.Equal(salt, lastSalt) {
			key, ok := keys[idx]
			if !ok {
				all := sh.keysOf().keys
				if idx >= uint64(len(all)) {
					return nil, fmt.Errorf("%s/%s at %s: %w: no data key %d", st.name, sh.id, e.Pos, errCorruptRecord, idx)
				}
				k, err := s.openKey(all[idx])
				if err != nil {
					return nil, err
				}
				if keys == nil {
					keys = map[uint64][]byte{}
				}
				keys[idx], key = k, k
			}
			a, err := deriveRecordKey(key, salt)
			if err != nil {
				return nil, err
			}
			aead, lastIdx, lastSalt, aad = a, idx, salt, recordAAD(st, sh, int(idx))
		}
		copy(nonce[8:], e.Data[1+n+saltLen:hdr])
		plain, err := aead.Open(arena[len(arena):], nonce, e.Data[hdr:], aad)
		if err != nil {
			return nil, fmt.Errorf("%s/%s at %s: %w", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		arena = arena[:len(arena)+len(plain)]
		pkLen, m := binary.Uvarint(plain)
		if m <= 0 || uint64(len(plain)-m) < pkLen {
			return nil, fmt.Errorf("%s/%s at %s: %w: bad plaintext", st.name, sh.id, e.Pos, errCorruptRecord)
		}
		e.PartitionKey = string(plain[m : m+int(pkLen)])
		e.Data = plain[m+int(pkLen):]
	}
	return enc, nil
}

// openKey unwraps a data key with the key service, which refuses when its
// master key is disabled or gone. The caller clears the key when done.
func (s *Server) openKey(d dataKey) ([]byte, error) {
	keys, err := s.keyring()
	if err != nil {
		return nil, err
	}
	key, err := keys.Unwrap(d.wrapped)
	if err != nil {
		return nil, kmsError(err)
	}
	return key, nil
}

// deriveRecordKey returns the AES-256-GCM AEAD of the records sealed with
// salt under data key key.
func deriveRecordKey(key, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, salt, recordAADPrefix, 32)
	if err != nil {
		return nil, fmt.Errorf("derive a record key: %w", err)
	}
	block, err := aes.NewCipher(k)
	clear(k)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	return cipher.NewGCM(block)
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
