package console

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/sdkhttp"
)

// The console reaches the Kinesis server only through aws-sdk-go-v2's
// client, over connections that never leave the process: each dial makes a
// net.Pipe, whose server end the server accepts from a pipeListener (served
// with Server.ServeCleartext). The ends report *net.TCPAddr addresses; the
// server end's remote address is the browser's (the session's, taken from
// the request that signed in), so that the server's aws:SourceIp
// conditions and audit records see the real user.

// consoleEndpoint is the base URL of the console's clients. The host is
// never resolved: every connection is dialled in memory.
const consoleEndpoint = "http://kinesis.console.shoal.internal"

// serverAddr is the address the server end of every in-memory connection
// reports as its own.
var serverAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4567}

// loopbackAddr is the remote address of the anonymous client's connections.
var loopbackAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}

// pipeListener is a net.Listener of in-memory connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and later dials fail. It is idempotent: the server's
// Shutdown and the console's Close both close it.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the server's end's address.
func (l *pipeListener) Addr() net.Addr { return serverAddr }

// dial connects to the server in memory; the server sees remote as the
// client's address.
func (l *pipeListener) dial(ctx context.Context, remote *net.TCPAddr) (net.Conn, error) {
	s, c := net.Pipe()
	sc := &addrConn{Conn: s, local: serverAddr, remote: remote}
	cc := &addrConn{Conn: c, local: remote, remote: serverAddr}
	select {
	case l.conns <- sc:
		return cc, nil
	case <-l.done:
	case <-ctx.Done():
	}
	_ = s.Close()
	_ = c.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, net.ErrClosed
}

// addrConn is a net.Conn with the addresses it reports.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// sdkClient is a Kinesis client of the console and the transport whose
// connections it owns.
type sdkClient struct {
	*kinesis.Client
	tr *http.Transport
}

// close drops the client's idle connections (a busy one closes when its
// call ends).
func (s *sdkClient) close() { s.tr.CloseIdleConnections() }

// newClient returns a Kinesis client signing with creds whose connections
// report remote to the server.
func (c *Console) newClient(creds aws.CredentialsProvider, remote *net.TCPAddr) *sdkClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.ln.dial(ctx, remote)
		},
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: time.Minute,
		DisableCompression:    true,
	}
	// sdkhttp.Wrap hides smithy-go's request body WriteTo (see its doc).
	hc := &http.Client{Transport: sdkhttp.Wrap(tr)}
	client := kinesis.New(kinesis.Options{
		Region:       c.cfg.Region,
		BaseEndpoint: aws.String(consoleEndpoint),
		Credentials:  creds,
		HTTPClient:   hc,
	})
	return &sdkClient{Client: client, tr: tr}
}

// anonymousCredentials are the placeholder credentials of a server that
// does not verify requests.
func anonymousCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("console", "console", "")
}

// remoteAddr is the TCP address of a request's RemoteAddr ("ip:port"), or
// loopbackAddr when it does not parse.
func remoteAddr(r *http.Request) *net.TCPAddr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return loopbackAddr
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}
