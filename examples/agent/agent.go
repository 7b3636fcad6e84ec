package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/producer"
)

// Partition key modes.
const (
	keyFile   = "file"   // the file's name: one file's lines keep their order
	keyRandom = "random" // a random key per line: spread over every shard
)

// readChunk is how much of a file one read takes.
const readChunk = 64 << 10

// agent follows files and ships their lines. One goroutine, the one that
// calls run, owns all of its state.
type agent struct {
	cfg     config
	out     io.Writer
	logger  *zap.Logger
	prod    *producer.Producer
	files   map[fileID]*tailFile
	saved   map[fileID]fileState // from the state file, for files not yet seen
	dirty   bool                 // an offset moved since the last save
	shipped int                  // lines acknowledged since the last save
	total   int                  // lines acknowledged since the start
	orphans []inFlight           // lines in flight when their file was truncated
}

// tailFile is one followed file.
type tailFile struct {
	id      fileID
	path    string // where it was last seen
	key     string // partition key of its lines (key mode file)
	f       *os.File
	read    int64      // offset after the last line handed to the producer
	acked   int64      // offset after the last line acknowledged, in order
	flight  []inFlight // lines handed to the producer, in file order
	matched bool       // a glob matched it in the last scan
	grew    time.Time  // when a read last found new data, or the file was opened
	buf     []byte
}

// inFlight is a line the producer has not acknowledged yet.
type inFlight struct {
	pd  *producer.Pending
	end int64 // offset after the line
}

func newAgent(cfg config, prod *producer.Producer, out io.Writer, logger *zap.Logger) (*agent, error) {
	saved, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	return &agent{cfg: cfg, out: out, logger: logger, prod: prod, files: map[fileID]*tailFile{}, saved: saved}, nil
}

// run follows the files until ctx ends, then flushes the producer, saves
// the offsets of every acknowledged line and returns. An error from the
// producer (a line it gave up on) stops the agent at once; the state file
// then still names the last line before it, which a restart reads again.
func (a *agent) run(ctx context.Context) error {
	defer a.closeFiles()
	tick := time.NewTicker(a.cfg.Poll)
	defer tick.Stop()
	for {
		if err := a.poll(ctx); err != nil {
			if ctx.Err() != nil {
				break // a Put cut short by the stop; handled below
			}
			return err
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	return a.stop()
}

// poll scans the globs, reads what the files gained, and records what the
// producer acknowledged.
func (a *agent) poll(ctx context.Context) error {
	if err := a.scan(); err != nil {
		return err
	}
	for _, tf := range a.sorted() {
		if err := a.readFile(ctx, tf); err != nil {
			return err
		}
	}
	return a.commit()
}

// scan starts following the files the globs match that are new, and marks
// which followed files are still matched.
func (a *agent) scan() error {
	for _, tf := range a.files {
		tf.matched = false
	}
	for _, g := range a.cfg.Globs {
		paths, err := filepath.Glob(g)
		if err != nil {
			return fmt.Errorf("glob %q: %w", g, err)
		}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue // gone since the glob, or a directory
			}
			id := identity(fi)
			if tf, ok := a.files[id]; ok {
				if tf.path != p {
					_, _ = fmt.Fprintf(a.out, "%s: renamed to %s\n", tf.path, p)
					tf.path = p
					a.dirty = true
				}
				tf.matched = true
				continue
			}
			if err := a.open(p, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// open starts following a file: from its saved offset if the state file
// knows it, else from its start.
func (a *agent) open(path string, id fileID) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // rotated away between the glob and now; the next scan sees the new one
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close() // read only
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if identity(fi) != id {
		_ = f.Close()
		return nil // replaced between the stat and the open; the next scan sees it
	}
	tf := &tailFile{id: id, path: path, key: filepath.Base(path), f: f, matched: true, grew: time.Now()}
	if st, ok := a.saved[id]; ok {
		tf.key = st.Key
		if st.Offset <= fi.Size() {
			tf.read, tf.acked = st.Offset, st.Offset
		} else {
			_, _ = fmt.Fprintf(a.out, "%s: truncated while the agent was stopped, reading from the start\n", path)
		}
		delete(a.saved, id)
	}
	a.files[id] = tf
	a.dirty = true
	_, _ = fmt.Fprintf(a.out, "following %s from offset %d\n", path, tf.read)
	return nil
}

// readFile hands the complete lines the file gained to the producer. A
// last line without its newline waits for it. A file that shrank was
// truncated (copytruncate rotation): it is read again from the start.
func (a *agent) readFile(ctx context.Context, tf *tailFile) error {
	fi, err := tf.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", tf.path, err)
	}
	if fi.Size() < tf.read {
		_, _ = fmt.Fprintf(a.out, "%s: truncated, reading from the start\n", tf.path)
		// Lines still in flight were of the old content: their results no
		// longer move the offset, but are still awaited and counted.
		a.orphans = append(a.orphans, tf.flight...)
		tf.read, tf.acked, tf.flight = 0, 0, nil
		a.dirty = true
	}
	if tf.read < fi.Size() {
		tf.grew = time.Now()
	}
	for tf.read < fi.Size() {
		n := min(int64(a.cfg.MaxLineBytes), fi.Size()-tf.read)
		if int64(cap(tf.buf)) < n {
			tf.buf = make([]byte, min(max(n, readChunk), int64(a.cfg.MaxLineBytes)))
		}
		buf := tf.buf[:n]
		if _, err := tf.f.ReadAt(buf, tf.read); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", tf.path, err)
		}
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			if n < int64(a.cfg.MaxLineBytes) {
				return nil // an incomplete last line: wait for the rest
			}
			last = len(buf) - 1 // a line longer than the limit: ship it in pieces
		}
		for rest := buf[:last+1]; len(rest) > 0; {
			line, tail, ok := bytes.Cut(rest, []byte{'\n'})
			size := len(line)
			if ok {
				size++
			}
			rest = tail
			if err := a.ship(ctx, tf, line, tf.read+int64(size)); err != nil {
				return err
			}
			tf.read += int64(size)
		}
	}
	return nil
}

// ship puts one line (a copy: the producer keeps the slice).
func (a *agent) ship(ctx context.Context, tf *tailFile, line []byte, end int64) error {
	key := tf.key
	if a.cfg.KeyMode == keyRandom {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		key = hex.EncodeToString(b[:])
	}
	pd, err := a.prod.Put(ctx, key, bytes.Clone(line))
	if err != nil {
		return fmt.Errorf("put a line of %s: %w", tf.path, err)
	}
	tf.flight = append(tf.flight, inFlight{pd: pd, end: end})
	return nil
}

// commit moves each file's acknowledged offset past the lines acknowledged
// in order, drops the files no glob matches any more once they are fully
// shipped, and saves the state if anything moved.
func (a *agent) commit() error {
	a.orphans = slices.DeleteFunc(a.orphans, func(l inFlight) bool {
		res, ok := l.pd.Result()
		switch {
		case !ok:
			return false
		case res.Err != nil:
			// The file no longer has the line: reading it again is not
			// possible. Say so, and go on.
			_, _ = fmt.Fprintf(a.out, "warning: a line of a file truncated since was not stored, and is lost: %v\n", res.Err)
		default:
			a.total++
		}
		return true
	})
	for _, tf := range a.sorted() {
		for len(tf.flight) > 0 {
			res, ok := tf.flight[0].pd.Result()
			if !ok {
				break
			}
			if res.Err != nil {
				_ = a.save() // the lines before it are stored
				return fmt.Errorf("%s: a line at offset %d was not stored: %w", tf.path, tf.acked, res.Err)
			}
			tf.acked = tf.flight[0].end
			tf.flight = tf.flight[1:]
			a.dirty = true
			a.shipped++
			a.total++
		}
		// A writer may still append to a file it had open when the file was
		// renamed: wait until the file has been quiet for RotatedGrace.
		if !tf.matched && len(tf.flight) == 0 && a.readToEnd(tf) && time.Since(tf.grew) >= a.cfg.RotatedGrace {
			_, _ = fmt.Fprintf(a.out, "%s: rotated away (no longer matched) and fully shipped, no longer followed\n", tf.path)
			_ = tf.f.Close() // read only
			delete(a.files, tf.id)
			a.dirty = true
		}
	}
	if !a.dirty {
		return nil
	}
	return a.save()
}

// readToEnd reports whether every complete line of the file was read.
func (a *agent) readToEnd(tf *tailFile) bool {
	fi, err := tf.f.Stat()
	return err == nil && fi.Size() == tf.read
}

func (a *agent) save() error {
	files := make([]fileState, 0, len(a.files))
	for _, tf := range a.files {
		files = append(files, fileState{fileID: tf.id, Path: tf.path, Key: tf.key, Offset: tf.acked})
	}
	if err := saveState(a.cfg.StateFile, files); err != nil {
		return err
	}
	a.dirty = false
	if a.shipped > 0 {
		a.logger.Debug("state saved", zap.Int("lines", a.shipped))
		a.shipped = 0
	}
	return nil
}

// stop flushes the producer, waits for every result, and saves the state.
func (a *agent) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.StopTimeout)
	defer cancel()
	ferr := a.prod.Flush(ctx)
	if err := a.commit(); err != nil {
		return err
	}
	inFlight := 0
	for _, tf := range a.files {
		inFlight += len(tf.flight)
	}
	if ferr != nil {
		return fmt.Errorf("stop: %d lines not acknowledged, they will be read again: %w", inFlight, ferr)
	}
	_, _ = fmt.Fprintf(a.out, "stopped: %d lines shipped, none left in flight; offsets of %d files saved in %s\n", a.total, len(a.files), a.cfg.StateFile)
	return nil
}

func (a *agent) sorted() []*tailFile {
	fs := make([]*tailFile, 0, len(a.files))
	for _, tf := range a.files {
		fs = append(fs, tf)
	}
	slices.SortFunc(fs, func(x, y *tailFile) int {
		if x.path < y.path {
			return -1
		}
		if x.path > y.path {
			return 1
		}
		return 0
	})
	return fs
}

func (a *agent) closeFiles() {
	for _, tf := range a.files {
		_ = tf.f.Close() // read only
	}
}
