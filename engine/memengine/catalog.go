package memengine

import (
	"context"
	"fmt"
	"sync"

	"github.com/shoalstream/shoal/engine"
)

// catalog is the engine.Catalog of an Engine. Stored records are never
// changed in place: a put replaces them with a fresh deep copy, so readers
// copy them outside the lock.
type catalog struct {
	mu         sync.Mutex // guards the fields below
	closed     bool
	version    uint64 // the last version handed out, for any record
	streams    map[string]engine.VersionedStream
	account    engine.AccountMeta
	accountVer uint64 // 0: never stored
}

var _ engine.Catalog = (*catalog)(nil)

func newCatalog() *catalog { return &catalog{streams: make(map[string]engine.VersionedStream)} }

func (c *catalog) close() {
	c.mu.Lock()
	c.closed = true
	c.streams = nil
	c.mu.Unlock()
}

// casErr applies the compare-and-set rule to a record stored at version
// stored (0 when missing): it returns nil, ErrExists or ErrConflict.
func casErr(stored, expect uint64) error {
	switch {
	case expect == 0 && stored != 0:
		return engine.ErrExists
	case expect != stored:
		return engine.ErrConflict
	}
	return nil
}

func (c *catalog) Streams(context.Context) ([]engine.VersionedStream, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("memengine: streams: %w", engine.ErrClosed)
	}
	out := make([]engine.VersionedStream, 0, len(c.streams))
	for _, s := range c.streams {
		out = append(out, s)
	}
	c.mu.Unlock()
	for i := range out {
		out[i].Meta = out[i].Meta.Clone()
	}
	return out, nil
}

func (c *catalog) Stream(_ context.Context, name string) (engine.StreamMeta, uint64, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return engine.StreamMeta{}, 0, fmt.Errorf("memengine: stream %q: %w", name, engine.ErrClosed)
	}
	s, ok := c.streams[name]
	c.mu.Unlock()
	if !ok {
		return engine.StreamMeta{}, 0, fmt.Errorf("memengine: stream %q: %w", name, engine.ErrNotFound)
	}
	return s.Meta.Clone(), s.Version, nil
}

func (c *catalog) PutStream(_ context.Context, m engine.StreamMeta, expect uint64) (uint64, error) {
	m = m.Clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, fmt.Errorf("memengine: put stream %q: %w", m.Key(), engine.ErrClosed)
	}
	if stored := c.streams[m.Key()].Version; casErr(stored, expect) != nil {
		return 0, fmt.Errorf("memengine: put stream %q: %w: expected version %d, stored %d", m.Key(), casErr(stored, expect), expect, stored)
	}
	c.version++
	c.streams[m.Key()] = engine.VersionedStream{Meta: m, Version: c.version}
	return c.version, nil
}

func (c *catalog) DeleteStream(_ context.Context, name string, expect uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("memengine: delete stream %q: %w", name, engine.ErrClosed)
	}
	s, ok := c.streams[name]
	switch {
	case !ok:
		return fmt.Errorf("memengine: delete stream %q: %w", name, engine.ErrNotFound)
	case s.Version != expect:
		return fmt.Errorf("memengine: delete stream %q: %w: expected version %d, stored %d", name, engine.ErrConflict, expect, s.Version)
	}
	delete(c.streams, name)
	return nil
}

func (c *catalog) Account(context.Context) (engine.AccountMeta, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return engine.AccountMeta{}, 0, fmt.Errorf("memengine: account: %w", engine.ErrClosed)
	}
	return c.account, c.accountVer, nil
}

func (c *catalog) PutAccount(_ context.Context, a engine.AccountMeta, expect uint64) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, fmt.Errorf("memengine: put account: %w", engine.ErrClosed)
	}
	if err := casErr(c.accountVer, expect); err != nil {
		return 0, fmt.Errorf("memengine: put account: %w: expected version %d, stored %d", err, expect, c.accountVer)
	}
	c.version++
	c.account, c.accountVer = a, c.version
	return c.version, nil
}
