package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// recoverBufSize is the read size used to scan segments at Open.
const recoverBufSize = 1 << 20

// parseSegmentName returns the base offset of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ".log")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	return base, err == nil
}

// recover loads every segment in l.dir, truncating each at its first invalid
// batch, and rebuilds the in-memory state. Files that are not segments are
// ignored.
func (l *Log) recover() error {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []uint64
	for _, de := range des {
		base, ok := parseSegmentName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		if base >= MaxOffset {
			l.lg.Warn("ignoring segment beyond the offset limit", zap.String("file", de.Name()))
			continue
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	var sc scanner // its buffer is sized by scan, and pooled
	defer sc.release()
	for i, base := range bases {
		path := filepath.Join(l.dir, segmentName(base))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		s := &segment{base: base, f: f}
		s.refs.Store(1)
		l.segs = append(l.segs, s)
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		limit := fi.Size()
		if i+1 < len(bases) && bases[i+1]-base < uint64(limit) {
			limit = int64(bases[i+1] - base) // never overlap the next segment
		}
		if base+uint64(limit) > MaxOffset {
			limit = int64(MaxOffset - base)
		}
		valid, why, err := sc.scan(s, limit)
		if err != nil {
			return fmt.Errorf("scan %s: %w", path, err)
		}
		s.size = valid
		if valid < fi.Size() {
			l.lg.Warn("truncating damaged segment tail",
				zap.String("segment", filepath.Base(path)),
				zap.Int64("valid_bytes", valid),
				zap.Int64("file_bytes", fi.Size()),
				zap.String("reason", why))
			if err := f.Truncate(valid); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		}
	}
	if len(l.segs) == 0 {
		f, err := os.OpenFile(filepath.Join(l.dir, segmentName(0)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		s := &segment{f: f}
		s.refs.Store(1)
		l.segs = append(l.segs, s)
		if err := l.syncDir(l.dir); err != nil {
			return err
		}
	}
	l.written = l.active().end()
	l.durable = l.written
	for _, s := range l.segs {
		l.lastMs = max(l.lastMs, s.lastMs)
	}
	l.durableMs = l.lastMs
	return nil
}

// recoverBufs pools full-size scan buffers: a file engine reopens logs it
// closed for idleness, and a megabyte zeroed per open dominated that.
var recoverBufs = sync.Pool{New: func() any { b := make([]byte, recoverBufSize); return &b }}

// release returns a pooled buffer.
func (sc *scanner) release() {
	if sc.pooled != nil {
		recoverBufs.Put(sc.pooled)
		sc.pooled, sc.buf = nil, nil
	}
}

// scanner reads segment files sequentially through one large buffer.
type scanner struct {
	buf    []byte
	f      *os.File
	bufOff int64   // file offset of buf[0]
	n      int     // valid bytes in buf
	pooled *[]byte // the pooled buffer buf came from, if any
}

// fill makes buf hold file bytes [off, off+k), reading as much more as fits
// below limit. It reports false if the file ends first.
func (sc *scanner) fill(off int64, k int, limit int64) (bool, error) {
	if off >= sc.bufOff && off+int64(k) <= sc.bufOff+int64(sc.n) {
		return true, nil
	}
	if off+int64(k) > limit {
		return false, nil
	}
	keep := 0
	if off >= sc.bufOff && off < sc.bufOff+int64(sc.n) {
		keep = copy(sc.buf, sc.buf[off-sc.bufOff:sc.n]) // carry the partial batch forward
	}
	if k > len(sc.buf) {
		nb := make([]byte, k)
		copy(nb, sc.buf[:keep])
		sc.buf = nb
	}
	want := min(int64(len(sc.buf)), limit-off)
	m, err := sc.f.ReadAt(sc.buf[keep:want], off+int64(keep))
	sc.bufOff, sc.n = off, keep+m
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return sc.n >= k, nil
}

// scan validates the batches of s below limit, filling s.index and s.lastMs.
// It returns the length of the valid prefix and why scanning stopped short.
func (sc *scanner) scan(s *segment, limit int64) (int64, string, error) {
	sc.f, sc.bufOff, sc.n = s.f, 0, 0
	switch want := int(min(limit, recoverBufSize)); {
	case len(sc.buf) > recoverBufSize:
		sc.release()
		sc.buf = nil // drop a buffer grown for one huge batch
		fallthrough
	case len(sc.buf) < want:
		if want > recoverBufSize/4 {
			sc.release()
			sc.pooled = recoverBufs.Get().(*[]byte)
			sc.buf = *sc.pooled
		} else {
			sc.buf = make([]byte, max(want, headerSize)) // a small segment: a small buffer
		}
	}
	var pos int64
	for pos < limit {
		ok, err := sc.fill(pos, headerSize, limit)
		if err != nil {
			return 0, "", err
		}
		if !ok {
			return pos, "incomplete header", nil
		}
		h, err := parseHeader(sc.buf[pos-sc.bufOff:])
		if err != nil {
			return pos, err.Error(), nil
		}
		if ok, err = sc.fill(pos, int(h.length), limit); err != nil {
			return 0, "", err
		} else if !ok {
			return pos, "incomplete batch", nil
		}
		start := int(pos - sc.bufOff)
		if err := validateBatch(sc.buf[start:start+int(h.length)], h); err != nil {
			return pos, err.Error(), nil
		}
		s.addIndex(s.base+uint64(pos), h.arrival)
		pos += int64(h.length)
	}
	return pos, "", nil
}
