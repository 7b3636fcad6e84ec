package kms

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors. Each is returned wrapped with the key or blob concerned; match
// with errors.Is. The server answers the first three with the AWS error
// named beside them.
var (
	// ErrNotFound: no key answers to the KeyId, or a wrapped key names a key
	// or key version the keyring does not hold (KMSNotFoundException).
	ErrNotFound = errors.New("kms: key not found")
	// ErrDisabled: the key is disabled (KMSDisabledException).
	ErrDisabled = errors.New("kms: key is disabled")
	// ErrInvalidState: the key's state forbids the operation, as for a key
	// pending deletion (KMSInvalidStateException).
	ErrInvalidState = errors.New("kms: key state does not allow the operation")
	// ErrCorrupt: a wrapped key is not one, is damaged, or was not wrapped by
	// the material this keyring holds for the key version it names.
	ErrCorrupt = errors.New("kms: corrupt wrapped key")
	// ErrReadOnly: Rotate or SetEnabled on a key of the keys file, which the
	// file alone defines (edit it and Reload).
	ErrReadOnly = errors.New("kms: key is defined by the keys file")
)

// DefaultAlias names the Kinesis-owned key, the one StartStreamEncryption
// takes when no key of the customer's own is wanted.
const DefaultAlias = "alias/aws/kinesis"

// KeyState is a key's state, named as AWS KMS names it.
type KeyState string

// The key states. Only an Enabled key wraps and unwraps.
const (
	StateEnabled         KeyState = "Enabled"
	StateDisabled        KeyState = "Disabled"
	StatePendingDeletion KeyState = "PendingDeletion"
)

func (s KeyState) valid() bool {
	return s == StateEnabled || s == StateDisabled || s == StatePendingDeletion
}

// Key describes a master key. It holds no key material.
type Key struct {
	ID        string   // the key id, a lowercase UUID
	ARN       string   // arn:aws:kms:<region>:<account>:key/<ID>
	Aliases   []string // alias names, as alias/orders
	State     KeyState
	Versions  int  // key versions; GenerateDataKey wraps under the newest, Versions
	Generated bool // the default key generated in Config.Dir (Rotate and SetEnabled apply)
}

// Enabled reports whether the key may wrap and unwrap data keys.
func (k Key) Enabled() bool { return k.State == StateEnabled }

// Config configures a Keyring. The zero value is not enough: Dir is
// required.
type Config struct {
	// KeysFile is the --kms-keys file (package doc, "Keys file"); "" for
	// none, leaving only the generated default key.
	KeysFile string
	// Dir holds the generated default key: the server's data dir + "/kms".
	// Open creates it with mode 0700.
	Dir string
	// Region and AccountID make the keys' ARNs,
	// arn:aws:kms:<Region>:<AccountID>:key/<id>; a KeyId ARN of another
	// region or account names no key here. Defaults: us-east-1 and
	// 000000000000, the server's.
	Region, AccountID string
	// Now stamps the generated key's versions (information for the
	// operator). Default time.Now.
	Now func() time.Time
	// Random supplies key material, data keys and nonces. Default
	// crypto/rand; another reader is serialised by the keyring, and must be
	// a CSPRNG outside tests.
	Random io.Reader
}

var (
	regionRE  = regexp.MustCompile(`^[a-z0-9-]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// Keyring holds the master keys. It is safe for concurrent use; see the
// package doc, "Concurrency".
type Keyring struct {
	cfg       Config
	arnPrefix string // arn:aws:kms:<region>:<account>:
	rnd       io.Reader

	mu  sync.Mutex // serialises Rotate, SetEnabled and Reload, across their I/O
	cur atomic.Pointer[snapshot]
}

// Open loads the keyring: the generated default key from cfg.Dir (creating
// it on the first Open) and the keys of cfg.KeysFile.
func Open(cfg Config) (*Keyring, error) {
	if cfg.Dir == "" {
		return nil, errors.New("kms: Config.Dir is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if !regionRE.MatchString(cfg.Region) || !accountRE.MatchString(cfg.AccountID) {
		return nil, fmt.Errorf("kms: region %q or account %q is malformed", cfg.Region, cfg.AccountID)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Keyring{cfg: cfg, arnPrefix: "arn:aws:kms:" + cfg.Region + ":" + cfg.AccountID + ":", rnd: rand.Reader}
	if cfg.Random != nil {
		r.rnd = &lockedReader{r: cfg.Random}
	}
	specs, err := r.readKeysFile() // first: a bad file leaves no trace
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	if err := prepareDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	gen, err := loadOrCreateDefault(cfg.Dir, r.arnPrefix, r.rnd, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	s, err := newSnapshot(gen, specs, r.arnPrefix)
	if err != nil {
		return nil, fmt.Errorf("kms: keys file %s: %w", cfg.KeysFile, err)
	}
	r.cur.Store(s)
	return r, nil
}

// readKeysFile reads and parses Config.KeysFile; materialFile names are
// relative to the file's directory.
func (r *Keyring) readKeysFile() ([]keySpec, error) {
	if r.cfg.KeysFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(r.cfg.KeysFile)
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(r.cfg.KeysFile)
	specs, err := parseKeysFile(data, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(base, name)
		}
		return os.ReadFile(name)
	})
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", r.cfg.KeysFile, err)
	}
	return specs, nil
}

// Resolve finds the key a KeyId names. keyID may be a key id (UUID), a key
// ARN, an alias name (alias/orders, DefaultAlias) or an alias ARN. ARNs of
// another partition, region or account name no key here. Errors wrap
// ErrNotFound; for a key that is not Enabled, Resolve returns the Key and an
// error wrapping ErrDisabled or ErrInvalidState (StartStreamEncryption
// refuses such keys, as AWS does).
//
// Key.ARN is the canonical form; AWS shows the KeyId as given in
// DescribeStream, so the caller keeps the string it was given.
func (r *Keyring) Resolve(keyID string) (Key, error) {
	k, err := r.cur.Load().lookup(keyID, r.arnPrefix)
	if err != nil {
		return Key{}, err
	}
	return k.public(), k.usable()
}

// GenerateDataKey returns a fresh data key (DataKeySize random bytes) and
// the same key wrapped under the newest version of the key keyID names.
// Store wrapped; give it to Unwrap to get plaintext back. Errors wrap
// ErrNotFound, ErrDisabled or ErrInvalidState, or are the random source's.
func (r *Keyring) GenerateDataKey(keyID string) (plaintext, wrapped []byte, err error) {
	k, err := r.cur.Load().lookup(keyID, r.arnPrefix)
	if err != nil {
		return nil, nil, err
	}
	if err := k.usable(); err != nil {
		return nil, nil, err
	}
	buf := make([]byte, DataKeySize+nonceLen)
	if _, err := io.ReadFull(r.rnd, buf); err != nil {
		return nil, nil, fmt.Errorf("kms: generate data key: %w", err)
	}
	dek, nonce := buf[:DataKeySize:DataKeySize], buf[DataKeySize:]
	wrapped, err = seal(k, uint32(len(k.versions)), dek, nonce)
	if err != nil {
		return nil, nil, err
	}
	return dek, wrapped, nil
}

// Unwrap returns the data key in a blob GenerateDataKey made. Errors wrap
// ErrCorrupt (not a wrapped key, damaged, or wrapped by other material),
// ErrNotFound (its key or key version is not in the keyring), ErrDisabled
// or ErrInvalidState (its key's state); no other plaintext is ever
// returned.
func (r *Keyring) Unwrap(wrapped []byte) ([]byte, error) {
	id, ver, err := parseBlob(wrapped)
	if err != nil {
		return nil, err
	}
	k := r.cur.Load().byID[id]
	if k == nil {
		return nil, fmt.Errorf("%w: key %s", ErrNotFound, formatUUID(id))
	}
	if ver == 0 || uint64(ver) > uint64(len(k.versions)) {
		return nil, fmt.Errorf("%w: key %s has no version %d", ErrNotFound, k.idStr, ver)
	}
	if err := k.usable(); err != nil {
		return nil, err
	}
	return open(k, ver, wrapped)
}

// Rotate adds a version with fresh material to the generated key and
// writes it to Config.Dir; later wraps use it, and what older versions
// wrapped still unwraps. A key of the keys file gets a version from the
// file: add a versions entry there and Reload (Rotate returns ErrReadOnly).
// A key that is not Enabled is refused (ErrDisabled, ErrInvalidState).
func (r *Keyring) Rotate(keyID string) error {
	return r.update(keyID, func(k *key) (bool, error) {
		if err := k.usable(); err != nil {
			return false, err
		}
		v, err := newVersion(k, r.rnd, r.cfg.Now())
		if err != nil {
			return false, fmt.Errorf("kms: rotate: %w", err)
		}
		k.versions = append(slices.Clip(k.versions), v)
		return true, nil
	})
}

// SetEnabled enables or disables the generated key and writes its state to
// Config.Dir. A disabled key neither wraps nor unwraps (ErrDisabled) until
// enabled again; nothing is lost. A key of the keys file takes its state
// from the file (SetEnabled returns ErrReadOnly).
func (r *Keyring) SetEnabled(keyID string, enabled bool) error {
	return r.update(keyID, func(k *key) (bool, error) {
		want := StateDisabled
		if enabled {
			want = StateEnabled
		}
		changed := k.state != want
		k.state = want
		return changed, nil
	})
}

// update applies change to a copy of the generated key keyID names and, if
// change reports a change, writes the copy to Config.Dir and publishes it.
func (r *Keyring) update(keyID string, change func(k *key) (bool, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.cur.Load()
	k, err := s.lookup(keyID, r.arnPrefix)
	if err != nil {
		return err
	}
	if !k.generated {
		return fmt.Errorf("%w: %s (edit %s and reload)", ErrReadOnly, k.arn, r.cfg.KeysFile)
	}
	n := *k
	changed, err := change(&n)
	if err != nil || !changed {
		return err
	}
	if err := saveDefault(r.cfg.Dir, &n); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	r.cur.Store(s.withGen(&n))
	return nil
}

// Reload reads Config.KeysFile again (on SIGHUP) and, if it is valid,
// replaces the file's keys with it. The generated key is kept. A file that
// does not parse or validate, or that would strand wrapped keys (see the
// package doc), leaves the keyring as it was and the error says why; it
// never contains key material. Without a KeysFile, Reload does nothing.
func (r *Keyring) Reload() error {
	if r.cfg.KeysFile == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	specs, err := r.readKeysFile()
	var next *snapshot
	if err == nil {
		next, err = newSnapshot(old.gen, specs, r.arnPrefix)
	}
	if err == nil {
		err = checkReload(old, next)
	}
	if err != nil {
		return fmt.Errorf("kms: reload %s (the keyring is unchanged): %w", r.cfg.KeysFile, err)
	}
	r.cur.Store(next)
	return nil
}

// lockedReader serialises reads of a reader that may not be safe for
// concurrent use (an injected Config.Random).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
