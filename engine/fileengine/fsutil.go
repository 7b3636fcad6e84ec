package fileengine

import (
	"fmt"
	"os"
	"path/filepath"
)

// tmpPrefix starts the names of temporary files; Open removes leftovers.
const tmpPrefix = ".tmp-"

// writeFileAtomic replaces dir/name with data: a temporary file in dir is
// written and fsynced, renamed over name, and dir is fsynced. renamed
// reports whether the rename happened (then dir/name holds data even if
// syncing dir failed).
func writeFileAtomic(dir, name string, data []byte) (renamed bool, err error) {
	if err := writeFileRenamed(dir, name, data); err != nil {
		return false, err
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("sync %s: %w", dir, err)
	}
	return true, nil
}

// writeFileRenamed is writeFileAtomic without the final fsync of dir.
func writeFileRenamed(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// failSyncDir, when set by a test before the engine is used, is consulted
// by syncDir first: a non-nil result is returned as the fsync's error.
var failSyncDir func(dir string) error

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	if failSyncDir != nil {
		if err := failSyncDir(dir); err != nil {
			return err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
