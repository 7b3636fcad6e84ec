package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// fileID identifies a file across renames: its device and inode numbers.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (id fileID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// fileState is what the state file remembers of one file.
type fileState struct {
	fileID
	// Path is where the file was last seen (for people reading the file).
	Path string `json:"path"`
	// Key is the partition key of the file's lines (in -key file mode).
	Key string `json:"key"`
	// Offset is the end of the last line Kinesis acknowledged: every line
	// before it was stored, so a restart reads from here.
	Offset int64 `json:"offset"`
}

// state is the agent's state file's content.
type state struct {
	Version int         `json:"version"`
	Files   []fileState `json:"files"`
}

const stateVersion = 1

// loadState reads the state file; a missing file is an empty state.
func loadState(path string) (map[fileID]fileState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[fileID]fileState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state %s: version %d, want %d", path, st.Version, stateVersion)
	}
	m := make(map[fileID]fileState, len(st.Files))
	for _, f := range st.Files {
		m[f.fileID] = f
	}
	return m, nil
}

// saveState writes the state file atomically: to a temporary file in the
// same directory, synced, then renamed over the old one, and the directory
// synced, so that a crash leaves either the old state or the new one.
func saveState(path string, files []fileState) error {
	slices.SortFunc(files, func(a, b fileState) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.MarshalIndent(state{Version: stateVersion, Files: files}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close() // the write error is the one to report
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close() // the sync error is the one to report
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer func() { _ = d.Close() }() // a directory, opened to sync it
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save state: sync %s: %w", dir, err)
	}
	return nil
}
