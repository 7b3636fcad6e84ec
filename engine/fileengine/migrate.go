package fileengine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
)

// legacyMetaFile is where servers before the engine seam kept all metadata.
const legacyMetaFile = "meta.json"

// legacyMeta is the JSON of meta.json (server.metaRoot of those servers).
// Its stream entries have exactly engine.StreamMeta's fields.
type legacyMeta struct {
	Version int    `json:"version"`
	Secret  string `json:"secret"`
	Account struct {
		CommitmentStatus string `json:"commitmentStatus,omitempty"`
		CommitmentStart  int64  `json:"commitmentStart,omitempty"`
		CommitmentEnd    int64  `json:"commitmentEnd,omitempty"`
	} `json:"account"`
	Streams []engine.StreamMeta `json:"streams"`
}

// migrate moves a legacy dir/meta.json into the catalog c (before c.load):
// every stream becomes a record of version 1, the secret and commitment
// settings the account record of version 1, stream records meta.json does
// not name are removed, everything is fsynced, and then meta.json is
// removed. Until that removal meta.json stays the source of truth, so a
// migration interrupted by a crash is simply done again.
func migrate(dir string, c *catalog, lg *zap.Logger) error {
	path := filepath.Join(dir, legacyMetaFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var old legacyMeta
	if err := json.Unmarshal(raw, &old); err != nil {
		return fmt.Errorf("migrate: parse %s: %w", path, err)
	}
	keep := map[string]bool{}
	for _, s := range old.Streams {
		if s.Name == "" {
			return fmt.Errorf("migrate: %s: a stream has no name", path)
		}
		fn := streamFileName(s.Name)
		if keep[fn] {
			return fmt.Errorf("migrate: %s: stream %q appears twice", path, s.Name)
		}
		keep[fn] = true
		b, err := json.Marshal(streamFile{Version: 1, Stream: s})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := writeFileRenamed(c.streamsDir, fn, b); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	des, err := os.ReadDir(c.streamsDir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, de := range des {
		if n := de.Name(); strings.HasSuffix(n, ".json") && !keep[n] {
			if err := os.Remove(filepath.Join(c.streamsDir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("migrate: %w", err)
			}
		}
	}
	if err := syncDir(c.streamsDir); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	acc := engine.AccountMeta{
		Secret:           old.Secret,
		CommitmentStatus: old.Account.CommitmentStatus,
		CommitmentStart:  old.Account.CommitmentStart,
		CommitmentEnd:    old.Account.CommitmentEnd,
	}
	if _, err := c.writeAccount(acc, 1); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Leftover temporary files of the old server's meta.json writes.
	if olds, _ := filepath.Glob(filepath.Join(dir, ".meta-*")); len(olds) > 0 {
		for _, o := range olds {
			_ = os.Remove(o)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	lg.Info("migrated metadata from meta.json to the catalog", zap.Int("streams", len(old.Streams)))
	return nil
}
