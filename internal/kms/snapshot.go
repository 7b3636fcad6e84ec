package kms

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// key is one master key. A key is immutable once in a published snapshot:
// Rotate and SetEnabled replace it with a changed copy.
type key struct {
	id        [16]byte
	idStr     string // canonical UUID
	arn       string
	aliases   []string
	state     KeyState
	versions  []version // version n (1-based) is versions[n-1]
	generated bool      // the key generated in Config.Dir, not a keys-file key
}

// version is one version of a master key.
type version struct {
	material [32]byte // kept for the generated key's file and reload checks
	kek      [32]byte // deriveKEK(material, id, n)
	created  string   // RFC 3339, generated key only
}

func (k *key) public() Key {
	return Key{
		ID:        k.idStr,
		ARN:       k.arn,
		Aliases:   slices.Clone(k.aliases),
		State:     k.state,
		Versions:  len(k.versions),
		Generated: k.generated,
	}
}

// usable returns nil if k may wrap and unwrap, else why not.
func (k *key) usable() error {
	switch k.state {
	case StateEnabled:
		return nil
	case StateDisabled:
		return fmt.Errorf("%w: %s", ErrDisabled, k.arn)
	}
	return fmt.Errorf("%w: %s is %s", ErrInvalidState, k.arn, k.state)
}

// snapshot is the keyring's state: immutable once published.
type snapshot struct {
	byID    map[[16]byte]*key
	byAlias map[string]*key
	gen     *key   // the generated key, also in byID
	file    []*key // the keys-file keys, in file order
}

// newSnapshot builds a keyring from the generated key and the keys file's
// keys. The generated key answers to DefaultAlias unless a file key claims
// it.
func newSnapshot(gen *key, specs []keySpec, arnPrefix string) (*snapshot, error) {
	s := &snapshot{byID: make(map[[16]byte]*key), byAlias: make(map[string]*key)}
	for _, sp := range specs {
		if sp.id == gen.id {
			return nil, fmt.Errorf("key %s: the id of the generated default key", formatUUID(sp.id))
		}
		k := &key{id: sp.id, idStr: formatUUID(sp.id), aliases: sp.aliases, state: sp.state}
		k.arn = arnPrefix + "key/" + k.idStr
		for i := range sp.materials {
			kek, err := deriveKEK(&sp.materials[i], sp.id, uint32(i+1))
			if err != nil {
				return nil, err
			}
			k.versions = append(k.versions, version{material: sp.materials[i], kek: kek})
		}
		s.byID[k.id] = k
		for _, a := range k.aliases {
			s.byAlias[a] = k
		}
		s.file = append(s.file, k)
	}
	g := *gen
	g.aliases = nil
	if s.byAlias[DefaultAlias] == nil {
		g.aliases = []string{DefaultAlias}
		s.byAlias[DefaultAlias] = &g
	}
	s.gen = &g
	s.byID[g.id] = &g
	return s, nil
}

// withGen returns a copy of s whose generated key is g.
func (s *snapshot) withGen(g *key) *snapshot {
	n := &snapshot{byID: maps.Clone(s.byID), byAlias: maps.Clone(s.byAlias), gen: g, file: s.file}
	n.byID[g.id] = g
	for _, a := range g.aliases {
		n.byAlias[a] = g
	}
	return n
}

// lookup finds the key a KeyId names: a key id, a key ARN, an alias name or
// an alias ARN. ARNs must be of the keyring's partition, region and account
// (arnPrefix).
func (s *snapshot) lookup(keyID, arnPrefix string) (*key, error) {
	var k *key
	switch {
	case strings.HasPrefix(keyID, "alias/"):
		k = s.byAlias[keyID]
	case strings.HasPrefix(keyID, "arn:"):
		res, ok := strings.CutPrefix(keyID, arnPrefix)
		if !ok {
			return nil, fmt.Errorf("%w: %s (keys here are %s...)", ErrNotFound, keyID, arnPrefix)
		}
		if strings.HasPrefix(res, "alias/") {
			k = s.byAlias[res]
		} else if id, ok := strings.CutPrefix(res, "key/"); ok {
			k = s.byUUID(id)
		}
	default:
		k = s.byUUID(keyID)
	}
	if k == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, keyID)
	}
	return k, nil
}

// byUUID finds a key by its id in text form.
func (s *snapshot) byUUID(str string) *key {
	id, ok := parseUUID(str)
	if !ok {
		return nil
	}
	return s.byID[id]
}

// checkReload refuses a reloaded keys file that would make wrapped keys
// unreadable by accident: a file key may leave the file only once it is
// PendingDeletion, and a key's versions may be added to but not removed or
// changed. (At Open there is nothing to compare with; Unwrap then reports
// ErrNotFound or ErrCorrupt for what is missing.)
func checkReload(old, next *snapshot) error {
	for _, was := range old.file {
		now := next.byID[was.id]
		if now == nil || now.generated {
			if was.state != StatePendingDeletion {
				return fmt.Errorf("key %s is gone from the file while %s: what it wrapped would no longer unwrap (make it PendingDeletion and reload first)", was.idStr, was.state)
			}
			continue
		}
		if len(now.versions) < len(was.versions) {
			return fmt.Errorf("key %s has %d versions, had %d: versions may only be added (what an old version wrapped needs it)", was.idStr, len(now.versions), len(was.versions))
		}
		for i := range was.versions {
			if subtle.ConstantTimeCompare(was.versions[i].material[:], now.versions[i].material[:]) != 1 {
				return fmt.Errorf("key %s version %d: the material changed (what it wrapped needs the old material; add a version instead)", was.idStr, i+1)
			}
		}
	}
	return nil
}

// parseUUID parses a lowercase 8-4-4-4-12 UUID.
func parseUUID(s string) (id [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' || strings.ToLower(s) != s {
		return id, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, false
	}
	return id, true
}

func formatUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
