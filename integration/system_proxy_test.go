package integration

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxyMode is what a faultProxy does with connections.
type proxyMode int32

const (
	// proxyPass forwards every connection to the target.
	proxyPass proxyMode = iota
	// proxyReset resets every connection at once (RST): a refused or
	// broken network path.
	proxyReset
	// proxyBlackhole accepts connections and forwards nothing: requests
	// hang until the mode changes, when they are reset. Connections that
	// were forwarding when the mode was set are reset.
	proxyBlackhole
	// proxyDropReplies forwards requests and new connections but discards
	// what the server sends back: requests take effect and their callers
	// never learn it. Leaving the mode resets every connection (their
	// streams lost bytes).
	proxyDropReplies
)

func (m proxyMode) String() string {
	switch m {
	case proxyPass:
		return "pass"
	case proxyReset:
		return "reset"
	case proxyBlackhole:
		return "blackhole"
	case proxyDropReplies:
		return "drop-replies"
	}
	return "unknown"
}

// faultProxy is a TCP proxy on loopback between the clients (producers and
// consumer workers) and the shoal server. It keeps one address while the
// server behind it restarts on new ports, and it can cut the network path.
// Its goroutines belong to it and end in Close.
type faultProxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	mode   atomic.Int32

	mu      sync.Mutex // guards the following
	conns   map[net.Conn]struct{}
	held    map[net.Conn]struct{} // blackholed client connections
	closed  bool
	changed chan struct{} // closed and replaced at every mode change

	wg       sync.WaitGroup
	accepted atomic.Int64
	resets   atomic.Int64
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &faultProxy{ln: ln, conns: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	p.setTarget(target)
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.Close)
	return p
}

// endpoint is the URL clients use.
func (p *faultProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

// setTarget points new connections at addr (host:port); connections to
// the previous target are reset.
func (p *faultProxy) setTarget(addr string) {
	p.target.Store(&addr)
	p.resetAll()
}

// setMode changes what the proxy does. Every change resets every open
// connection, except entering proxyDropReplies, which acts on the open
// connections as well as on new ones.
func (p *faultProxy) setMode(m proxyMode) {
	old := proxyMode(p.mode.Swap(int32(m)))
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if old != m && m != proxyDropReplies {
		p.resetAll()
	}
}

func (p *faultProxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		if !p.track(c) {
			reset(c)
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// track registers c, or reports false once the proxy is closed.
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.held, c)
	p.mu.Unlock()
}

func (p *faultProxy) serve(c net.Conn) {
	defer p.untrack(c)
	switch proxyMode(p.mode.Load()) {
	case proxyReset:
		p.resets.Add(1)
		reset(c)
		return
	case proxyBlackhole:
		p.mu.Lock()
		p.held[c] = struct{}{}
		changed := p.changed
		p.mu.Unlock()
		// Read and discard until the mode changes (resetAll closes c) or
		// the client gives up.
		p.wg.Go(func() { <-changed; reset(c) })
		_, _ = io.Copy(io.Discard, c)
		reset(c)
		return
	}
	up, err := net.Dial("tcp", *p.target.Load())
	if err != nil {
		reset(c)
		return
	}
	if !p.track(up) {
		reset(c)
		reset(up)
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, replies bool) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !(replies && proxyMode(p.mode.Load()) == proxyDropReplies) {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c, false)
	go pipe(c, up, true)
	<-done
	<-done
	_ = c.Close() // both directions are done
	_ = up.Close()
}

// resetAll resets every open connection, forwarding or held.
func (p *faultProxy) resetAll() {
	p.mu.Lock()
	var cs []net.Conn
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		reset(c)
	}
	p.resets.Add(int64(len(cs)))
}

// reset closes c with SO_LINGER 0, so that the peer sees a reset.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// Close stops accepting, resets every connection and waits for the
// proxy's goroutines.
func (p *faultProxy) Close() {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if already {
		return
	}
	_ = p.ln.Close()
	p.resetAll()
	p.wg.Wait()
}
