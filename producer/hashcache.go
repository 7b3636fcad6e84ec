package producer

import (
	"hash/maphash"
	"math/rand/v2"
	"sync/atomic"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// hashCache remembers the hash keys (MD5) of recently put partition keys,
// so that an application that puts many records under a set of keys pays
// a string hash and a comparison per Put instead of an MD5. It is a
// two-way set-associative table of immutable entries, safe for concurrent
// use without a lock. A miss stores its entry only into an empty slot of
// its pair, or with probability 1/8 over another key's, so that keys that
// never repeat cost at most an allocation for one Put in eight, and keys
// that share a pair do not evict each other on every Put.
type hashCache struct {
	seed  maphash.Seed
	slots [hashCacheSlots]atomic.Pointer[hashEntry]
}

const hashCacheSlots = 4096 // a power of two

type hashEntry struct {
	pk  string
	key hashkey.Key
}

func newHashCache() *hashCache { return &hashCache{seed: maphash.MakeSeed()} }

// key returns hashkey.FromPartitionKey(pk).
func (c *hashCache) key(pk string) hashkey.Key {
	i := maphash.String(c.seed, pk) & (hashCacheSlots - 2)
	s0, s1 := &c.slots[i], &c.slots[i+1]
	e0 := s0.Load()
	if e0 != nil && e0.pk == pk {
		return e0.key
	}
	e1 := s1.Load()
	if e1 != nil && e1.pk == pk {
		return e1.key
	}
	k := hashkey.FromPartitionKey(pk)
	switch {
	case e0 == nil:
		s0.Store(&hashEntry{pk: pk, key: k})
	case e1 == nil:
		s1.Store(&hashEntry{pk: pk, key: k})
	default:
		if r := rand.Uint32(); r&7 == 0 {
			[2]*atomic.Pointer[hashEntry]{s0, s1}[r>>31].Store(&hashEntry{pk: pk, key: k})
		}
	}
	return k
}
