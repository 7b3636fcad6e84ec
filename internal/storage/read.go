package storage

import (
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sort"
	"sync"
)

const (
	readChunkMin = 64 << 10 // first read-ahead of a cursor
	readChunkMax = 1 << 20  // read-ahead cap
	maxPooledBuf = 4 << 20  // larger scratch buffers are not pooled
)

// recRef locates a record inside readState.buf.
type recRef struct {
	pos            Position
	ms             int64
	ks, ke, ds, de int
}

// readState is the per-call scratch of a read, pooled between calls. buf
// accumulates raw file bytes in regions; records collected so far point into
// it by index, so it is only discarded while none are collected.
type readState struct {
	buf      []byte
	seg      *segment // segment of the current region
	regOff   uint64   // logical offset of buf[regStart]
	regStart int
	chunk    int
	refs     []recRef
	keys     []byte
}

var readPool = sync.Pool{New: func() any { return new(readState) }}

func getReadState() *readState {
	st := readPool.Get().(*readState)
	st.chunk = readChunkMin
	return st
}

func putReadState(st *readState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	if cap(st.keys) > maxPooledBuf {
		st.keys = nil
	}
	st.buf, st.seg, st.refs, st.keys = st.buf[:0], nil, st.refs[:0], st.keys[:0]
	readPool.Put(st)
}

// ensure makes the bytes [off, off+n) of seg available and returns their
// index in st.buf. limit is the readable end of seg. keep preserves bytes
// already buffered when a new region must be started.
func (st *readState) ensure(seg *segment, off uint64, n int, limit uint64, keep bool) (int, error) {
	if off+uint64(n) > limit {
		return 0, fmt.Errorf("%w: batch at offset %d overruns readable end %d", ErrCorrupt, off, limit)
	}
	if st.seg == seg && off >= st.regOff {
		rel := off - st.regOff
		have := uint64(len(st.buf) - st.regStart)
		if rel+uint64(n) <= have {
			return st.regStart + int(rel), nil
		}
		if rel <= have { // extend the region contiguously
			want := min(max(rel+uint64(n), have+uint64(st.chunk)), limit-st.regOff)
			if err := st.read(seg, st.regOff+have, int(want-have)); err != nil {
				return 0, err
			}
			return st.regStart + int(rel), nil
		}
	}
	if !keep {
		st.buf = st.buf[:0]
	}
	st.seg, st.regOff, st.regStart = seg, off, len(st.buf)
	want := min(max(uint64(n), uint64(st.chunk)), limit-off)
	if err := st.read(seg, off, int(want)); err != nil {
		return 0, err
	}
	return st.regStart, nil
}

// read appends k bytes of seg starting at logical offset off to st.buf.
func (st *readState) read(seg *segment, off uint64, k int) error {
	st.chunk = min(st.chunk*2, readChunkMax)
	old := len(st.buf)
	st.buf = slices.Grow(st.buf, k)[:old+k]
	m, err := seg.f.ReadAt(st.buf[old:], int64(off-seg.base))
	if m < k {
		st.buf = st.buf[:old+m]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("storage: read: %w", err)
	}
	return nil
}

// cursor walks committed batch headers across segments, holding a reference
// on the current segment.
type cursor struct {
	l         *Log
	st        *readState
	committed uint64
	seg       *segment
	end       uint64 // readable end of seg
	pos       uint64 // logical offset of the current batch
}

// openCursorLocked positions a cursor at an indexed batch at or before the
// first batch that may hold a record at or after off. ok is false if there
// is no committed data at or after off. l.mu must be held.
func (l *Log) openCursorLocked(st *readState, off uint64) (c cursor, ok bool) {
	c = cursor{l: l, st: st, committed: l.committedLocked()}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].end() > off })
	if i == len(l.segs) || l.segs[i].base >= c.committed {
		return c, false
	}
	s := l.segs[i]
	s.acquire()
	c.seg, c.end, c.pos = s, min(s.end(), c.committed), s.indexHint(off)
	return c, true
}

func (c *cursor) close() {
	if c.seg != nil {
		// A reader holds the last reference only once the segment was trimmed
		// or the log closed; a failed close of its file loses nothing.
		_ = c.seg.release()
		c.seg = nil
	}
}

// header returns the header of the batch at c.pos, moving on to the next
// segment when the current one is exhausted. ok is false at the end of
// committed data. keep is passed to readState.ensure.
func (c *cursor) header(keep bool) (h batchHeader, ok bool, err error) {
	for c.pos >= c.end {
		if c.seg == nil {
			return h, false, nil
		}
		after := c.end
		c.close()
		l := c.l
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return h, false, ErrClosed
		}
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base >= after })
		for i < len(l.segs) && l.segs[i].size == 0 {
			i++
		}
		if i == len(l.segs) || l.segs[i].base >= c.committed {
			l.mu.Unlock()
			c.pos = max(c.pos, after)
			return h, false, nil
		}
		s := l.segs[i]
		s.acquire()
		c.seg, c.end, c.pos = s, min(s.end(), c.committed), s.base
		l.mu.Unlock()
	}
	at, err := c.st.ensure(c.seg, c.pos, headerSize, c.end, keep)
	if err != nil {
		return h, false, err
	}
	if h, err = parseHeader(c.st.buf[at:]); err != nil {
		return h, false, fmt.Errorf("%w: offset %d: %v", ErrCorrupt, c.pos, err)
	}
	return h, true, nil
}

// Read returns committed records at or after from, in order: at most
// maxRecords records and maxBytes bytes of keys plus data (a value <= 0 means
// no limit), but at least one record if any is available. from may be any
// position; reading starts at the first record at or after it. next is where
// the following Read should start. The returned entries share one freshly
// allocated buffer.
func (l *Log) Read(from Position, maxRecords int, maxBytes int) (entries []Entry, next Position, err error) {
	if maxRecords <= 0 {
		maxRecords = int(^uint(0) >> 1)
	}
	if maxBytes <= 0 {
		maxBytes = int(^uint(0) >> 1)
	}
	st := getReadState()
	defer putReadState(st)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, from, ErrClosed
	}
	c, ok := l.openCursorLocked(st, from.Offset)
	l.mu.Unlock()
	if !ok {
		return nil, from, nil
	}
	defer c.close()

	next = from
	total := 0
	done := false
	for !done && len(st.refs) < maxRecords {
		keep := len(st.refs) > 0
		h, ok, err := c.header(keep)
		if err != nil {
			return nil, from, err
		}
		if !ok {
			if !keep && from.Less(Position{Offset: c.pos}) {
				next = Position{Offset: c.pos}
			}
			break
		}
		bpos, bend := c.pos, c.pos+uint64(h.length)
		first := 0
		if bpos == from.Offset {
			first = int(from.Index)
		}
		if bpos < from.Offset || first >= int(h.count) {
			c.pos = bend
			continue
		}
		at, err := st.ensure(c.seg, bpos, int(h.length), c.end, keep)
		if err != nil {
			return nil, from, err
		}
		b := st.buf[at : at+int(h.length)]
		if crc32.Checksum(b[offCount:], castagnoli) != h.crc {
			return nil, from, fmt.Errorf("%w: offset %d: %v", ErrCorrupt, bpos, errCRC)
		}
		p := headerSize
		for i := 0; i < int(h.count); i++ {
			ks, ke, ds, de, np, ok := nextRecord(b, p)
			if !ok {
				return nil, from, fmt.Errorf("%w: offset %d: %v", ErrCorrupt, bpos, errRecords)
			}
			p = np
			if i < first {
				continue
			}
			sz := ke - ks + de - ds
			if len(st.refs) >= maxRecords || (len(st.refs) > 0 && sz > maxBytes-total) {
				next = Position{Offset: bpos, Index: uint16(i)}
				done = true
				break
			}
			st.refs = append(st.refs, recRef{
				pos: Position{Offset: bpos, Index: uint16(i)}, ms: h.arrival,
				ks: at + ks, ke: at + ke, ds: at + ds, de: at + de,
			})
			total += sz
		}
		if !done {
			c.pos = bend
			next = Position{Offset: bend}
		}
	}
	return st.entries(), next, nil
}

// entries copies the collected records out of the scratch buffer: one
// allocation for the entries, one for all data and one for all keys.
func (st *readState) entries() []Entry {
	if len(st.refs) == 0 {
		return nil
	}
	dataLen := 0
	st.keys = st.keys[:0]
	for i := range st.refs {
		r := &st.refs[i]
		dataLen += r.de - r.ds
		st.keys = append(st.keys, st.buf[r.ks:r.ke]...)
	}
	keys := string(st.keys)
	data := make([]byte, dataLen)
	out := make([]Entry, len(st.refs))
	dp, kp := 0, 0
	for i := range st.refs {
		r := &st.refs[i]
		dn := copy(data[dp:], st.buf[r.ds:r.de])
		kn := r.ke - r.ks
		out[i] = Entry{
			Pos:           r.pos,
			ArrivalMillis: r.ms,
			PartitionKey:  keys[kp : kp+kn],
			Data:          data[dp : dp+dn : dp+dn],
		}
		dp += dn
		kp += kn
	}
	return out
}

// SeekTime returns the position of the first committed record whose arrival
// time is at least ms, or End() if there is none. It consults the sparse
// index and scans at most one index interval of batch headers.
func (l *Log) SeekTime(ms int64) Position {
	st := getReadState()
	defer putReadState(st)
	l.mu.Lock()
	if l.closed {
		defer l.mu.Unlock()
		return Position{Offset: l.committedLocked()}
	}
	committed := l.committedLocked()
	endPos := Position{Offset: committed}
	for _, s := range l.segs {
		if s.base >= committed {
			break
		}
		if s.size == 0 || s.lastMs < ms {
			continue
		}
		j := sort.Search(len(s.index), func(i int) bool { return s.index[i].ms >= ms })
		if j == 0 {
			p := Position{Offset: s.index[0].off}
			l.mu.Unlock()
			return p
		}
		found := endPos
		if j < len(s.index) && s.index[j].off < committed {
			found = Position{Offset: s.index[j].off}
		}
		limit := min(s.end(), committed, found.Offset)
		start := s.index[j-1].off
		s.acquire()
		l.mu.Unlock()
		c := cursor{l: l, st: st, committed: committed, seg: s, end: limit, pos: start}
		defer c.close()
		for c.pos < limit {
			h, ok, err := c.header(false)
			if err != nil || !ok {
				break
			}
			if h.arrival >= ms {
				return Position{Offset: c.pos}
			}
			c.pos += uint64(h.length)
		}
		return found
	}
	l.mu.Unlock()
	return endPos
}
