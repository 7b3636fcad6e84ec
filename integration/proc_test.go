package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

const modulePath = "github.com/shoalstream/shoal"

var (
	buildOnce sync.Once
	buildDir  string // temporary directory holding the binary, removed by TestMain
	binPath   string
	buildErr  error
	buildTime time.Duration
)

func TestMain(m *testing.M) {
	if os.Getenv(sysWorkerEnv) != "" {
		// A consumer worker process of TestSystem, not a test run.
		os.Exit(workerMain())
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// shoalBinary builds ./cmd/shoal once per test binary run and returns its path.
func shoalBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		defer func() { buildTime = time.Since(start) }()
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "shoal-integration-"); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(buildDir, "shoal")
		args := []string{"build", "-o", binPath}
		args = append(args, strings.Fields(os.Getenv("SHOAL_BUILD_FLAGS"))...)
		args = append(args, "./cmd/shoal")
		cmd := exec.Command(goTool(), args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// moduleRoot walks up from the working directory (integration/ under "go
// test") to the directory whose go.mod declares this module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// goTool returns the go command: "go test" puts $GOROOT/bin first on PATH.
// A test binary run by hand without go on PATH needs $GOROOT set.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go" // not found: the build fails and says so
}

// ---- server output ----

// logBook collects the output of every server process a test starts and
// prints it through t.Log only if the test failed.
type logBook struct {
	mu   sync.Mutex
	logs []*procLog
}

func newLogBook(t testing.TB) *logBook {
	lb := &logBook{}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lb.mu.Lock()
		defer lb.mu.Unlock()
		for _, l := range lb.logs {
			out, dropped := l.contents()
			if out == "" && dropped == 0 {
				t.Logf("--- server %q: no output ---", l.label)
				continue
			}
			t.Logf("--- server %q output (%d bytes dropped) ---\n%s", l.label, dropped, out)
		}
	})
	return lb
}

func (lb *logBook) open(label string) *procLog {
	l := &procLog{label: label}
	lb.mu.Lock()
	lb.logs = append(lb.logs, l)
	lb.mu.Unlock()
	return l
}

// procLog is an io.Writer safe for concurrent use, bounded to 1 MiB.
type procLog struct {
	label   string
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
}

const maxProcLog = 1 << 20

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len()+len(b) > maxProcLog {
		l.dropped += len(b)
	} else {
		l.buf.Write(b)
	}
	return len(b), nil
}

func (l *procLog) contents() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String(), l.dropped
}

// ---- server processes ----

// proc is one running "shoal server" child process.
type proc struct {
	label    string
	endpoint string
	cmd      *exec.Cmd
	log      *procLog
	done     chan struct{} // closed once Wait returned
	waitErr  error         // valid after done
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process (if it still runs) and reaps it. It reports
// whether the process had already ended on its own.
func (p *proc) kill() (alreadyExited bool) {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return false
		}
	}
	// It ended in the window between the check and the signal, by itself.
	return true
}

// terminate sends SIGTERM and waits up to timeout for the process to end.
func (p *proc) terminate(timeout time.Duration) (exitErr error, took time.Duration, ok bool) { //nolint:staticcheck // ST1008: exitErr, the process's exit status, leads on purpose: callers read err, took, ok
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		return err, 0, false
	}
	select {
	case <-p.done:
		return p.waitErr, time.Since(start), true
	case <-time.After(timeout):
		return nil, time.Since(start), false
	}
}

// startServer starts "shoal server" on dataDir and waits until it serves
// ListStreams. A port taken between choosing and binding it is retried.
func startServer(t *testing.T, bin string, logs *logBook, label, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--data-dir", dataDir, "--fsync", "always", "--log-level", "warn"}, extra...)
	// Generous: after a crash the server recovers every shard log before it
	// listens, on a machine other tests load too.
	return launchServer(t, bin, logs, label, args, func(p *proc) error { return p.waitReady(time.Minute) })
}

// launchServer starts "shoal server --addr <a free port>" with args and
// waits until ready says it serves. A port taken between choosing and
// binding it is retried.
func launchServer(t *testing.T, bin string, logs *logBook, label string, args []string, ready func(*proc) error) *proc {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= 5; attempt++ {
		addr := freeAddr(t)
		l := logs.open(fmt.Sprintf("%s (attempt %d, %s)", label, attempt, addr))
		cmd := exec.Command(bin, append([]string{"server", "--addr", addr}, args...)...)
		cmd.Stdout, cmd.Stderr = l, l
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		p := &proc{label: label, endpoint: "http://" + addr, cmd: cmd, log: l, done: make(chan struct{})}
		go func() { p.waitErr = cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { p.kill() })
		err := ready(p)
		if err == nil {
			return p
		}
		lastErr = err
		p.kill()
		if out, _ := l.contents(); strings.Contains(out, "address already in use") {
			continue
		}
		break
	}
	t.Fatalf("server %s did not start: %v", label, lastErr)
	return nil
}

// freeAddr picks a loopback port that is free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return addr
}

// waitReady polls ListStreams until it succeeds, the process exits, or the
// deadline passes.
func (p *proc) waitReady(timeout time.Duration) error {
	return p.waitReadyWith(servertest.Client(p.endpoint, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }), timeout)
}

// waitReadyWith is waitReady with the client c (one signing with a key a
// server with --auth-config knows).
func (p *proc) waitReadyWith(c *kinesis.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("process exited before serving: %v", p.waitErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not serving after %v: %v", timeout, last)
}
