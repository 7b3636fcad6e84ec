package fileengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// streamFile is the JSON of one stream record file.
type streamFile struct {
	Version uint64            `json:"version"`
	Stream  engine.StreamMeta `json:"stream"`
}

// accountFile is the JSON of the account record file.
type accountFile struct {
	Version uint64             `json:"version"`
	Account engine.AccountMeta `json:"account"`
}

// maxHexName is the longest name (in bytes) stored as <hex(name)>.json: its
// file name is then 255 bytes, the usual limit of a file name.
const maxHexName = 125

// streamFileName returns the file name of stream name's record: the hex of
// the name (names may be "." or ".."), or for names longer than maxHexName
// bytes "h-" and the hex of the name's SHA-256. The name itself is inside
// the file.
func streamFileName(name string) string {
	if len(name) <= maxHexName {
		return hex.EncodeToString([]byte(name)) + ".json"
	}
	sum := sha256.Sum256([]byte(name))
	return "h-" + hex.EncodeToString(sum[:]) + ".json"
}

// catEntry is one stream name's record. Its mutex serialises the
// compare-and-set writers of the name across their file write; the
// committed record (meta, version) is guarded by catalog.mu so that readers
// never wait for a write. An entry stays in the map after its record is
// deleted, remembering the last version, so that a re-created record gets
// a higher version than any before it: a writer holding a version of the
// deleted record cannot overwrite the new one (versions restart from the
// files' after a restart, when no such writer survives).
type catEntry struct {
	mu      sync.Mutex // held by a writer across check, file write and commit
	name    string
	meta    engine.StreamMeta // guarded by catalog.mu; a private copy
	version uint64            // guarded by catalog.mu; 0 = no record
	last    uint64            // guarded by catalog.mu: the highest version ever stored
	// broken is set (under mu, the entry's) when a write could neither be
	// completed nor undone: the file may hold either record, so every later
	// write of the name fails until a restart reads the file again.
	broken error
}

// catalog is the engine.Catalog of the file engine: one file per stream
// under dir/streams and dir/account.json, versions kept in memory.
//
// Lock order: catEntry.mu (or accountMu) before mu. mu is held only briefly.
type catalog struct {
	dir, streamsDir string
	lg              *zap.Logger
	closed          atomic.Bool

	mu      sync.Mutex
	streams map[string]*catEntry // names with a record or a writer
	account engine.AccountMeta   // guarded by mu
	accVer  uint64               // guarded by mu

	accountMu sync.Mutex // serialises account writers across their file write
	// accountBroken is set (under accountMu) when an account write could
	// neither be completed nor undone; later account writes fail.
	accountBroken error

	// hookWrite, if set (by tests, before use), is called by PutStream
	// with the entry locked, just before the file is written.
	hookWrite func(name string)
}

var _ engine.Catalog = (*catalog)(nil)

// openCatalog creates the catalog directories; load reads the records.
func openCatalog(dir string, lg *zap.Logger) (*catalog, error) {
	c := &catalog{dir: dir, streamsDir: filepath.Join(dir, "streams"), lg: lg, streams: map[string]*catEntry{}}
	if err := os.MkdirAll(c.streamsDir, 0o755); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

// load reads every record file, removing temporary files a crash left.
// Files are read by a few goroutines: with thousands of streams Open is
// bound by the system calls.
func (c *catalog) load() error {
	des, err := os.ReadDir(c.streamsDir)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	var names []string
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			_ = os.Remove(filepath.Join(c.streamsDir, name))
			continue
		}
		if strings.HasSuffix(name, ".json") && de.Type().IsRegular() {
			names = append(names, name)
		}
	}
	files := make([]streamFile, len(names))
	errs := make([]error, len(names))
	workers := min(max(runtime.GOMAXPROCS(0), 4), 16, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				files[i], errs[i] = c.readStream(names[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, f := range files {
		c.streams[f.Stream.Key()] = &catEntry{name: f.Stream.Key(), meta: f.Stream, version: f.Version, last: f.Version}
	}
	des, err = os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			_ = os.Remove(filepath.Join(c.dir, de.Name()))
		}
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "account.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("catalog: %w", err)
	default:
		var f accountFile
		if err := json.Unmarshal(raw, &f); err != nil || f.Version == 0 {
			return fmt.Errorf("catalog: account.json: %w: %v", engine.ErrCorrupt, err)
		}
		c.account, c.accVer = f.Account, f.Version
	}
	return nil
}

// readStream reads and checks one record file.
func (c *catalog) readStream(name string) (streamFile, error) {
	var f streamFile
	raw, err := os.ReadFile(filepath.Join(c.streamsDir, name))
	if err != nil {
		return f, fmt.Errorf("catalog: %w", err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, fmt.Errorf("catalog: %s: %w: %v", name, engine.ErrCorrupt, err)
	}
	if f.Version == 0 || streamFileName(f.Stream.Key()) != name {
		return f, fmt.Errorf("catalog: %s: %w: holds stream %q version %d", name, engine.ErrCorrupt, f.Stream.Key(), f.Version)
	}
	return f, nil
}

func (c *catalog) close() { c.closed.Store(true) }

func (c *catalog) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return errClosed("catalog: " + op)
	}
	return nil
}

// Streams returns a copy of every stream record.
func (c *catalog) Streams(ctx context.Context) ([]engine.VersionedStream, error) {
	if err := c.check(ctx, "streams"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]engine.VersionedStream, 0, len(c.streams))
	for _, ent := range c.streams {
		if ent.version > 0 {
			out = append(out, engine.VersionedStream{Meta: ent.meta.Clone(), Version: ent.version})
		}
	}
	return out, nil
}

// Stream returns a copy of one stream record.
func (c *catalog) Stream(ctx context.Context, name string) (engine.StreamMeta, uint64, error) {
	if err := c.check(ctx, "stream"); err != nil {
		return engine.StreamMeta{}, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.streams[name]
	if ent == nil || ent.version == 0 {
		return engine.StreamMeta{}, 0, fmt.Errorf("fileengine: catalog: stream %q: %w", name, engine.ErrNotFound)
	}
	return ent.meta.Clone(), ent.version, nil
}

// entry returns the entry of name, making it if create is set (else it
// may return nil).
func (c *catalog) entry(name string, create bool) *catEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.streams[name]
	if ent == nil && create {
		ent = &catEntry{name: name}
		c.streams[name] = ent
	}
	return ent
}

// casError is the error of a compare-and-set expecting expect where the
// stored version is have (0: no record).
func casError(what string, have, expect uint64) error {
	switch {
	case have == expect:
		return nil
	case expect == 0:
		return fmt.Errorf("fileengine: catalog: %s: %w (version %d)", what, engine.ErrExists, have)
	default:
		return fmt.Errorf("fileengine: catalog: %s: %w: version %d, expected %d", what, engine.ErrConflict, have, expect)
	}
}

// PutStream stores m if the stored version is expect. The file is written
// and made durable while only this name's entry is locked.
func (c *catalog) PutStream(ctx context.Context, m engine.StreamMeta, expect uint64) (uint64, error) {
	if err := c.check(ctx, "put stream"); err != nil {
		return 0, err
	}
	if m.Name == "" {
		return 0, errors.New("fileengine: catalog: put stream: empty name")
	}
	key := m.Key()
	what := fmt.Sprintf("put stream %q", key)
	ent := c.entry(key, true)
	ent.mu.Lock()
	defer ent.mu.Unlock()
	c.mu.Lock()
	have, v := ent.version, ent.last+1
	c.mu.Unlock()
	if err := casError(what, have, expect); err != nil {
		return 0, err
	}
	if c.hookWrite != nil {
		c.hookWrite(key)
	}
	m = m.Clone()
	raw, err := json.Marshal(streamFile{Version: v, Stream: m})
	if err != nil {
		return 0, fmt.Errorf("fileengine: catalog: %s: %w", what, err)
	}
	if ent.broken != nil {
		return 0, fmt.Errorf("fileengine: catalog: %s: an earlier write failed halfway (restart to recover): %w", what, ent.broken)
	}
	renamed, err := writeFileAtomic(c.streamsDir, streamFileName(key), raw)
	if err == nil {
		c.mu.Lock()
		ent.meta, ent.version, ent.last = m, v, v
		c.mu.Unlock()
		return v, nil
	}
	if renamed {
		// The file holds the new record but its directory entry may not be
		// durable. An error must mean "nothing changed" (the server undoes
		// the change it tried), so put the old record back.
		c.mu.Lock()
		old, oldVersion := ent.meta, ent.version
		c.mu.Unlock()
		if uerr := c.restoreStream(key, old, oldVersion); uerr != nil {
			ent.broken = errors.Join(err, uerr)
			c.lg.Error("catalog write failed and could not be undone", zap.String("stream", key), zap.Error(ent.broken))
		}
	}
	return 0, fmt.Errorf("fileengine: catalog: %s: %w", what, err)
}

// restoreStream puts back the record of name that was stored before a
// failed write: the old record, or no file when there was none.
func (c *catalog) restoreStream(name string, old engine.StreamMeta, version uint64) error {
	if version == 0 {
		if err := os.Remove(filepath.Join(c.streamsDir, streamFileName(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return syncDir(c.streamsDir)
	}
	raw, err := json.Marshal(streamFile{Version: version, Stream: old})
	if err != nil {
		return err
	}
	_, err = writeFileAtomic(c.streamsDir, streamFileName(name), raw)
	return err
}

// DeleteStream removes the record of name if its version is expect.
func (c *catalog) DeleteStream(ctx context.Context, name string, expect uint64) error {
	if err := c.check(ctx, "delete stream"); err != nil {
		return err
	}
	what := fmt.Sprintf("delete stream %q", name)
	ent := c.entry(name, false)
	if ent == nil {
		return fmt.Errorf("fileengine: catalog: %s: %w", what, engine.ErrNotFound)
	}
	ent.mu.Lock()
	defer ent.mu.Unlock()
	c.mu.Lock()
	have := ent.version
	c.mu.Unlock()
	if have == 0 {
		return fmt.Errorf("fileengine: catalog: %s: %w", what, engine.ErrNotFound)
	}
	if have != expect {
		return fmt.Errorf("fileengine: catalog: %s: %w: version %d, expected %d", what, engine.ErrConflict, have, expect)
	}
	if err := os.Remove(filepath.Join(c.streamsDir, streamFileName(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("fileengine: catalog: %s: %w", what, err)
	}
	c.mu.Lock()
	ent.meta, ent.version = engine.StreamMeta{}, 0
	c.mu.Unlock()
	if err := syncDir(c.streamsDir); err != nil {
		return fmt.Errorf("fileengine: catalog: %s: %w", what, err)
	}
	return nil
}

// Account returns the account record and its version.
func (c *catalog) Account(ctx context.Context) (engine.AccountMeta, uint64, error) {
	if err := c.check(ctx, "account"); err != nil {
		return engine.AccountMeta{}, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.account, c.accVer, nil
}

// PutAccount stores the account record if its version is expect.
func (c *catalog) PutAccount(ctx context.Context, a engine.AccountMeta, expect uint64) (uint64, error) {
	if err := c.check(ctx, "put account"); err != nil {
		return 0, err
	}
	c.accountMu.Lock()
	defer c.accountMu.Unlock()
	c.mu.Lock()
	have := c.accVer
	c.mu.Unlock()
	if err := casError("put account", have, expect); err != nil {
		return 0, err
	}
	if c.accountBroken != nil {
		return 0, fmt.Errorf("fileengine: catalog: put account: an earlier write failed halfway (restart to recover): %w", c.accountBroken)
	}
	v := have + 1
	renamed, err := c.writeAccount(a, v)
	if err == nil {
		c.mu.Lock()
		c.account, c.accVer = a, v
		c.mu.Unlock()
		return v, nil
	}
	if renamed { // undo, as PutStream does
		c.mu.Lock()
		old := c.account
		c.mu.Unlock()
		if have == 0 {
			if rerr := os.Remove(filepath.Join(c.dir, "account.json")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				c.accountBroken = errors.Join(err, rerr)
			} else if rerr := syncDir(c.dir); rerr != nil {
				c.accountBroken = errors.Join(err, rerr)
			}
		} else if _, rerr := c.writeAccount(old, have); rerr != nil {
			c.accountBroken = errors.Join(err, rerr)
		}
	}
	return 0, fmt.Errorf("fileengine: catalog: put account: %w", err)
}

func (c *catalog) writeAccount(a engine.AccountMeta, v uint64) (renamed bool, err error) {
	raw, err := json.Marshal(accountFile{Version: v, Account: a})
	if err != nil {
		return false, err
	}
	return writeFileAtomic(c.dir, "account.json", raw)
}
