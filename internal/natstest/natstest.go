// Package natstest runs real nats-server processes on loopback for tests:
// it builds the pinned nats-server release from the Go module proxy once
// into a cache, and starts clusters whose nodes tests can kill, pause and
// restart.
//
// The machine's own NATS (port 4222) is never used: the servers here take
// free loopback ports, keep JetStream in the test's temporary directory, and
// sync every write to disk (sync_interval: always), as shoal requires.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the nats-server release the tests run.
const Version = "v2.15.3"

const module = "github.com/nats-io/nats-server/v2"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the nats-server binary, building it on first
// use into $SHOAL_NATS_CACHE (default: the user cache directory's
// shoal/nats-server-<Version>). Test packages that run at once share the
// build through a lock file. It fails tb when the build fails.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		tb.Fatalf("natstest: build nats-server %s: %v", Version, buildErr)
	}
	return buildPath
}

func build() (string, error) {
	dir := os.Getenv("SHOAL_NATS_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "shoal", "nats-server-"+Version)
	}
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	tmp, err := os.MkdirTemp(dir, "build")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "install", module+"@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "CGO_ENABLED=0")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", module, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nats-server"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Node is one nats-server process of a Cluster.
type Node struct {
	Name        string
	ClientPort  int
	ClusterPort int
	MonitorPort int
	Dir         string // JetStream store and log file

	mu  sync.Mutex
	cmd *exec.Cmd
	wg  sync.WaitGroup
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.ClientPort) }

// Cluster is a set of nats-server processes routed to each other, with
// JetStream enabled. Cleanup kills every process.
type Cluster struct {
	tb    testing.TB
	bin   string
	Nodes []*Node
}

// Options tune a cluster.
type Options struct {
	// SyncInterval is JetStream's sync_interval; "" means "always". The
	// negative-control tests set the default lazy "2m".
	SyncInterval string
	// MaxPayload is max_payload; "" means 8MB.
	MaxPayload string
}

// StartCluster starts n nodes (n = 1 makes a single server without routes)
// and waits until JetStream is ready on all of them.
func StartCluster(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, bin: Binary(tb)}
	ports := freePorts(tb, 3*n)
	root := tb.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Name: fmt.Sprintf("n%d", i+1), ClientPort: ports[3*i], ClusterPort: ports[3*i+1], MonitorPort: ports[3*i+2],
			Dir: filepath.Join(root, fmt.Sprintf("n%d", i+1)),
		})
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.Dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nd.Dir, "nats.conf"), []byte(c.config(nd, opts)), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(c.killAll)
	for i := range c.Nodes {
		c.Start(i)
	}
	c.WaitReady(time.Minute)
	return c
}

func (c *Cluster) config(nd *Node, opts Options) string {
	sync := opts.SyncInterval
	if sync == "" {
		sync = "always"
	}
	payload := opts.MaxPayload
	if payload == "" {
		payload = "8MB"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\nmax_payload: %s\n", nd.Name, nd.ClientPort, nd.MonitorPort, payload)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  sync_interval: %s\n  max_file_store: 1G\n  max_memory_store: 128M\n}\n", filepath.Join(nd.Dir, "js"), sync)
	if len(c.Nodes) > 1 {
		var routes []string
		for _, o := range c.Nodes {
			if o != nd {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: shoaltest\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", nd.ClusterPort, strings.Join(routes, ", "))
	}
	return b.String()
}

// URLs returns every node's client URL, comma-separated (the form
// nats.Connect and shoal's --nats-url take).
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// Start starts node i (again, after Kill or Stop), keeping its store.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		c.tb.Fatalf("natstest: node %s is running", nd.Name)
	}
	logf, err := os.OpenFile(filepath.Join(nd.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.tb.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", filepath.Join(nd.Dir, "nats.conf"))
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		c.tb.Fatalf("natstest: start %s: %v", nd.Name, err)
	}
	nd.cmd = cmd
	nd.wg.Add(1)
	go func() {
		defer nd.wg.Done()
		_ = cmd.Wait()
		_ = logf.Close()
	}()
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) { c.signalStop(i, syscall.SIGKILL) }

// Stop asks node i to shut down (SIGTERM) and waits for it to exit.
func (c *Cluster) Stop(i int) { c.signalStop(i, syscall.SIGTERM) }

func (c *Cluster) signalStop(i int, sig syscall.Signal) {
	nd := c.Nodes[i]
	nd.mu.Lock()
	cmd := nd.cmd
	nd.cmd = nil
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process must run to exit on SIGTERM
	_ = cmd.Process.Signal(sig)
	nd.wg.Wait()
}

// Pause stops node i with SIGSTOP (it keeps its sockets but answers
// nothing); Resume continues it.
func (c *Cluster) Pause(i int) { c.signal(i, syscall.SIGSTOP) }

// Resume continues a paused node.
func (c *Cluster) Resume(i int) { c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(sig)
	}
}

// Running reports whether node i's process is started (it may be paused).
func (c *Cluster) Running(i int) bool {
	nd := c.Nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

func (c *Cluster) killAll() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// NodeByName returns the index of the node named name, or -1.
func (c *Cluster) NodeByName(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// WaitReady waits until every running node's /healthz reports JetStream
// healthy (a meta leader elected, its streams current), failing tb after
// timeout. It polls the processes' monitoring endpoints: an external
// process gives no other signal.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, nd := range c.Nodes {
		if !c.Running(i) {
			continue
		}
		if err := waitHealthy(ctx, nd); err != nil {
			c.tb.Fatalf("natstest: node %s not ready within %v: %v (log: %s)", nd.Name, timeout, err, filepath.Join(nd.Dir, "server.log"))
		}
	}
}

func waitHealthy(ctx context.Context, nd *Node) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.MonitorPort)
	var last error
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("healthz status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(delay):
		}
	}
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
