package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 100 << 20 // Options.MaxBytes
	DefaultMaxFiles = 5         // Options.MaxFiles
	DefaultBuffer   = 4096      // Options.Buffer
)

const (
	logEvery   = time.Minute // at most one failure log line per period
	batchBytes = 256 << 10   // a batch is written once it holds this much
	keepBatch  = 1 << 20     // a batch buffer that grew past this is not kept
)

// stdout is the target of Open("-"); tests replace it.
var stdout io.Writer = os.Stdout

// Options configure a Writer. The zero value is usable.
type Options struct {
	// MaxBytes is the size a file may reach: a record that would take it
	// past MaxBytes goes to a new file (a record larger than MaxBytes gets a
	// file of its own). Default DefaultMaxBytes (100 MiB); negative: never
	// rotate. Only regular files rotate.
	MaxBytes int64
	// MaxFiles is the number of rotated files kept, path.1 (newest) …
	// path.MaxFiles; the oldest beyond it is dropped. Default
	// DefaultMaxFiles (5); negative: none kept.
	MaxFiles int
	// Buffer is the number of records queued for the writer goroutine;
	// Write drops records beyond it. Default DefaultBuffer (4096).
	Buffer int
	// Logger receives failures (encode, write, rotate, sync), at most one
	// line per minute by Now, never with a record's content. Default: none.
	Logger *zap.Logger
	// Now is the clock of defaulted eventTimes and of the log rate limit.
	// Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats counts records. Once Close has returned, Written + Dropped + Failed
// equals the number of non-nil records passed to Write.
type Stats struct {
	Written int64 // written to the target
	Dropped int64 // discarded by Write: the queue was full or the Writer closed
	Failed  int64 // lost to an encode, write or rotate error
	Queued  int   // waiting in the queue now
}

// Writer writes Records as JSON lines from one goroutine of its own. Its
// methods are safe for concurrent use.
type Writer struct {
	queue chan *Record
	now   func() time.Time

	mu     sync.RWMutex // Write holds it shared around its send; Close exclusively to close queue
	closed bool         // guarded by mu

	written, dropped, failed atomic.Int64

	closeOnce sync.Once
	done      chan struct{} // closed when run has returned
	closeErr  error         // set by run before it closes done

	// Owned by the run goroutine.
	out     target
	name    string // for log lines
	log     *zap.Logger
	enc     lineEncoder
	batch   []byte
	batchN  int64 // records in batch
	logged  bool  // a failure was logged, at lastLog
	lastLog time.Time
	muted   int // failures not logged since lastLog
}

// Open starts a Writer appending to the file at path, which it creates
// (mode 0600, directories 0700) if needed; "-" is standard output, never
// rotated. The file is opened before Open returns, so a bad path fails here.
func Open(path string, opts Options) (*Writer, error) {
	if path == "-" {
		return newStream(stdout, "stdout", opts), nil
	}
	if path == "" {
		return nil, errors.New("audit log: empty path")
	}
	opts = opts.withDefaults()
	t := &fileTarget{path: path, maxBytes: opts.MaxBytes, maxFiles: opts.MaxFiles}
	if err := t.open(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	w := newWriter(t, path, opts)
	t.warn = w.report
	go w.run()
	return w, nil
}

// New starts a Writer to out, which is never rotated, synced or closed (the
// caller owns it). Only the Writer's goroutine calls out.Write.
func New(out io.Writer, opts Options) *Writer {
	return newStream(out, fmt.Sprintf("%T", out), opts)
}

func newStream(out io.Writer, name string, opts Options) *Writer {
	w := newWriter(&streamTarget{w: out}, name, opts.withDefaults())
	go w.run()
	return w
}

func newWriter(t target, name string, opts Options) *Writer {
	return &Writer{
		queue: make(chan *Record, opts.Buffer),
		now:   opts.Now,
		done:  make(chan struct{}),
		out:   t,
		name:  name,
		log:   opts.Logger,
	}
}

// Write queues rec and returns at once: it never waits for the writer
// goroutine and never fails. When the queue is full, or the Writer is
// closed, rec is dropped and counted in Stats.Dropped. A zero EventTime is
// set to Options.Now().
//
// rec belongs to the Writer from then on: the caller must not change it, nor
// anything it refers to (such as RequestParameters). Before writing it, the
// writer goroutine fills in what is missing: see NewRecord for the constant
// members and EventCategory; an empty EventID becomes a random UUID.
func (w *Writer) Write(rec *Record) {
	if rec == nil {
		return
	}
	if rec.EventTime.IsZero() {
		rec.EventTime = w.now()
	}
	w.mu.RLock()
	if !w.closed {
		select {
		case w.queue <- rec:
			w.mu.RUnlock()
			return
		default:
		}
	}
	w.mu.RUnlock()
	w.dropped.Add(1)
}

// Stats returns the counters so far.
func (w *Writer) Stats() Stats {
	return Stats{
		Written: w.written.Load(),
		Dropped: w.dropped.Load(),
		Failed:  w.failed.Load(),
		Queued:  len(w.queue),
	}
}

// Close stops taking records, writes every record already queued, syncs and
// closes the file (not a writer given to New), and waits for the writer
// goroutine to end. It returns the error of the final sync or close.
// Further calls wait the same way and return the same error.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
	<-w.done
	return w.closeErr
}

// run is the writer goroutine: it takes what is queued, up to batchBytes,
// encodes it into one batch and writes that with one call.
func (w *Writer) run() {
	defer close(w.done)
	for rec := range w.queue {
		w.add(rec)
	more:
		for len(w.batch) < batchBytes {
			select {
			case rec, ok := <-w.queue:
				if !ok {
					break more
				}
				w.add(rec)
			default:
				break more
			}
		}
		w.flush()
	}
	w.closeErr = w.out.close()
}

// add encodes rec onto the batch, first writing the batch and rotating when
// rec's line would not fit in the current file.
func (w *Writer) add(rec *Record) {
	rec.classify()
	if rec.EventID == "" {
		rec.EventID = newEventID()
	}
	if err := w.enc.encode(rec); err != nil {
		w.failed.Add(1)
		// Encoding errors can quote values of the record: log the type only.
		w.report("encode", fmt.Errorf("encode record: %T", err))
		return
	}
	line := w.enc.bytes()
	if w.out.full(len(w.batch), len(line)) {
		w.flush()
		if err := w.out.rotate(); err != nil {
			w.failed.Add(1)
			w.report("rotate", err)
			return
		}
	}
	w.batch = append(w.batch, line...)
	w.batchN++
}

// flush writes the batch. On error its records count as failed: none is
// retried, as a partial line is taken back out (see fileTarget.write).
func (w *Writer) flush() {
	if w.batchN == 0 {
		return
	}
	if err := w.out.write(w.batch); err != nil {
		w.failed.Add(w.batchN)
		w.report("write", err)
	} else {
		w.written.Add(w.batchN)
	}
	w.batch, w.batchN = w.batch[:0], 0
	if cap(w.batch) > keepBatch {
		w.batch = nil
	}
}

// report logs a failure, at most once per logEvery; the errors it gets name
// files and system errors, never record content.
func (w *Writer) report(op string, err error) {
	now := w.now()
	if w.logged && now.Sub(w.lastLog) < logEvery {
		w.muted++
		return
	}
	w.log.Warn("audit log failure", zap.String("op", op), zap.String("target", w.name), zap.Error(err),
		zap.Int64("failedRecords", w.failed.Load()), zap.Int("suppressedLogs", w.muted))
	w.logged, w.lastLog, w.muted = true, now, 0
}

// lineEncoder encodes a record as one JSON line. It must not be copied after
// first use.
type lineEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func (e *lineEncoder) encode(r *Record) error {
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false) // userAgent and the like verbatim, as CloudTrail
	}
	e.buf.Reset()
	return e.enc.Encode(r.wire())
}

// bytes is the last line, with its newline; valid until the next encode.
func (e *lineEncoder) bytes() []byte { return e.buf.Bytes() }
