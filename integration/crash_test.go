package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// harness runs one stream's worth of server incarnations on one data dir.
type harness struct {
	t       *testing.T
	bin     string
	logs    *logBook
	dataDir string
	args    []string // extra server flags
	rng     *rand.Rand
	m       *model
	begin   time.Time
}

func newHarness(t *testing.T, stream string, extraArgs ...string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("runs, crashes and restarts the shoal binary; skipped with -short")
	}
	begin := time.Now()
	bin := shoalBinary(t)
	seed := testSeed(t)
	t.Logf("seed %#x (SHOAL_CRASH_SEED=%#x repeats the workload, not the timing)", seed, seed)
	return &harness{
		t: t, bin: bin, logs: newLogBook(t), dataDir: t.TempDir(), args: extraArgs,
		rng: rand.New(rand.NewPCG(seed, 0)), m: newModel(t, seed, stream), begin: begin,
	}
}

func (h *harness) start(label string) *proc {
	h.t.Helper()
	return startServer(h.t, h.bin, h.logs, label, h.dataDir, h.args...)
}

// createStream creates the harness's stream on p and checks it is empty.
func (h *harness) createStream(p *proc, shards int32) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.m.createStream(ctx, servertest.Client(p.endpoint), shards)
	h.m.verify(p.endpoint, "new stream")
}

// killDelay is how long writers run before the crash: 50..400 ms.
func (h *harness) killDelay() time.Duration {
	return 50*time.Millisecond + time.Duration(h.rng.Int64N(int64(350*time.Millisecond)))
}

// crashCycle runs the writers against p and SIGKILLs p after delay while
// they are running; it returns once the process and the writers are gone.
func (h *harness) crashCycle(p *proc, name string, delay time.Duration) {
	t := h.t
	t.Helper()
	ph := h.m.startWriters(p.endpoint, name, 0, false)
	time.Sleep(delay)
	inflight := ph.awaitInFlight()
	died := p.exited()
	_ = p.cmd.Process.Kill()
	ph.halt()
	<-p.done
	ph.wait()
	if died {
		t.Errorf("%s: the server exited on its own before the SIGKILL: %v", name, p.waitErr)
	}
	h.m.st.kills++
	if inflight > 0 {
		h.m.st.killsInFlight++
	}
	t.Logf("SIGKILL after %v with %d calls in flight; %s", delay.Round(time.Millisecond), inflight, ph.summary())
}

// summary logs the totals of the test.
func (h *harness) summary(what string) {
	s := h.m.st
	outcome := "all present at every verification"
	if h.t.Failed() {
		outcome = "NOT all present and correct (see the errors above)"
	}
	h.t.Logf("summary: %s; %d PutRecords calls (%d failed, %d failed entries); %d records acknowledged (%.1f MiB), %s; "+
		"unknown-outcome records: %d found, %d not found; %d SIGKILLs, %d with calls in flight; %d verifications read %d records (%.1f MiB, at most %d at once) in %v; "+
		"binary build (once per run) %v; total %v",
		what, s.calls, s.errCalls, s.failedEntries, s.acked, float64(s.ackedBytes)/(1<<20), outcome,
		s.unknownFound, s.unknownLost, s.kills, s.killsInFlight, s.verifications, s.readRecords, float64(s.readBytes)/(1<<20), s.maxVerifyRecords,
		s.verifyTime.Round(time.Millisecond), buildTime.Round(time.Millisecond), time.Since(h.begin).Round(time.Millisecond))
}

// stopGracefully SIGTERMs p and requires a clean exit within a few seconds.
func (h *harness) stopGracefully(p *proc, name string) {
	t := h.t
	t.Helper()
	err, took, ok := p.terminate(gracefulTimeout)
	if !ok {
		t.Fatalf("%s: the server did not exit within %v of SIGTERM", name, gracefulTimeout)
	}
	if err != nil {
		t.Errorf("%s: the server exited after SIGTERM with %v, want exit status 0", name, err)
	}
	t.Logf("%s: SIGTERM: exited in %v%s", name, took.Round(time.Millisecond), slowNote(took))
}

func slowNote(took time.Duration) string {
	if took < slowExit {
		return ""
	}
	return " (slow: probably net/http waiting out a client connection that never sent a request; see gracefulTimeout)"
}

// gracefulTimeout bounds the exit after SIGTERM. A drain takes milliseconds,
// but net/http's Server.Shutdown waits until a connection that never sent a
// request is 5 s old before closing it, and Go's http.Transport leaves such
// connections behind (a dial for a request that another connection served
// first), so a shutdown with clients attached can take about 5.5 s.
const gracefulTimeout = 10 * time.Second

// slowExit is the exit time above which the tests log that the shutdown
// waited for idle connections.
const slowExit = 2 * time.Second

func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// TestCrashRecovery crashes the server with SIGKILL under concurrent
// PutRecords, again and again on the same data dir, and after every restart
// checks that every acknowledged record is present, in order and byte-exact
// (see the package documentation for the full list of checks).
func TestCrashRecovery(t *testing.T) {
	cycles := envInt(t, "SHOAL_CRASH_CYCLES", 20)
	// Small segments make the writers roll segments, so crashes also hit
	// rolls and recovery scans several segment files per shard.
	h := newHarness(t, "crash", "--segment-bytes", strconv.Itoa(1<<20))
	p := h.start("initial")
	h.createStream(p, 4)
	for cycle := 1; cycle <= cycles; cycle++ {
		name := fmt.Sprintf("cycle %d", cycle)
		h.crashCycle(p, name, h.killDelay())
		p = h.start(name + " restart")
		h.m.verify(p.endpoint, name)
		if t.Failed() {
			t.FailNow() // later cycles would only repeat the report
		}
	}
	// A graceful stop after all those crashes loses nothing either.
	h.stopGracefully(p, "final")
	p = h.start("final restart")
	h.m.verify(p.endpoint, "final")
	h.summary(fmt.Sprintf("%d crash cycles", cycles))
}

// ---- torn tails ----

// Shard log batch layout (internal/storage/format.go), all little endian:
// "SL", version 1, flags 0, uint32 length of the whole batch, uint32 CRC-32C
// of the bytes from the count on, uint16 record count, int64 arrival unix ms,
// then per record uvarint key length, key, uvarint data length, data.
const batchHeaderLen = 22

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeBatch builds a valid batch of records with the given keys.
func encodeBatch(keys []string, data [][]byte) []byte {
	b := make([]byte, batchHeaderLen)
	for i := range keys {
		b = binary.AppendUvarint(b, uint64(len(keys[i])))
		b = append(b, keys[i]...)
		b = binary.AppendUvarint(b, uint64(len(data[i])))
		b = append(b, data[i]...)
	}
	b[0], b[1], b[2], b[3] = 'S', 'L', 1, 0
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[12:], uint16(len(keys)))
	binary.LittleEndian.PutUint64(b[14:], uint64(time.Now().UnixMilli()))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[12:], castagnoli))
	return b
}

// fakeBatch is a valid batch of records that look like the writers' but were
// never sent (their counters are far beyond any writer's): if recovery kept
// any of them, verification would report a record that was never sent.
func (h *harness) fakeBatch() []byte {
	n := 1 + h.rng.IntN(5)
	keys := make([]string, n)
	data := make([][]byte, n)
	for i := range n {
		id := newID(h.rng.IntN(numWriters), h.rng.IntN(keysPerWriter), 1<<40+uint64(h.rng.IntN(1000)))
		keys[i], data[i] = id.String(), h.m.wl.payload(id)
	}
	return encodeBatch(keys, data)
}

func (h *harness) garbage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	return b
}

// tailDamages are the tails appended to a segment after a crash. Each one is
// something a crash or a bad disk can leave behind.
var tailDamages = []struct {
	name string
	make func(h *harness) []byte
}{
	{"garbage then partial batch", func(h *harness) []byte {
		b := h.fakeBatch()
		return append(h.garbage(1+h.rng.IntN(4096)), b[:batchHeaderLen+h.rng.IntN(len(b)-batchHeaderLen)]...)
	}},
	{"partial batch", func(h *harness) []byte {
		b := h.fakeBatch()
		return b[:batchHeaderLen+h.rng.IntN(len(b)-batchHeaderLen)]
	}},
	{"partial header", func(h *harness) []byte {
		return h.fakeBatch()[:1+h.rng.IntN(batchHeaderLen-1)]
	}},
	{"complete batch with a checksum mismatch", func(h *harness) []byte {
		b := h.fakeBatch()
		b[batchHeaderLen+h.rng.IntN(len(b)-batchHeaderLen)] ^= 1 << h.rng.IntN(8)
		return b
	}},
	{"random garbage", func(h *harness) []byte { return h.garbage(1 + h.rng.IntN(8192)) }},
	{"zeros", func(h *harness) []byte { return make([]byte, 4096) }},
	{"header whose length runs past the end of the file", func(h *harness) []byte {
		b := h.fakeBatch()
		binary.LittleEndian.PutUint32(b[4:], 1<<20)
		return b
	}},
}

// newestSegment returns the path of the newest segment file of a shard.
func (h *harness) newestSegment(shard string) (path string, segments int) {
	t := h.t
	t.Helper()
	files, err := filepath.Glob(filepath.Join(h.dataDir, "streams", "*", shard, "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segment files of %s under %s (err %v)", shard, h.dataDir, err)
	}
	if dirs := filepath.Dir(filepath.Dir(files[0])); len(files) > 1 {
		for _, f := range files {
			if filepath.Dir(filepath.Dir(f)) != dirs {
				t.Fatalf("segments of %s under two stream directories: %s and %s", shard, files[0], f)
			}
		}
	}
	slices.Sort(files) // 20-digit zero-padded base offsets
	return files[len(files)-1], len(files)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCrashRecoveryTornTail crashes the server, appends a damaged tail to
// the newest segment of one shard, and restarts it: recovery must cut the
// tail off, keep every acknowledged record, and accept new writes after it.
func TestCrashRecoveryTornTail(t *testing.T) {
	// Small segments, so that the newest segment is not the only one.
	h := newHarness(t, "torn", "--segment-bytes", strconv.Itoa(256<<10))
	p := h.start("initial")
	h.createStream(p, 4)
	for round, dmg := range tailDamages {
		name := fmt.Sprintf("round %d (%s)", round+1, dmg.name)
		h.crashCycle(p, name, h.killDelay())

		shard := h.m.shardIDs[round%len(h.m.shardIDs)]
		seg, segments := h.newestSegment(shard)
		before := fileSize(t, seg)
		tail := dmg.make(h)
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(tail); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: appended %d bytes to %s (%d bytes, newest of %d segments)", name, len(tail), filepath.Base(seg), before, segments)

		p = h.start(name + " restart")
		// Recovery truncated the damage away (and perhaps a batch the crash
		// tore); it never keeps bytes past the valid prefix.
		if after := fileSize(t, seg); after > before {
			t.Errorf("%s: %s has %d bytes after recovery; it had %d before the damaged tail was appended", name, seg, after, before)
		}
		h.m.verify(p.endpoint, name+" after restart")

		// New writes after the repaired tail succeed and read back.
		acked := len(h.m.acks)
		ph := h.m.startWriters(p.endpoint, name+" writes after restart", 3, false)
		ph.wait()
		for w, res := range ph.results {
			if res.errCalls > 0 || len(res.unknown) > 0 {
				t.Errorf("%s: writer %d after restart: %d of %d calls failed, %d records not acknowledged; first error: %v",
					name, w, res.errCalls, res.calls, len(res.unknown), res.firstErr)
			}
		}
		onShard := 0
		for _, a := range h.m.acks {
			if a.round == ph.name && a.shard == shard {
				onShard++
			}
		}
		if onShard == 0 {
			t.Errorf("%s: no record was written to the damaged shard %s after the restart", name, shard)
		}
		t.Logf("%s; %d of them on the damaged shard %s", ph.summary(), onShard, shard)
		h.m.verify(p.endpoint, name+" after new writes")
		if len(h.m.acks) <= acked {
			t.Errorf("%s: nothing acknowledged after the restart", name)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	h.stopGracefully(p, "final")
	h.summary(fmt.Sprintf("%d damaged tails", len(tailDamages)))
}

// TestGracefulShutdown sends SIGTERM while writers are running: the server
// must drain and exit 0 within a few seconds, answer every request it took
// without an error, and keep every acknowledged record.
func TestGracefulShutdown(t *testing.T) {
	h := newHarness(t, "graceful")
	p := h.start("initial")
	h.createStream(p, 4)
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		name := fmt.Sprintf("round %d", round)
		// Writers keep going through the drain until their first failed
		// call (the listener is closed), or until the process has exited.
		ph := h.m.startWriters(p.endpoint, name, 0, true)
		time.Sleep(h.killDelay())
		inflight := ph.awaitInFlight()
		err, took, ok := p.terminate(gracefulTimeout)
		ph.halt()
		ph.wait()
		if !ok {
			t.Fatalf("%s: the server did not exit within %v of SIGTERM (%d calls were in flight)", name, gracefulTimeout, inflight)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("%s: after SIGTERM the server exited with %v, want exit status 0", name, err)
		} else if err != nil {
			t.Errorf("%s: waiting for the server: %v", name, err)
		}
		t.Logf("SIGTERM with %d calls in flight: exited in %v%s; %s", inflight, took.Round(time.Millisecond), slowNote(took), ph.summary())
		// Shutdown drains in-flight requests: none of them may fail with an
		// error response. (Calls made after the listener closed fail to
		// connect; those are transport errors.)
		for w, res := range ph.results {
			for _, e := range res.apiErrors[:min(len(res.apiErrors), 3)] {
				t.Errorf("%s: writer %d got an error response during graceful shutdown: %v", name, w, e)
			}
		}

		foundBefore := h.m.st.unknownFound
		p = h.start(name + " restart")
		h.m.verify(p.endpoint, name)
		// A request the server started processing gets its response before
		// the connection closes, so a call that failed was never applied.
		if n := h.m.st.unknownFound - foundBefore; n > 0 {
			t.Errorf("%s: %d records whose PutRecords failed during graceful shutdown are present: the server applied a request without answering it", name, n)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	h.stopGracefully(p, "final")
	h.summary(fmt.Sprintf("%d graceful shutdowns", rounds))
}
