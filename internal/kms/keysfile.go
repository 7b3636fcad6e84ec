package kms

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoalstream/shoal/internal/strictjson"
)

// keysFileJSON and the types below are the --kms-keys schema; decodeJSON
// rejects members they do not name.
type keysFileJSON struct {
	Keys []keyJSON `json:"keys"`
}

type keyJSON struct {
	ID       string        `json:"id"`
	Aliases  []string      `json:"aliases"`
	State    string        `json:"state"`
	Versions []versionJSON `json:"versions"`
}

type versionJSON struct {
	Material     string `json:"material"`
	MaterialFile string `json:"materialFile"`
}

// keySpec is one validated key of the keys file.
type keySpec struct {
	id        [16]byte
	aliases   []string
	state     KeyState
	materials [][32]byte // version i+1 is materials[i]
}

// maxAliasLen is AWS KMS's limit on an alias name, "alias/" included.
const maxAliasLen = 256

// parseKeysFile parses and validates a keys file. readFile reads a
// materialFile (the caller resolves relative names). No error names or
// depends on key material: material problems are reported by path and
// length only.
func parseKeysFile(data []byte, readFile func(name string) ([]byte, error)) ([]keySpec, error) {
	var f keysFileJSON
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, err
	}
	specs := make([]keySpec, 0, len(f.Keys))
	ids := make(map[[16]byte]int)
	aliases := make(map[string]string) // alias -> path where first given
	type seen struct {
		m    [32]byte
		path string
	}
	var materials []seen
	for i, kj := range f.Keys {
		path := "keys[" + strconv.Itoa(i) + "]"
		id, ok := parseUUID(kj.ID)
		switch {
		case kj.ID == "":
			return nil, errors.New(path + ".id: required")
		case !ok:
			// Not quoted: whatever is there is not an id, and could be a
			// secret in the wrong place.
			return nil, errors.New(path + ".id: not a key id (a lowercase UUID, 8-4-4-4-12 hex digits)")
		}
		if j, dup := ids[id]; dup {
			return nil, fmt.Errorf("%s.id: %s is also keys[%d].id", path, kj.ID, j)
		}
		ids[id] = i
		spec := keySpec{id: id, state: StateEnabled}
		if kj.State != "" {
			spec.state = KeyState(kj.State)
			if !spec.state.valid() {
				return nil, errors.New(path + ".state: want Enabled, Disabled or PendingDeletion")
			}
		}
		for j, a := range kj.Aliases {
			apath := path + ".aliases[" + strconv.Itoa(j) + "]"
			if err := checkAlias(a); err != nil {
				return nil, errors.New(apath + ": " + err.Error())
			}
			if first, dup := aliases[a]; dup {
				return nil, fmt.Errorf("%s: %s is also %s", apath, a, first)
			}
			aliases[a] = apath
			spec.aliases = append(spec.aliases, a)
		}
		if len(kj.Versions) == 0 {
			return nil, errors.New(path + ".versions: required, with at least one version")
		}
		for j, vj := range kj.Versions {
			vpath := path + ".versions[" + strconv.Itoa(j) + "]"
			m, err := versionMaterial(vj, readFile)
			if err != nil {
				return nil, errors.New(vpath + "." + err.Error())
			}
			for _, s := range materials {
				if subtle.ConstantTimeCompare(s.m[:], m[:]) == 1 {
					return nil, fmt.Errorf("%s: the same key material as %s", vpath, s.path)
				}
			}
			materials = append(materials, seen{m, vpath})
			spec.materials = append(spec.materials, m)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// versionMaterial returns the material of one version. Its errors start
// with the member's name.
func versionMaterial(vj versionJSON, readFile func(string) ([]byte, error)) ([32]byte, error) {
	var m [32]byte
	switch {
	case vj.Material != "" && vj.MaterialFile != "":
		return m, errors.New("material: give material or materialFile, not both")
	case vj.Material != "":
		n, err := decodeMaterial([]byte(vj.Material), &m)
		if err != nil {
			return m, errors.New("material: not standard base64")
		}
		if n != len(m) {
			return m, fmt.Errorf("material: %d bytes, want %d (base64, 44 characters)", n, len(m))
		}
		return m, nil
	case vj.MaterialFile != "":
		data, err := readFile(vj.MaterialFile)
		if err != nil {
			return m, fmt.Errorf("materialFile: %v", err)
		}
		if len(data) == len(m) { // the raw bytes
			copy(m[:], data)
			return m, nil
		}
		if n, err := decodeMaterial(bytes.TrimSpace(data), &m); err != nil || n != len(m) {
			return m, fmt.Errorf("materialFile: %s holds %d bytes: want %d raw bytes or their base64", vj.MaterialFile, len(data), len(m))
		}
		return m, nil
	}
	return m, errors.New("material: required (or materialFile)")
}

// decodeMaterial decodes strict standard base64 into m, returning the
// decoded length (which may exceed len(m): only the length is kept then).
func decodeMaterial(text []byte, m *[32]byte) (int, error) {
	enc := base64.StdEncoding.Strict()
	buf := make([]byte, enc.DecodedLen(len(text)))
	n, err := enc.Decode(buf, text)
	if err != nil {
		return 0, err
	}
	copy(m[:], buf[:n])
	clear(buf)
	return n, nil
}

// checkAlias validates an alias name of the keys file.
func checkAlias(a string) error {
	name, ok := strings.CutPrefix(a, "alias/")
	if !ok || name == "" || len(a) > maxAliasLen || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-") != "" {
		return fmt.Errorf("not an alias name (alias/ and up to %d of A-Z a-z 0-9 / _ -)", maxAliasLen-len("alias/"))
	}
	if strings.HasPrefix(a, "alias/aws/") && a != DefaultAlias {
		return fmt.Errorf("%s: alias/aws/ is reserved for AWS managed keys (of those, only %s may be given)", a, DefaultAlias)
	}
	return nil
}
