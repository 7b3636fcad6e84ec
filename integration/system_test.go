package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/producer"
)

// TestSystem runs shoal as users do and breaks it: the real shoal binary,
// producers (the producer library) putting keyed sequences, a fleet of
// consumer worker processes (consumer.Worker on PostgreSQL), and, while
// they run, worker SIGKILLs and restarts, a server SIGKILL and restart,
// cuts between a worker and PostgreSQL (pg_terminate_backend on its
// connections, repeatedly), cuts between the clients and the server (a TCP
// proxy that resets or blackholes connections), and a full disk under the
// server (a tmpfs shrunk to its usage, then grown again). At the end every
// acknowledged record must have been processed, in order per key, with
// redeliveries only where a lease moved before a checkpoint. See doc.go for
// the invariants and the soak mode.
func TestSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("system test with the shoal binary, worker processes and PostgreSQL; skipped with -short")
	}
	cycles := 2
	if os.Getenv("SHOAL_SOAK") != "" {
		cycles = envInt(t, "SHOAL_SOAK_CYCLES", 10)
	}
	s := newSysRun(t)
	s.setup()
	s.startProducers()
	s.progress("warm-up")
	for c := 1; c <= cycles; c++ {
		s.cycle(c)
	}
	s.finish()
}

const (
	sysStream    = "system"
	sysApp       = "system-app"
	sysShards    = 4
	sysWorkers   = 3
	sysProducers = 3
	sysKeysEach  = 8                     // keys per producer
	sysPutEvery  = 50 * time.Millisecond // per key: 24 keys, 480 records/s in all
	sysPadding   = 100                   // bytes of padding in each record
)

// sysRun is the state of one TestSystem run.
type sysRun struct {
	t       *testing.T
	begin   time.Time
	bin     string
	logs    *logBook
	dataDir string
	tmpfs   bool // dataDir is a tmpfs the test can shrink
	srv     *proc
	srvN    int
	proxy   *faultProxy
	schema  string
	ledger  *sysLedger
	workers map[string]*sysWorker  // current incarnation of each worker
	pgProxy map[string]*faultProxy // each worker's path to PostgreSQL, if TCP
	pgAddr  string                 // PostgreSQL's host:port, "" if not TCP
	incs    map[string]int

	events []sysEvent

	// producers
	prods      []*producer.Producer
	stopProd   chan struct{}
	prodWG     sync.WaitGroup
	stopOnce   sync.Once
	putCount   [sysProducers * sysKeysEach]atomic.Int64
	putErrs    atomic.Int64
	ackMu      sync.Mutex // guards the following
	acks       map[recKey]sysAck
	failed     int
	failSample []string
}

func newSysRun(t *testing.T) *sysRun {
	s := &sysRun{t: t, begin: time.Now(), bin: shoalBinary(t), logs: newLogBook(t), ledger: newSysLedger(),
		workers: map[string]*sysWorker{}, pgProxy: map[string]*faultProxy{}, incs: map[string]int{}, acks: map[recKey]sysAck{}}
	return s
}

func (s *sysRun) logf(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("[%6.1fs] "+format, append([]any{time.Since(s.begin).Seconds()}, args...)...)
}

func (s *sysRun) event(what string) {
	s.events = append(s.events, sysEvent{ts: time.Now().UnixNano(), what: what})
}

// setup mounts the data dir (a tmpfs when the test runs as root), starts
// the server and the proxy, creates the stream and starts the workers.
func (s *sysRun) setup() {
	t := s.t
	s.dataDir = t.TempDir()
	switch err := mountTmpfs(t, s.dataDir, "256m"); {
	case err == nil:
		s.tmpfs = true
	case os.Getenv("CI") == "true":
		t.Fatalf("CI=true: the disk-full fault needs a tmpfs data dir (run as root): %v", err)
	default:
		t.Logf("NOTE: the disk-full fault is skipped: %v (run as root, or with CI=true to make this a failure)", err)
	}
	s.srv = s.startServer()
	s.proxy = newFaultProxy(t, hostPort(s.srv.endpoint))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := servertest.Client(s.srv.endpoint)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(sysStream), ShardCount: aws.Int32(sysShards)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	waitActive(ctx, t, c, sysStream)
	_, s.schema = pgtest.New(t)
	pcfg := pgtest.Config(t, s.schema)
	if h := pcfg.ConnConfig.Host; h != "" && !strings.HasPrefix(h, "/") {
		s.pgAddr = net.JoinHostPort(h, strconv.Itoa(int(pcfg.ConnConfig.Port)))
	} else {
		t.Logf("NOTE: PostgreSQL is reached over a Unix socket (%q): the worker-PostgreSQL cut only terminates connections", h)
	}
	for i := range sysWorkers {
		s.startWorker(fmt.Sprintf("w%d", i))
	}
	s.logf("setup: server %s behind proxy %s, data dir on %s, %d workers, PostgreSQL schema %s",
		s.srv.endpoint, s.proxy.endpoint(), map[bool]string{true: "tmpfs", false: "the temp dir"}[s.tmpfs], sysWorkers, s.schema)
}

func (s *sysRun) startServer() *proc {
	s.srvN++
	// The disk guard off: the disk-full fault tests the last line of
	// defence, an append meeting ENOSPC (TestDiskGuard tests the guard).
	return startServer(s.t, s.bin, s.logs, fmt.Sprintf("server #%d", s.srvN), s.dataDir, "--segment-bytes", strconv.Itoa(1<<20), "--disk-high-water", "-1")
}

func hostPort(endpoint string) string { return strings.TrimPrefix(endpoint, "http://") }

// mountTmpfs mounts a tmpfs of the given size on dir and unmounts it in
// cleanup (after the server, started later, is killed).
func mountTmpfs(t *testing.T, dir, size string) error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "shoal-system", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return nil
}

func remountTmpfs(dir string, size int64) error {
	if out, err := exec.Command("mount", "-o", "remount,size="+strconv.FormatInt(size, 10), dir).CombinedOutput(); err != nil {
		return fmt.Errorf("remount tmpfs size=%d: %v: %s", size, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fsUsed returns the bytes in use on the file system holding dir.
func fsUsed(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil
}

// ---- worker processes ----

// sysWorker is one incarnation of a worker process.
type sysWorker struct {
	id      string
	label   string
	cmd     *exec.Cmd
	killed  atomic.Bool
	done    chan struct{} // closed when its output is read and it was reaped
	waitErr error         // valid after done
}

func (s *sysRun) startWorker(id string) *sysWorker {
	t := s.t
	t.Helper()
	s.incs[id]++
	w := &sysWorker{id: id, label: fmt.Sprintf("%s#%d", id, s.incs[id]), done: make(chan struct{})}
	// The test binary re-executed: TestMain sees sysWorkerEnv and runs
	// workerMain instead of the tests.
	w.cmd = exec.Command(os.Args[0], "-test.run=^$")
	if s.pgAddr != "" && s.pgProxy[id] == nil {
		s.pgProxy[id] = newFaultProxy(t, s.pgAddr)
	}
	w.cmd.Env = append(os.Environ(),
		sysWorkerEnv+"="+id,
		sysEndpointEnv+"="+s.proxy.endpoint(),
		sysSchemaEnv+"="+s.schema,
		sysStreamEnv+"="+sysStream,
		sysAppEnv+"="+sysApp,
		"DATABASE_URL="+pgtest.URL(),
	)
	if p := s.pgProxy[id]; p != nil {
		w.cmd.Env = append(w.cmd.Env, sysPGAddrEnv+"="+hostPort(p.endpoint()))
	}
	w.cmd.Stderr = s.logs.open("worker " + w.label)
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("worker %s: %v", w.label, err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", w.label, err)
	}
	ready := make(chan struct{})
	go func() {
		s.ledger.readWorker(w.label, stdout, ready, w.killed.Load)
		w.waitErr = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.kill() })
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("worker %s not ready within 60s", w.label)
	}
	select {
	case <-w.done:
		t.Fatalf("worker %s exited at start: %v", w.label, w.waitErr)
	default:
	}
	s.workers[id] = w
	return w
}

// kill SIGKILLs the worker and waits until its output is read.
func (w *sysWorker) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	w.killed.Store(true)
	_ = w.cmd.Process.Kill()
	<-w.done
}

// ---- producers ----

func (s *sysRun) startProducers() {
	t := s.t
	s.stopProd = make(chan struct{})
	// If the test stops early, the producers stop with it.
	t.Cleanup(func() {
		s.stopProducing()
		for i, p := range s.prods {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			err := p.Close(ctx) // a second Close returns the first one's result
			cancel()
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("producer %d: Close with a 10s deadline took %v (%v)", i, d.Round(time.Millisecond), err)
			}
		}
	})
	for p := range sysProducers {
		prod, err := producer.New(servertest.Client(s.proxy.endpoint()), producer.Config{
			StreamName:      sysStream,
			MaxBufferedTime: 50 * time.Millisecond,
			RecordTTL:       5 * time.Minute,
			RequestTimeout:  5 * time.Second,
			MaxBackoff:      time.Second,
			OnResult:        s.onResult,
			Logger:          zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)).Named(fmt.Sprintf("producer%d", p)),
		})
		if err != nil {
			t.Fatalf("producer.New: %v", err)
		}
		s.prods = append(s.prods, prod)
		for k := range sysKeysEach {
			idx := p*sysKeysEach + k
			key := fmt.Sprintf("p%dk%d", p, k)
			s.prodWG.Go(func() { s.produce(prod, key, idx) })
		}
	}
}

// stopProducing stops the Put loops and waits for them.
func (s *sysRun) stopProducing() {
	s.stopOnce.Do(func() { close(s.stopProd) })
	s.prodWG.Wait()
}

// produce puts key's counters 0, 1, 2, ... one every sysPutEvery until
// stopProd closes. Each Put returns before the next begins, so the
// producer's ordering guarantee covers them.
func (s *sysRun) produce(prod *producer.Producer, key string, idx int) {
	tick := time.NewTicker(sysPutEvery)
	defer tick.Stop()
	pad := strings.Repeat("x", sysPadding)
	for c := 0; ; c++ {
		select {
		case <-s.stopProd:
			return
		case <-tick.C:
		}
		s.putCount[idx].Store(int64(c + 1))
		data := key + ":" + strconv.Itoa(c) + " " + pad
		if _, err := prod.Put(context.Background(), key, []byte(data)); err != nil {
			s.putErrs.Add(1)
		}
	}
}

// onResult collects the producers' results (called on one goroutine per
// producer).
func (s *sysRun) onResult(r producer.Result) {
	data, _, _ := strings.Cut(string(r.Record.Data), " ")
	rk, ok := parseRecKey(data)
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if !ok {
		s.failSample = append(s.failSample, fmt.Sprintf("result for unknown data %q", data))
		return
	}
	if r.Err != nil {
		s.failed++
		if len(s.failSample) < 10 {
			s.failSample = append(s.failSample, fmt.Sprintf("%s: %v", rk, r.Err))
		}
		return
	}
	p, err := parsePos(r.SequenceNumber, strconv.FormatInt(r.SubSequenceNumber, 10))
	if err != nil || p.seq == "" {
		s.failSample = append(s.failSample, fmt.Sprintf("%s acknowledged with bad position %q/%d", rk, r.SequenceNumber, r.SubSequenceNumber))
		return
	}
	s.acks[rk] = sysAck{at: shardPos{r.ShardID, p}}
}

func (s *sysRun) ackCount() int {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return len(s.acks)
}

// progress waits until, for every key, a record put after the call was
// both acknowledged and processed: the whole system works again.
func (s *sysRun) progress(after string) {
	t := s.t
	t.Helper()
	start := time.Now()
	var from [sysProducers * sysKeysEach]int
	for i := range from {
		from[i] = int(s.putCount[i].Load())
	}
	deadline := start.Add(2 * time.Minute)
	for {
		waiting := s.keysWaiting(from[:])
		if len(waiting) == 0 {
			s.logf("%s: every key's new records acknowledged and processed %v later (%d acknowledged, %d processed in all)",
				after, time.Since(start).Round(time.Millisecond), s.ackCount(), s.ledger.uniqueRecords())
			return
		}
		if time.Now().After(deadline) {
			s.diagnose(waiting)
			t.Fatalf("%s: no progress within %v for keys %v (diagnosis above)", after, time.Since(start).Round(time.Second), waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keysWaiting returns the keys none of whose counters from from[i] on (the
// next 100) is both acknowledged and processed.
func (s *sysRun) keysWaiting(from []int) []string {
	var waiting []string
	for i, c0 := range from {
		key := fmt.Sprintf("p%dk%d", i/sysKeysEach, i%sysKeysEach)
		ok := false
		for c := c0; c < c0+100 && !ok; c++ {
			rk := recKey{key, c}
			s.ackMu.Lock()
			_, acked := s.acks[rk]
			s.ackMu.Unlock()
			ok = acked && s.ledger.delivered(rk)
		}
		if !ok {
			waiting = append(waiting, key)
		}
	}
	return waiting
}

// checkLeases checks the lease table after every worker shut down
// gracefully: every lease was released, and each shard's checkpoint is the
// last record processed in it.
func (s *sysRun) checkLeases() {
	t := s.t
	t.Helper()
	last := s.ledger.lastProcessed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatalf("lease table: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT shard_id, lease_owner, checkpoint_seq, checkpoint_subseq FROM `+
		pgx.Identifier{s.schema, checkpoint.DefaultTable}.Sanitize()+` WHERE application = $1 ORDER BY shard_id`, sysApp)
	if err != nil {
		t.Fatalf("lease table: %v", err)
	}
	n := 0
	for rows.Next() {
		var shard, seq string
		var owner *string
		var sub int64
		if err := rows.Scan(&shard, &owner, &seq, &sub); err != nil {
			t.Fatalf("lease table: %v", err)
		}
		n++
		if owner != nil {
			t.Errorf("lease %s still owned by %s after every worker shut down", shard, *owner)
		}
		if got := (pos{seq, sub}); got != last[shard] {
			t.Errorf("lease %s: checkpoint %s, but the last record processed is %s", shard, got, last[shard])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("lease table: %v", err)
	}
	if n != sysShards {
		t.Errorf("lease table: %d leases, want %d", n, sysShards)
	}
	s.logf("leases: all %d released, each checkpointed at its shard's last record processed", n)
}

// diagnose logs what the test knows about a stall: per waiting key the
// counters put, acknowledged and processed; the producers' buffers; the
// tenures of each shard; and the lease table.
func (s *sysRun) diagnose(keys []string) {
	t := s.t
	t.Helper()
	for _, key := range keys {
		var p, k int
		if _, err := fmt.Sscanf(key, "p%dk%d", &p, &k); err != nil {
			t.Logf("diagnosis: key %q: %v", key, err)
			continue
		}
		put := int(s.putCount[p*sysKeysEach+k].Load())
		maxAck, shard := -1, ""
		s.ackMu.Lock()
		for rk, a := range s.acks {
			if rk.key == key && rk.counter > maxAck {
				maxAck, shard = rk.counter, a.at.shard
			}
		}
		s.ackMu.Unlock()
		maxDone := s.ledger.maxCounter(key)
		t.Logf("diagnosis: key %s: %d put, highest acknowledged %d (%s), highest processed %d", key, put, maxAck, shard, maxDone)
	}
	for i, p := range s.prods {
		t.Logf("diagnosis: producer %d: %d records, %d bytes buffered", i, p.BufferedRecords(), p.BufferedBytes())
	}
	for _, line := range s.ledger.describeTenures() {
		t.Logf("diagnosis: %s", line)
	}
	for id, w := range s.workers {
		select {
		case <-w.done:
			t.Logf("diagnosis: worker %s (%s) has exited: %v", id, w.label, w.waitErr)
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Logf("diagnosis: lease table: %v", err)
		return
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT shard_id, coalesce(lease_owner, '-'), lease_counter, checkpoint_seq, checkpoint_subseq,
	coalesce(to_char(expires_at - now(), 'SS.MS'), '-'), owner_switches_since_checkpoint FROM `+pgx.Identifier{s.schema, checkpoint.DefaultTable}.Sanitize()+` ORDER BY shard_id`)
	if err != nil {
		t.Logf("diagnosis: lease table: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var shard, owner, seq, expires string
		var counter, sub, switches int64
		if err := rows.Scan(&shard, &owner, &counter, &seq, &sub, &expires, &switches); err != nil {
			t.Logf("diagnosis: lease table: %v", err)
			return
		}
		t.Logf("diagnosis: lease %s: owner %s counter %d checkpoint %s/%d expires in %s s, %d owner switches since checkpoint", shard, owner, counter, seq, sub, expires, switches)
	}
}

// ---- faults ----

// cycle injects every fault once.
func (s *sysRun) cycle(c int) {
	s.workerKill(c, "w0", 500*time.Millisecond)
	s.pgCut(c, "w1")
	s.workerPause(c, "w2")
	s.proxyCut(c)
	s.serverKill(c)
	s.diskFull(c)
	// Long enough for the others to take its leases; when it is back it
	// steals some.
	s.workerKill(c, fmt.Sprintf("w%d", c%sysWorkers), 2*sysFailover)
}

// workerKill SIGKILLs a worker process and starts a new one in its place
// after a pause, so that its leases expire or are taken meanwhile.
func (s *sysRun) workerKill(c int, id string, pause time.Duration) {
	what := fmt.Sprintf("cycle %d: SIGKILL worker %s, restart after %v", c, s.workers[id].label, pause)
	s.event(what)
	s.workers[id].kill()
	time.Sleep(pause)
	w := s.startWorker(id)
	s.logf("%s; restarted as %s", what, w.label)
	s.progress(what)
}

// workerPause stops a worker process (SIGSTOP) for twice the failover
// time, as a long GC pause or an overloaded host would, and resumes it: its
// leases expire and move meanwhile, and on waking it may finish the batch
// in hand (processing is not fenced) but its checkpoints must fail.
func (s *sysRun) workerPause(c int, id string) {
	w := s.workers[id]
	what := fmt.Sprintf("cycle %d: SIGSTOP worker %s for %v", c, w.label, 2*sysFailover)
	s.event(what)
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	time.Sleep(2 * sysFailover)
	if err := w.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("%s: SIGCONT: %v", what, err)
	}
	s.progress(what)
	s.logf("%s: %d of its tenures ended with LeaseLost meanwhile", what, s.ledger.lostDuring(w.label, start, time.Now()))
}

// pgCut cuts a worker off PostgreSQL: first its backends are terminated
// every 50ms for 2s (pg_terminate_backend on its application_name), so its
// connections keep breaking; then its proxy to the database blackholes
// every connection for twice the failover time, a partition: its renewals
// and checkpoints fail, its leases expire and move to the other workers,
// and it must find that out when the path comes back.
func (s *sysRun) pgCut(c int, id string) {
	w := s.workers[id]
	what := fmt.Sprintf("cycle %d: cut worker %s from PostgreSQL", c, w.label)
	s.event(what)
	start := time.Now()
	n := 0
	for end := start.Add(2 * time.Second); time.Now().Before(end); {
		n += pgtest.Terminate(s.t, sysAppName(s.schema, id))
		time.Sleep(50 * time.Millisecond)
	}
	if n == 0 {
		s.t.Errorf("%s: no connection of the worker found to terminate (application_name %s)", what, sysAppName(s.schema, id))
	}
	part := time.Duration(0)
	if p := s.pgProxy[id]; p != nil {
		p.setMode(proxyBlackhole)
		time.Sleep(2 * sysFailover)
		p.setMode(proxyPass)
		part = 2 * sysFailover
	}
	s.logf("%s: %d connections terminated in 2s, then partitioned for %v", what, n, part)
	s.progress(what)
	s.logf("%s: %d of its tenures ended with LeaseLost meanwhile", what, s.ledger.lostDuring(w.label, start, time.Now()))
}

// proxyCut breaks the network between the clients and the server: for 2s
// the server's replies are dropped (requests take effect, their callers
// time out: unknown outcomes, which the producers retry), then every
// connection is reset for 3s, then new ones are blackholed for 2s.
func (s *sysRun) proxyCut(c int) {
	what := fmt.Sprintf("cycle %d: network cut between clients and server", c)
	s.event(what)
	r0 := s.proxy.resets.Load()
	s.proxy.setMode(proxyDropReplies)
	time.Sleep(2 * time.Second)
	s.proxy.setMode(proxyReset)
	time.Sleep(3 * time.Second)
	s.proxy.setMode(proxyBlackhole)
	time.Sleep(2 * time.Second)
	s.proxy.setMode(proxyPass)
	s.logf("%s: 2s of dropped replies, 3s of resets, 2s of blackhole; %d connections reset", what, s.proxy.resets.Load()-r0)
	s.progress(what)
}

// serverKill SIGKILLs the server and restarts it on the same data dir.
func (s *sysRun) serverKill(c int) {
	what := fmt.Sprintf("cycle %d: SIGKILL server", c)
	s.event(what)
	if s.srv.kill() {
		s.t.Errorf("%s: the server had exited on its own: %v", what, s.srv.waitErr)
	}
	start := time.Now()
	s.srv = s.startServer()
	s.proxy.setTarget(hostPort(s.srv.endpoint))
	s.logf("%s: restarted and serving in %v", what, time.Since(start).Round(time.Millisecond))
	s.progress(what)
}

// diskFull shrinks the server's tmpfs to what it uses, fills it until puts
// fail, checks the error is a clean, retriable InternalFailure and the
// server keeps running, then grows the tmpfs and waits for puts to succeed.
func (s *sysRun) diskFull(c int) {
	t := s.t
	if !s.tmpfs {
		return
	}
	what := fmt.Sprintf("cycle %d: disk full", c)
	s.event(what)
	// Shrink the tmpfs to what it holds plus 512 KiB. The producers keep
	// writing meanwhile: if they outgrow the new size first, the remount
	// fails, and is tried again.
	for attempt := 1; ; attempt++ {
		used, err := fsUsed(s.dataDir)
		if err != nil {
			t.Fatalf("%s: statfs: %v", what, err)
		}
		err = remountTmpfs(s.dataDir, used+512<<10)
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A direct client, without retries, to see the server's own answer.
	direct := servertest.Client(s.srv.endpoint, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	filler := make([]byte, 128<<10)
	var putErr error
	fills := 0
	for deadline := time.Now().Add(time.Minute); putErr == nil; fills++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s: puts still succeed after %d filler records", what, fills)
		}
		copy(filler, "filler:"+strconv.Itoa(fills)+" ")
		_, putErr = direct.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(sysStream), PartitionKey: aws.String("filler"), Data: filler})
	}
	var ae smithy.APIError
	if !errors.As(putErr, &ae) || ae.ErrorCode() != "InternalFailure" {
		t.Errorf("%s: PutRecord on a full disk: %v, want InternalFailure", what, putErr)
	}
	// PutRecords reports it per entry.
	out, err := direct.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(sysStream), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("filler"), Data: filler}}})
	switch {
	case err != nil:
		t.Errorf("%s: PutRecords on a full disk: %v, want a result with a failed entry", what, err)
	case aws.ToInt32(out.FailedRecordCount) != 1 || aws.ToString(out.Records[0].ErrorCode) != "InternalFailure":
		t.Errorf("%s: PutRecords on a full disk: FailedRecordCount %d, entry %+v; want the entry failed with InternalFailure", what, aws.ToInt32(out.FailedRecordCount), out.Records[0])
	}
	// Reads still work.
	if _, err := direct.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(sysStream)}); err != nil {
		t.Errorf("%s: ListShards on a full disk: %v", what, err)
	}
	acked0 := s.ackCount()
	time.Sleep(2 * time.Second) // the producers keep trying
	if s.srv.exited() {
		t.Fatalf("%s: the server exited: %v", what, s.srv.waitErr)
	}
	duringFull := s.ackCount() - acked0
	if err := remountTmpfs(s.dataDir, 512<<20); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	start := time.Now()
	var last error
	for {
		_, last = direct.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(sysStream), PartitionKey: aws.String("filler"), Data: []byte("filler:after")})
		if last == nil {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%s: puts still fail a minute after space was freed: %v", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.logf("%s: %d filler records of 128 KiB until a put failed with %q; %d records acknowledged in 2s of full disk; puts succeed %v after freeing space",
		what, fills, errorCode(putErr), duringFull, time.Since(start).Round(time.Millisecond))
	s.progress(what)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}

// ---- the end ----

// finish stops the producers, waits until every acknowledged record was
// processed, stops the workers gracefully, and checks the invariants.
func (s *sysRun) finish() {
	t := s.t
	s.stopProducing()
	for i, p := range s.prods {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := p.Close(ctx); err != nil {
			t.Errorf("producer %d Close: %v", i, err)
		}
		cancel()
	}
	s.ackMu.Lock()
	acks := make(map[recKey]sysAck, len(s.acks))
	for k, v := range s.acks {
		acks[k] = v
	}
	failed, sample := s.failed, slices.Clone(s.failSample)
	s.ackMu.Unlock()
	putCount := map[string]int{}
	puts := 0
	for p := range sysProducers {
		for k := range sysKeysEach {
			n := int(s.putCount[p*sysKeysEach+k].Load())
			putCount[fmt.Sprintf("p%dk%d", p, k)] = n
			puts += n
		}
	}
	s.logf("producers closed: %d records put (%d Put errors), %d acknowledged, %d failed", puts, s.putErrs.Load(), len(acks), failed)
	for _, f := range sample {
		t.Logf("producer failure: %s", f)
	}
	if len(acks) == 0 {
		t.Fatal("no record acknowledged")
	}

	// Wait until every acknowledged record was processed.
	start := time.Now()
	for {
		missing := 0
		for rk := range acks {
			if !s.ledger.delivered(rk) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Errorf("%d acknowledged records still not processed 2 minutes after the producers stopped", missing)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.logf("every acknowledged record processed %v after the producers stopped", time.Since(start).Round(time.Millisecond))

	// Graceful stop: every worker exits 0 within its shutdown timeout.
	for _, w := range s.workers {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, id := range slices.Sorted(maps.Keys(s.workers)) {
		w := s.workers[id]
		select {
		case <-w.done:
			if w.waitErr != nil {
				t.Errorf("worker %s exited after SIGTERM with %v, want status 0", w.label, w.waitErr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("worker %s did not exit within 60s of SIGTERM", w.label)
		}
	}

	s.checkLeases()

	rep, problems := s.ledger.check(acks, putCount, s.events)
	for _, p := range problems {
		t.Error(p)
	}
	s.logf("consumers: %d deliveries of %d positions (%d distinct records, %d disk fillers); %d redeliveries, at most %d in one tenure; "+
		"%d records stored twice by producer retries; %d tenures (ends: %v); %d checkpoint failures",
		rep.deliveries, rep.uniquePositions, rep.uniqueRecords, rep.fillers, rep.redeliveries, rep.maxRedeliveriesPerTenure,
		rep.producerDuplicates, rep.tenures, rep.tenureEnds, rep.ckptFails)
	s.logf("%d records processed by a worker after its lease had moved to another (processing is not fenced); longest overlap %v; by the fault before the move: %v",
		rep.zombieDeliveries, rep.maxOverlap.Round(time.Millisecond), rep.zombieEvent)
	s.logf("redeliveries by how the previous tenure of the shard ended: %v", rep.redeliveryCause)
	s.logf("redeliveries by the last fault before the redelivering tenure started: %v", rep.redeliveryEvent)
	unacked := rep.uniqueRecords - len(acks)
	s.logf("invariants: %d acknowledged records, %d never processed; %d processed records not acknowledged (failed or unknown outcome); test failed: %v; total %v",
		len(acks), rep.lost, unacked, t.Failed(), time.Since(s.begin).Round(time.Millisecond))
}
