// Package kms is shoal's local key service: a keyring of master keys (AWS
// KMS's "customer master keys") that wraps and unwraps data keys, for
// server-side stream encryption (StartStreamEncryption with a KeyId).
//
// # Envelope encryption
//
// Records are encrypted with data keys; data keys are encrypted ("wrapped")
// with master keys. The server resolves the KeyId given to
// StartStreamEncryption with [Keyring.Resolve], asks
// [Keyring.GenerateDataKey] for a fresh data key when it starts writing
// encrypted records to a shard log, keeps the wrapped key in its catalog,
// and calls [Keyring.Unwrap] when it opens the log again. Master key
// material never leaves the keyring, and nothing the keyring returns holds
// it.
//
// Each master key has one or more versions of 32 bytes of material. A
// version's key-encryption key (KEK) is HKDF-SHA256 of its material with
// info "shoal kms key-encryption key v1" || key id (16 bytes) || version
// (u32 little-endian): the material never keys a cipher itself, and the same
// material given to two keys or versions gives unrelated KEKs. Data keys are
// 32 random bytes, wrapped with AES-256-GCM under the KEK of the key's
// newest version with a random 96-bit nonce. [Keyring.Rotate] (or a new
// version in the keys file) adds a version: later wraps use it, and what
// older versions wrapped still unwraps, since a wrapped key names its
// version.
//
// # Cipher
//
// AES-256-GCM from the standard library: no new dependency, hardware AES
// and carry-less multiply on amd64 and arm64, and what AWS KMS and TiKV use
// to wrap data keys. GCM's weak spot, nonce reuse, is out of reach here: a
// KEK seals one 32-byte data key per GenerateDataKey, about once per shard
// log, so random 96-bit nonces stay far below the 2^32 seals per key NIST
// SP 800-38D allows with them, and each rotation starts a new KEK.
// XChaCha20-Poly1305 (golang.org/x/crypto) would lift that bound further,
// at the price of a dependency the wrapping rate does not need.
//
// Nonces come from Config.Random, like everything random here, so tests can
// replay a keyring. Go's FIPS 140-only mode (GODEBUG=fips140=only) allows
// GCM only with nonces it draws itself (cipher.NewGCMWithRandomNonce), and
// there GenerateDataKey and Unwrap fail. The format is laid out so that
// switching to it changes no byte: the nonce follows the authenticated
// header, which it is not part of (GCM authenticates its nonce anyway).
//
// # Wrapped data keys
//
// A wrapped key is 83 bytes; integers are little-endian:
//
//	offset size field
//	     0    2 magic "SK" (0x53 0x4B)
//	     2    1 format version (1)
//	     3   16 master key id (the UUID's 16 bytes)
//	    19    4 key version: u32, from 1
//	    23   12 nonce
//	    35   48 AES-256-GCM(KEK, nonce, data key) with its 16-byte tag;
//	            the associated data is bytes [0, 23)
//
// The header is authenticated, so a wrapped key cannot be moved to another
// key or version. [Keyring.Unwrap] checks the framing (else [ErrCorrupt]),
// looks up the key and version ([ErrNotFound]), the key's state
// ([ErrDisabled], [ErrInvalidState]) and then the tag ([ErrCorrupt]): it
// returns the data key or an error, never other bytes, and never panics.
// [ParseWrapped] reads the header alone.
//
// # Keys
//
// The default key, [DefaultAlias] (alias/aws/kinesis), is generated on the
// first [Open] into Config.Dir/default-key.json (mode 0600, in a 0700
// directory) and read from there afterwards: a restart must unwrap what was
// wrapped before, so a damaged file is an error, never replaced, and a file
// or directory others may access is refused. [Keyring.Rotate] and
// [Keyring.SetEnabled] change it and rewrite the file atomically (temporary
// file, fsync, rename, fsync of the directory).
//
// Config.KeysFile (--kms-keys) adds keys of the customer's own:
//
//	{"keys": [
//	  {"id": "6f0b2a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "aliases": ["alias/orders"],
//	   "state": "Enabled",
//	   "versions": [{"material": "<base64 of 32 bytes>"},
//	                {"materialFile": "/etc/shoal/orders-v2.key"}]}
//	]}
//
// The members of a key:
//
//   - id: a lowercase UUID, unique, not the generated key's;
//   - aliases: optional; alias/ then up to 250 of A-Z a-z 0-9 / _ -, unique
//     in the file; alias/aws/... is reserved, except that a file key may take
//     alias/aws/kinesis, and then it is the default key (the generated key
//     remains, by id, for what it wrapped);
//   - state: Enabled (the default), Disabled or PendingDeletion, AWS KMS's
//     names. One field rather than an "enabled" flag, as a key pending
//     deletion is neither;
//   - versions: at least one, oldest first; each gives material (standard
//     base64 of 32 bytes) or materialFile (32 raw bytes, or their base64;
//     a relative name is relative to the keys file's directory). No two
//     versions anywhere may share material.
//
// The file owns its keys: Rotate and SetEnabled refuse them ([ErrReadOnly]).
// To rotate one, append a version and call [Keyring.Reload] (the server
// does on SIGHUP); to disable one, set its state and reload. Reload keeps
// the keyring as it was, and says why, if the file does not parse or
// validate, or if it would strand wrapped keys: a key may leave the file
// only after a reload saw it PendingDeletion, and versions may be added but
// not removed, reordered or changed. Unknown or duplicate members are
// refused with their path, as `keys[0].versions[1]: unknown field "key"`.
// No error contains key material, or depends on it beyond its length.
//
// # Concurrency
//
// All methods are safe for concurrent use. The keyring's state is an
// immutable snapshot behind an atomic pointer: Resolve, GenerateDataKey and
// Unwrap load it and take no lock. Rotate, SetEnabled and Reload hold
// Keyring.mu, the one mutex, while they build a new snapshot, write the
// default key's file or read the keys file, and publish the snapshot; a
// call that returns has published, so a GenerateDataKey or Unwrap that
// starts after SetEnabled(false) returns sees the key disabled. An injected
// Config.Random is read under a mutex of its own (a leaf); crypto/rand needs
// none.
package kms
