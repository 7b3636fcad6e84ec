package kms

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/shoalstream/shoal/internal/strictjson"
)

// defaultKeyFile is the generated key's file in Config.Dir; temporary files
// for replacing it start with tmpPrefix.
const (
	defaultKeyFile = "default-key.json"
	tmpPrefix      = ".default-key.tmp-"
	defaultFormat  = 1
)

// defaultKeyJSON is the schema of the generated key's file.
type defaultKeyJSON struct {
	Format   int                  `json:"format"`
	ID       string               `json:"id"`
	State    string               `json:"state"`
	Versions []defaultVersionJSON `json:"versions"`
}

type defaultVersionJSON struct {
	Material  string `json:"material"`  // base64 of 32 bytes
	CreatedAt string `json:"createdAt"` // RFC 3339, for the operator
}

// prepareDir creates dir (0700) if need be, removes temporary files a crash
// left, and refuses a dir others may read or write.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := checkPrivate(dir); err != nil {
		return err
	}
	tmps, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if err != nil {
		return err
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil {
			return err
		}
	}
	return nil
}

// checkPrivate refuses a file or directory that group or others may use,
// as ssh does for private keys: fixing the mode silently would hide that the
// key may already have been read. Windows has no such mode bits.
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %#o: group and others must have no access (chmod go= %s)", path, fi.Mode().Perm(), path)
	}
	return nil
}

// loadOrCreateDefault reads the generated key from dir, or generates it and
// writes it there if there is none. A file that exists but does not parse
// is an error: generating a new key would lose everything the old one
// wrapped.
func loadOrCreateDefault(dir string, arnPrefix string, rnd io.Reader, now time.Time) (*key, error) {
	path := filepath.Join(dir, defaultKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var id [16]byte
		if _, err := io.ReadFull(rnd, id[:]); err != nil {
			return nil, fmt.Errorf("generate default key: %w", err)
		}
		id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, like AWS's key ids
		id[8] = id[8]&0x3f | 0x80
		k := &key{id: id, idStr: formatUUID(id), arn: arnPrefix + "key/" + formatUUID(id), state: StateEnabled, generated: true}
		v, err := newVersion(k, rnd, now)
		if err != nil {
			return nil, fmt.Errorf("generate default key: %w", err)
		}
		k.versions = []version{v}
		if err := saveDefault(dir, k); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	k, err := parseDefault(data, arnPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); it is not replaced, as a new key could not unwrap what this one wrapped: restore it from a backup", path, err)
	}
	return k, nil
}

// newVersion makes a version of k with fresh material: version number
// len(k.versions)+1.
func newVersion(k *key, rnd io.Reader, now time.Time) (version, error) {
	v := version{created: now.UTC().Format(time.RFC3339)}
	if _, err := io.ReadFull(rnd, v.material[:]); err != nil {
		return version{}, err
	}
	kek, err := deriveKEK(&v.material, k.id, uint32(len(k.versions)+1))
	if err != nil {
		return version{}, err
	}
	v.kek = kek
	return v, nil
}

// parseDefault parses the generated key's file. Its errors name no
// material.
func parseDefault(data []byte, arnPrefix string) (*key, error) {
	var f defaultKeyJSON
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, err
	}
	if f.Format != defaultFormat {
		return nil, fmt.Errorf("format: %d, want %d", f.Format, defaultFormat)
	}
	id, ok := parseUUID(f.ID)
	if !ok {
		return nil, errors.New("id: not a key id")
	}
	k := &key{id: id, idStr: f.ID, arn: arnPrefix + "key/" + f.ID, state: KeyState(f.State), generated: true}
	if k.state != StateEnabled && k.state != StateDisabled {
		return nil, errors.New("state: want Enabled or Disabled")
	}
	if len(f.Versions) == 0 {
		return nil, errors.New("versions: none")
	}
	for i, vj := range f.Versions {
		v := version{created: vj.CreatedAt}
		if n, err := decodeMaterial([]byte(vj.Material), &v.material); err != nil || n != len(v.material) {
			return nil, fmt.Errorf("versions[%d].material: not the base64 of %d bytes", i, len(v.material))
		}
		kek, err := deriveKEK(&v.material, id, uint32(i+1))
		if err != nil {
			return nil, err
		}
		v.kek = kek
		k.versions = append(k.versions, v)
	}
	return k, nil
}

// saveDefault writes k to dir atomically and durably: a temporary file
// (0600) is written and fsynced, renamed over the old one, and dir is
// fsynced. On error the old file is intact.
func saveDefault(dir string, k *key) error {
	f := defaultKeyJSON{Format: defaultFormat, ID: k.idStr, State: string(k.state)}
	for _, v := range k.versions {
		f.Versions = append(f.Versions, defaultVersionJSON{
			Material:  base64.StdEncoding.EncodeToString(v.material[:]),
			CreatedAt: v.created,
		})
	}
	data, err := json.Marshal(f, json.Deterministic(true))
	if err != nil {
		return err
	}
	path := filepath.Join(dir, defaultKeyFile)
	if err := writeFileSync(dir, path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileSync replaces path, in dir, with data.
func writeFileSync(dir, path string, data []byte) error {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync() // makes the rename durable
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
