package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fixedTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock() time.Time { return fixedTime }

// rec returns a record whose requestID is id; with the event id and time
// fixed, all records of ids of one length encode to lines of one length.
func rec(id int) *Record {
	r := NewRecord("PutRecords")
	r.RequestID, r.EventID = fmt.Sprintf("req-%04d", id), "00000000-0000-4000-8000-000000000000"
	r.UserAgent = "SECRET-USER-AGENT"
	r.RequestParameters = map[string]any{"streamName": "SECRET-STREAM"}
	return r
}

// requestIDs checks that every line of b is a JSON record and returns their
// requestIDs.
func requestIDs(t *testing.T, b []byte) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, r.RequestID)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("unterminated last line in %q", b)
	}
	return ids
}

func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return requestIDs(t, b)
}

func ids(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("req-%04d", i))
	}
	return s
}

func mustClose(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func wantStats(t *testing.T, w *Writer, written, dropped, failed int64) {
	t.Helper()
	if s := w.Stats(); s.Written != written || s.Dropped != dropped || s.Failed != failed {
		t.Fatalf("stats %+v, want written %d dropped %d failed %d", s, written, dropped, failed)
	}
}

// checkLogs checks that logs holds n entries, none with record content.
func checkLogs(t *testing.T, logs *observer.ObservedLogs, n int) []observer.LoggedEntry {
	t.Helper()
	all := logs.All()
	if len(all) != n {
		t.Fatalf("%d log entries, want %d: %v", len(all), n, all)
	}
	for _, e := range all {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(e.Message+string(b), "SECRET") || strings.Contains(string(b), "req-") {
			t.Errorf("log entry carries record content: %s %s", e.Message, b)
		}
	}
	return all
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "audit.log")
	w, err := Open(path, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := rec(i)
		r.EventID, r.EventTime = "", time.Time{} // the Writer fills both in
		w.Write(r)
	}
	w.Write(nil) // ignored
	mustClose(t, w)
	wantStats(t, w, 3, 0, 0)

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := requestIDs(t, b); !slices.Equal(got, ids(0, 3)) {
		t.Errorf("lines %v", got)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	eventIDs := map[any]bool{}
	for _, line := range bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		m := decodeObject(t, line)
		if m["eventTime"] != "2025-03-04T05:06:07Z" || !uuid.MatchString(fmt.Sprint(m["eventID"])) || m["eventCategory"] != "Data" {
			t.Errorf("defaults not filled in: %v", m)
		}
		eventIDs[m["eventID"]] = true
	}
	if len(eventIDs) != 3 {
		t.Errorf("event ids not distinct: %v", eventIDs)
	}
	for p, want := range map[string]fs.FileMode{path: 0o600, filepath.Dir(path): 0o700 | fs.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
}

func TestOpenAppends(t *testing.T) {
	for name, existing := range map[string]string{
		"complete line": `{"requestID":"req-9999"}` + "\n",
		"torn line":     `{"requestID":"req-99`, // a crash mid-write
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, []byte(existing), 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(rec(0))
			w.Write(rec(1))
			mustClose(t, w)
			b, _ := os.ReadFile(path)
			head, rest, _ := strings.Cut(string(b), "\n")
			if head+"\n" != existing && head != existing {
				t.Fatalf("existing content changed: %q", b)
			}
			if got := requestIDs(t, []byte(rest)); !slices.Equal(got, ids(0, 2)) {
				t.Errorf("appended %v", got)
			}
		})
	}
}

// lineLen is the length of rec's line (with its newline).
func lineLen(t *testing.T) int64 { return int64(len(encodeLine(t, rec(0)))) }

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := lineLen(t)
	w, err := Open(path, Options{MaxBytes: 3*l + l/2, MaxFiles: 2, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Write(rec(i))
	}
	mustClose(t, w)
	wantStats(t, w, 20, 0, 0)
	// Three lines a file: [0,3) … [15,18) rotated, [18,20) current; two kept.
	for file, want := range map[string][]string{path: ids(18, 20), path + ".1": ids(15, 18), path + ".2": ids(12, 15)} {
		if got := fileIDs(t, file); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", file, got, want)
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.3 kept beyond MaxFiles: %v", path, err)
	}
}

func TestRotationLargeRecordAndKeepNone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := lineLen(t)
	w, err := Open(path, Options{MaxBytes: 2 * l, MaxFiles: 3, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	big := rec(1)
	big.UserAgent = strings.Repeat("u", int(3*l))
	w.Write(rec(0))
	w.Write(big)
	w.Write(rec(2))
	mustClose(t, w)
	for file, want := range map[string][]string{path: ids(2, 3), path + ".1": ids(1, 2), path + ".2": ids(0, 1)} {
		if got := fileIDs(t, file); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", file, got, want)
		}
	}

	none := filepath.Join(dir, "none.log")
	w, err = Open(none, Options{MaxBytes: 2 * l, MaxFiles: -1, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Write(rec(i))
	}
	mustClose(t, w)
	if got := fileIDs(t, none); !slices.Equal(got, ids(4, 5)) {
		t.Errorf("%s: %v", none, got)
	}
	if m, _ := filepath.Glob(none + ".*"); len(m) != 0 {
		t.Errorf("rotated files kept with MaxFiles -1: %v", m)
	}
}

func TestOpenStdout(t *testing.T) {
	var buf bytes.Buffer
	stdout = &buf
	t.Cleanup(func() { stdout = os.Stdout })
	w, err := Open("-", Options{MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Write(rec(i))
	}
	mustClose(t, w)
	if got := requestIDs(t, buf.Bytes()); !slices.Equal(got, ids(0, 5)) {
		t.Errorf("stdout got %v", got)
	}
	if _, err := os.Stat("-"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(`a file named "-" exists: %v`, err)
	}
}

func TestOpenBadPath(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", filepath.Join(blocker, "audit.log")} {
		if w, err := Open(p, Options{}); err == nil {
			_ = w.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

// gateWriter blocks every Write until release is closed; entered receives a
// value when the first Write starts.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	buf     bytes.Buffer
}

func newGate() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return g.buf.Write(p)
}

// Run in a bubble, a Write that blocked would fail the test at once
// (synctest reports the deadlock) rather than at the test timeout.
func TestWriteNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		w := New(g, Options{Buffer: 8})
		w.Write(rec(0))
		<-g.entered // the writer goroutine holds record 0 and is stuck writing it
		for i := 1; i <= 8+5; i++ {
			w.Write(rec(i)) // 8 fit in the queue, 5 do not; none of these waits
		}
		if s := w.Stats(); s.Dropped != 5 || s.Queued != 8 || s.Written != 0 {
			t.Fatalf("while blocked: %+v, want 5 dropped, 8 queued", s)
		}
		close(g.release)
		mustClose(t, w)
		wantStats(t, w, 9, 5, 0)
		if got := requestIDs(t, g.buf.Bytes()); !slices.Equal(got, ids(0, 9)) {
			t.Errorf("written %v", got)
		}
	})
}

// flakyWriter fails with ENOSPC while full is set.
type flakyWriter struct {
	mu   sync.Mutex
	full bool
	buf  bytes.Buffer
}

func (f *flakyWriter) set(full bool) { f.mu.Lock(); f.full = full; f.mu.Unlock() }

func (f *flakyWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return 0, syscall.ENOSPC
	}
	return f.buf.Write(p)
}

func TestWriteFailuresLoggedRateLimitedAndRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		fw := &flakyWriter{full: true}
		w := New(fw, Options{Logger: zap.New(core)}) // Now: the bubble's fake clock
		w.Write(rec(0))
		synctest.Wait()
		wantStats(t, w, 0, 0, 1)
		e := checkLogs(t, logs, 1)[0]
		if e.Level != zapcore.WarnLevel || e.ContextMap()["error"] != syscall.ENOSPC.Error() || e.ContextMap()["op"] != "write" {
			t.Errorf("entry %v %v", e.Level, e.ContextMap())
		}

		w.Write(rec(1))
		synctest.Wait()
		time.Sleep(time.Minute - time.Second) // fake time: still inside the minute
		w.Write(rec(2))
		synctest.Wait()
		wantStats(t, w, 0, 0, 3)
		checkLogs(t, logs, 1) // rate limited

		time.Sleep(time.Second)
		w.Write(rec(3))
		synctest.Wait()
		if got := checkLogs(t, logs, 2)[1].ContextMap()["suppressedLogs"]; got != int64(2) {
			t.Errorf("suppressedLogs = %v, want 2", got)
		}

		fw.set(false) // space freed
		w.Write(rec(4))
		w.Write(rec(5))
		mustClose(t, w)
		wantStats(t, w, 2, 0, 4)
		if got := requestIDs(t, fw.buf.Bytes()); !slices.Equal(got, ids(4, 6)) {
			t.Errorf("written %v", got)
		}
	})
}

// The log's directory is replaced by a file: writes fail (the path cannot be
// reopened) until the file is removed, when the directory is made again.
func TestFileFailureRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		dir := filepath.Join(t.TempDir(), "logs")
		path := filepath.Join(dir, "audit.log")
		w, err := Open(path, Options{Logger: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(rec(0))
		synctest.Wait()
		wantStats(t, w, 1, 0, 0)

		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		w.Write(rec(1))
		w.Write(rec(2))
		synctest.Wait()
		wantStats(t, w, 1, 0, 2)
		if e := checkLogs(t, logs, 1)[0]; !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), syscall.ENOTDIR.Error()) {
			t.Errorf("logged %v", e.ContextMap())
		}

		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		w.Write(rec(3))
		mustClose(t, w)
		wantStats(t, w, 2, 0, 2)
		if got := fileIDs(t, path); !slices.Equal(got, ids(3, 4)) {
			t.Errorf("after recovery %v", got)
		}
	})
}

// tornWriter writes half of its first batch, then fails; later writes work.
type tornWriter struct {
	mu   sync.Mutex
	torn bool
	buf  bytes.Buffer
}

func (w *tornWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.torn {
		w.torn = true
		n, _ := w.buf.Write(p[:len(p)/2])
		return n, io.ErrShortWrite
	}
	return w.buf.Write(p)
}

// A write that fails halfway leaves a torn line in a stream; the next record
// starts on a line of its own.
func TestTornStreamWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tw := &tornWriter{}
		w := New(tw, Options{})
		w.Write(rec(0))
		synctest.Wait()
		w.Write(rec(1))
		mustClose(t, w)
		wantStats(t, w, 1, 0, 1)
		torn, rest, ok := bytes.Cut(tw.buf.Bytes(), []byte("\n"))
		if !ok || !bytes.HasPrefix(torn, []byte(`{"eventVersion"`)) {
			t.Fatalf("output %q", tw.buf.Bytes())
		}
		if got := requestIDs(t, rest); !slices.Equal(got, ids(1, 2)) {
			t.Errorf("after the torn line: %v", got)
		}
	})
}
