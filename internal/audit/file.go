package audit

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// target is where a Writer's run goroutine writes lines. Only that goroutine
// calls its methods.
type target interface {
	// write writes whole lines; on error none of them counts as written.
	write(p []byte) error
	// full reports whether a line of n bytes, appended after pending bytes
	// not yet written, needs a rotation first.
	full(pending, n int) bool
	// rotate starts a new file; on error nothing was rotated and the line
	// that needed the rotation is not written.
	rotate() error
	close() error
}

// streamTarget writes to an io.Writer the caller owns: never rotated, synced
// or closed.
type streamTarget struct {
	w       io.Writer
	partial bool // a failed write may have left an unterminated line: write '\n' first
}

func (s *streamTarget) write(p []byte) error {
	if s.partial {
		if _, err := s.w.Write([]byte{'\n'}); err != nil {
			return err
		}
		s.partial = false
	}
	n, err := s.w.Write(p)
	if err != nil && n > 0 {
		s.partial = true
	}
	return err
}

func (*streamTarget) full(int, int) bool { return false }
func (*streamTarget) rotate() error      { return nil }
func (*streamTarget) close() error       { return nil }

// fileTarget appends to the file at path and rotates it by size. After any
// error it closes the file and reopens path on the next write, so a target
// that works again (space freed, directory restored) is picked up; before
// each write it checks that path still names the open file, so a file moved
// or deleted behind its back (logrotate) is replaced by a new one.
type fileTarget struct {
	path     string
	maxBytes int64 // <= 0: never rotate
	maxFiles int   // rotated files kept: path.1 (newest) … path.maxFiles
	warn     func(op string, err error)

	f       *os.File    // nil after an error until reopened
	fi      os.FileInfo // f's identity, for os.SameFile
	size    int64       // bytes in the file (kept when f is closed by an error)
	regular bool        // only regular files rotate
	partial bool        // the file may end in an unterminated line: write '\n' first
}

func (t *fileTarget) open() error {
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	t.f, t.fi, t.size, t.regular = f, fi, fi.Size(), fi.Mode().IsRegular()
	if t.regular && t.size > 0 {
		// A crash mid-write leaves a line without its newline; do not glue
		// the next record onto it.
		r, err := os.Open(t.path)
		if err == nil {
			var last [1]byte
			if _, err := r.ReadAt(last[:], t.size-1); err == nil && last[0] != '\n' {
				t.partial = true
			}
			_ = r.Close()
		}
	}
	return nil
}

// current reports whether path still names the open file.
func (t *fileTarget) current() bool {
	fi, err := os.Stat(t.path)
	return err == nil && os.SameFile(fi, t.fi)
}

func (t *fileTarget) write(p []byte) error {
	if t.f != nil && !t.current() {
		t.drop()
	}
	if t.f == nil {
		if err := t.open(); err != nil {
			return err
		}
	}
	if t.partial {
		if _, err := t.f.Write([]byte{'\n'}); err != nil {
			t.drop()
			return err
		}
		t.size++
		t.partial = false
	}
	n, err := t.f.Write(p)
	t.size += int64(n)
	if err != nil {
		if n > 0 {
			// Take the torn line back out; if that fails, the next write
			// starts on a fresh line.
			if terr := t.f.Truncate(t.size - int64(n)); terr == nil {
				t.size -= int64(n)
			} else {
				t.partial = true
			}
		}
		t.drop()
		return err
	}
	return nil
}

func (t *fileTarget) full(pending, n int) bool {
	if t.maxBytes <= 0 || !t.regular {
		return false
	}
	used := t.size + int64(pending)
	return used > 0 && used+int64(n) > t.maxBytes
}

// rotate closes the file, shifts path.i to path.i+1 (the rename over
// path.maxFiles drops the oldest), moves path to path.1 and opens a new path.
func (t *fileTarget) rotate() error {
	if t.f != nil {
		if err := t.closeFile(); err != nil {
			t.warn("sync", err) // the data was written; only its durability is in doubt
		}
	}
	if t.maxFiles <= 0 {
		if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	} else {
		for i := t.maxFiles - 1; i >= 1; i-- {
			if err := os.Rename(t.rotated(i), t.rotated(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(t.path, t.rotated(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	t.size, t.partial = 0, false
	return t.open()
}

func (t *fileTarget) rotated(i int) string { return t.path + "." + strconv.Itoa(i) }

// closeFile syncs and closes f.
func (t *fileTarget) closeFile() error {
	f := t.f
	t.f, t.fi = nil, nil
	var err error
	if t.regular {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// drop closes f after an error, ignoring further errors: the file is
// reopened by the next write.
func (t *fileTarget) drop() {
	f := t.f
	t.f, t.fi = nil, nil
	_ = f.Close()
}

func (t *fileTarget) close() error {
	if t.f == nil {
		return nil
	}
	return t.closeFile()
}
