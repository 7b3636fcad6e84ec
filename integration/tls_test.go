package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/sdkhttp"
	"github.com/shoalstream/shoal/internal/testutil/nodetest"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/tlstest"
)

// The TLS tests run the shoal binary with --tls-self-signed, or with
// --tls-cert/--tls-key, and talk to it with the AWS CLI, the AWS SDK for
// JavaScript v3 and aws-sdk-go-v2. The binary is started on port 0; the
// test learns its ports from its "shoal listening" log line.

// tlsLogLine is one JSON line of the server's log, as a map.
type tlsLogLine map[string]any

func (l tlsLogLine) msg() string { s, _ := l["msg"].(string); return s }

// tlsProc is a shoal server whose log the test watches.
type tlsProc struct {
	*proc
	mu      sync.Mutex
	lines   []tlsLogLine
	text    strings.Builder // every line, JSON or not (the trust instructions)
	changed chan struct{}   // closed and replaced when a line arrives
	eof     bool            // the output ended
}

// startTLSProc starts "shoal server --addr 127.0.0.1:0 --data-dir dataDir
// --log-level info" with extra flags and waits for its "shoal listening"
// line, which it returns.
func startTLSProc(t *testing.T, logs *logBook, label, dataDir string, extra ...string) (*tlsProc, tlsLogLine) {
	t.Helper()
	bin := shoalBinary(t)
	args := append([]string{"server", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "info"}, extra...)
	l := logs.open(label)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = l
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &tlsProc{proc: &proc{label: label, cmd: cmd, log: l, done: make(chan struct{})}, changed: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = pw.Close()
		close(p.done)
	}()
	go p.scan(io.TeeReader(pr, l))
	t.Cleanup(func() { p.kill() })
	listening := p.waitFor(t, "the listening line", func(l tlsLogLine) bool { return l.msg() == "shoal listening" })
	return p, listening
}

// scan reads the server's stderr line by line.
func (p *tlsProc) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l tlsLogLine
		isJSON := json.Unmarshal(sc.Bytes(), &l) == nil
		p.mu.Lock()
		if isJSON {
			p.lines = append(p.lines, l)
		}
		p.text.Write(sc.Bytes())
		p.text.WriteByte('\n')
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
	p.mu.Lock()
	p.eof = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// waitFor waits until a log line after the first from satisfies match and
// returns it. It fails the test if the server's output ends first, or after
// a minute (a bound on a hung server, not a measure of speed).
func (p *tlsProc) waitFor(t *testing.T, what string, match func(tlsLogLine) bool) tlsLogLine {
	t.Helper()
	return p.waitFrom(t, 0, what, match)
}

func (p *tlsProc) waitFrom(t *testing.T, from int, what string, match func(tlsLogLine) bool) tlsLogLine {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		p.mu.Lock()
		for _, l := range p.lines[min(from, len(p.lines)):] {
			if match(l) {
				p.mu.Unlock()
				return l
			}
		}
		from = len(p.lines)
		changed, eof := p.changed, p.eof
		p.mu.Unlock()
		if eof {
			t.Fatalf("%s: the server's output ended before %s (exit: %v)", p.label, what, p.waitErr)
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: no %s within a minute", p.label, what)
		}
	}
}

// mark returns the number of log lines so far, for waitFrom.
func (p *tlsProc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

func (p *tlsProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.text.String()
}

// endpoints returns the "endpoints" of the listening line.
func endpointsOf(t *testing.T, l tlsLogLine) []string {
	t.Helper()
	raw, _ := l["endpoints"].([]any)
	var eps []string
	for _, e := range raw {
		s, _ := e.(string)
		eps = append(eps, s)
	}
	if len(eps) == 0 {
		t.Fatalf("the listening line names no endpoints: %v", l)
	}
	return eps
}

// hostOf is the host:port of an endpoint URL.
func hostOf(endpoint string) string {
	return endpoint[strings.Index(endpoint, "://")+3:]
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", file)
	}
	return pool
}

// tlsClientEnv is the environment of a client program: no AWS_ variable
// and no NODE_EXTRA_CA_CERTS of the machine's (this one sets both to the
// system's bundle), fixed credentials, one attempt per call, plus extra.
func tlsClientEnv(t *testing.T, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "NODE_EXTRA_CA_CERTS=") {
			env = append(env, kv)
		}
	}
	none := filepath.Join(t.TempDir(), "no-such-aws-file")
	env = append(env, "AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=shoal", "AWS_SECRET_ACCESS_KEY=shoal", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard", "AWS_PAGER=")
	return append(env, extra...)
}

// tlsRun runs a program with env and returns its output and exit error.
func tlsRun(ctx context.Context, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestTLSSelfSignedBinary runs "shoal server --tls-self-signed --tls-addr
// 127.0.0.1:0" (memory storage): cleartext on --addr and TLS on --tls-addr
// at once, with a CA and certificate made in --data-dir/tls and the trust
// instructions printed. Then:
//   - aws-cli: the AWS CLI creates a stream, puts a record and lists
//     streams over https with --ca-bundle (and AWS_CA_BUNDLE), and fails
//     with a certificate error without either;
//   - js-sdk: the AWS SDK for JavaScript v3 with NODE_EXTRA_CA_CERTS, over
//     h2 (NodeHttp2Handler, ALPN) and HTTP/1.1 (NodeHttpHandler), and
//     failing without it;
//   - sighup: with the server certificate's files removed, SIGHUP makes a
//     new one (a new serial) that the same ca.pem verifies;
//   - restart: a second start reuses the files.
func TestTLSSelfSignedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	logs := newLogBook(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, listening := startTLSProc(t, logs, "self-signed", dataDir, "--storage", "memory", "--tls-self-signed", "--tls-addr", "127.0.0.1:0")
	eps := endpointsOf(t, listening)
	if len(eps) != 2 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") || !strings.HasPrefix(eps[1], "https://127.0.0.1:") {
		t.Fatalf("endpoints %v, want http:// on --addr and https:// on --tls-addr", eps)
	}
	plainURL, tlsURL := eps[0], eps[1]
	caFile := filepath.Join(dataDir, "tls", "ca.pem")
	for _, f := range []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(dataDir, "tls", f)); err != nil {
			t.Fatalf("--tls-self-signed: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "tls")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("--data-dir/tls: %v %v, want mode 0700", fi.Mode(), err)
	}
	p.waitFor(t, "the trust line", func(l tlsLogLine) bool { return strings.HasPrefix(l.msg(), "TLS with a self-signed CA") })
	out := p.output()
	for _, want := range []string{"--ca-bundle " + caFile + " --endpoint-url " + tlsURL, "AWS_CA_BUNDLE=" + caFile, "NODE_EXTRA_CA_CERTS=" + caFile,
		"keytool -importcert -alias shoal -file " + caFile + " -keystore <truststore> -storepass changeit -noprompt"} {
		if !strings.Contains(out, want) {
			t.Errorf("the server's output lacks %q", want)
		}
	}
	pool := certPool(t, caFile)

	// Both listeners serve at once: aws-sdk-go-v2 over cleartext and TLS.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	tlsGo := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: &http.Client{Transport: sdkhttp.Wrap(tr), Timeout: time.Minute},
		Credentials: credentials.NewStaticCredentialsProvider("shoal", "shoal", "")}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(tlsURL) })
	plainGo := servertest.Client(plainURL)
	if _, err := tlsGo.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("go-tls"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("aws-sdk-go-v2 over TLS: %v", err)
	}
	if list, err := plainGo.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil || len(list.StreamNames) != 1 {
		t.Fatalf("aws-sdk-go-v2 over cleartext: %v %v", list, err)
	}

	t.Run("aws-cli", func(t *testing.T) {
		awsCLI, err := exec.LookPath("aws")
		if err != nil {
			nodetest.Missing(t, "the AWS CLI (aws) is not installed: %v", err)
		}
		version, _, err := tlsRun(ctx, tlsClientEnv(t), awsCLI, "--version")
		if err != nil {
			nodetest.Missing(t, "aws --version: %v", err)
		}
		cli := func(env []string, args ...string) (string, string, error) {
			return tlsRun(ctx, env, awsCLI, append([]string{"--endpoint-url", tlsURL, "--output", "json"}, args...)...)
		}
		env := tlsClientEnv(t)
		must := func(args ...string) string {
			t.Helper()
			o, e, err := cli(env, args...)
			if err != nil {
				t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, o, e)
			}
			return o
		}
		must("--ca-bundle", caFile, "kinesis", "create-stream", "--stream-name", "cli", "--shard-count", "1")
		putArgs := []string{"--ca-bundle", caFile, "kinesis", "put-record", "--stream-name", "cli", "--partition-key", "k", "--data", "over tls"}
		if strings.HasPrefix(strings.TrimSpace(version), "aws-cli/2") {
			putArgs = append(putArgs, "--cli-binary-format", "raw-in-base64-out")
		}
		var put struct{ ShardId, SequenceNumber string }
		if err := json.Unmarshal([]byte(must(putArgs...)), &put); err != nil || put.SequenceNumber == "" {
			t.Fatalf("put-record output: %v %+v", err, put)
		}
		it, err := plainGo.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("cli"), ShardId: aws.String(put.ShardId),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(put.SequenceNumber)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := plainGo.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil || len(got.Records) != 1 || string(got.Records[0].Data) != "over tls" {
			t.Fatalf("read back over cleartext: %v %+v", err, got)
		}
		// AWS_CA_BUNDLE, as the instructions say, instead of --ca-bundle.
		o, e, err := cli(tlsClientEnv(t, "AWS_CA_BUNDLE="+caFile), "kinesis", "list-streams")
		if err != nil || !strings.Contains(o, `"cli"`) {
			t.Fatalf("aws kinesis list-streams with AWS_CA_BUNDLE: %v\n%s%s", err, o, e)
		}
		// Without the CA: a certificate error.
		o, e, err = cli(env, "kinesis", "list-streams")
		if err == nil || !strings.Contains(strings.ToLower(e), "certificate verify failed") {
			t.Fatalf("aws kinesis list-streams without --ca-bundle: %v, want a certificate error\nstdout: %s\nstderr: %s", err, o, e)
		}
		t.Logf("without --ca-bundle: %s", strings.TrimSpace(e))
	})

	t.Run("js-sdk", func(t *testing.T) {
		node := nodetest.Node(t, jsSDKMinNode)
		lockDir, err := filepath.Abs(filepath.Join("testdata", "js-sdk"))
		if err != nil {
			t.Fatal(err)
		}
		modules := nodetest.InstallLocked(t, lockDir)
		type jsTLSOutput struct {
			RequestHandler string `json:"requestHandler"`
			ExtraCACerts   string `json:"extraCACerts"`
			Put            *struct {
				ShardID        string `json:"shardId"`
				SequenceNumber string `json:"sequenceNumber"`
			} `json:"put"`
			StreamNames []string `json:"streamNames"`
			Failure     *struct {
				Name, Code, Message string
			} `json:"failure"`
			Transport jsTransport `json:"transport"`
		}
		run := func(t *testing.T, handler, stream string, trust bool) jsTLSOutput {
			t.Helper()
			in, err := json.Marshal(map[string]any{"endpoint": tlsURL, "handler": handler, "streamName": stream, "data": "from " + handler, "expectFailure": !trust})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "input.json")
			if err := os.WriteFile(file, in, 0o600); err != nil {
				t.Fatal(err)
			}
			extra := []string{"NODE_PATH=" + filepath.Join(modules, "node_modules")}
			if trust {
				extra = append(extra, "NODE_EXTRA_CA_CERTS="+caFile)
			}
			stdout, stderr, err := tlsRun(ctx, tlsClientEnv(t, extra...), node, filepath.Join(lockDir, "tls.js"), file)
			if err != nil {
				t.Fatalf("node tls.js (%s): %v\nstderr:\n%s\nstdout:\n%s", handler, err, stderr, stdout)
			}
			var out jsTLSOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("tls.js output: %v\n%s", err, stdout)
			}
			return out
		}
		for _, tc := range []struct{ handler, wantHandler string }{{"default", "NodeHttp2Handler"}, {"http1", "NodeHttpHandler"}} {
			t.Run(tc.handler, func(t *testing.T) {
				stream := "js-" + tc.handler
				out := run(t, tc.handler, stream, true)
				if out.RequestHandler != tc.wantHandler || out.ExtraCACerts != caFile {
					t.Errorf("handler %s, NODE_EXTRA_CA_CERTS %q; want %s and %s", out.RequestHandler, out.ExtraCACerts, tc.wantHandler, caFile)
				}
				tp := out.Transport
				if tc.handler == "default" {
					allH2 := len(tp.ALPNProtocols) == tp.HTTP2Sessions
					for _, p := range tp.ALPNProtocols {
						allH2 = allH2 && p == "h2"
					}
					if tp.HTTP2Sessions == 0 || tp.HTTP1Requests != 0 || !allH2 {
						t.Errorf("NodeHttp2Handler transports %+v; want h2 sessions only, ALPN h2", tp)
					}
				} else if tp.HTTP1Requests == 0 || tp.HTTP2Sessions != 0 || tp.TLSSockets != tp.HTTP1Requests {
					t.Errorf("NodeHttpHandler transports %+v; want HTTP/1.1 requests over TLS only", tp)
				}
				if out.Put == nil || !strings.Contains(strings.Join(out.StreamNames, ","), stream) {
					t.Fatalf("the script's calls: %+v", out)
				}
				it, err := plainGo.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(out.Put.ShardID),
					ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(out.Put.SequenceNumber)})
				if err != nil {
					t.Fatal(err)
				}
				got, err := plainGo.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
				if err != nil || len(got.Records) != 1 || string(got.Records[0].Data) != "from "+tc.handler {
					t.Fatalf("read back: %v %+v", err, got)
				}
			})
		}
		t.Run("untrusted", func(t *testing.T) {
			out := run(t, "http1", "", false)
			if out.Failure == nil || !strings.Contains(strings.ToLower(out.Failure.Code+" "+out.Failure.Message), "verify") {
				t.Fatalf("without NODE_EXTRA_CA_CERTS: %+v; want a certificate verification failure", out.Failure)
			}
			t.Logf("without NODE_EXTRA_CA_CERTS: %s %s", out.Failure.Code, out.Failure.Message)
		})
	})

	t.Run("sighup", func(t *testing.T) {
		addr := hostOf(tlsURL)
		before := tlstest.PresentedSerial(t, addr, pool)
		for _, f := range []string{"server.pem", "server-key.pem"} {
			if err := os.Remove(filepath.Join(dataDir, "tls", f)); err != nil {
				t.Fatal(err)
			}
		}
		from := p.mark()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.waitFrom(t, from, "the reload", func(l tlsLogLine) bool { return l.msg() == "TLS certificate reloaded" })
		after := tlstest.PresentedSerial(t, addr, pool) // the same ca.pem verifies it
		if after.Cmp(before) == 0 {
			t.Fatalf("after SIGHUP the server still presents serial %x", before)
		}
	})

	serial := tlstest.PresentedSerial(t, hostOf(tlsURL), pool)
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	} else if p.waitErr != nil {
		t.Fatalf("the server exited with %v", p.waitErr)
	}

	// A restart reuses the CA and the server certificate.
	p2, listening2 := startTLSProc(t, logs, "self-signed again", dataDir, "--storage", "memory", "--tls-self-signed", "--tls-addr", "127.0.0.1:0")
	if got := tlstest.PresentedSerial(t, hostOf(endpointsOf(t, listening2)[1]), pool); got.Cmp(serial) != 0 {
		t.Errorf("after a restart the server presents serial %x, want the one it had (%x)", got, serial)
	}
	p2.mu.Lock()
	defer p2.mu.Unlock()
	for _, l := range p2.lines {
		if strings.HasPrefix(l.msg(), "made a self-signed") {
			t.Errorf("the restart made a new certificate: %v", l)
		}
	}
}

// TestTLSCertReloadBinary runs "shoal server --tls-cert --tls-key" (TLS on
// --addr, the behaviour without --tls-addr) with --auth-config as well.
// Replacing the certificate files and sending SIGHUP reloads both the auth
// configuration and the certificate: new connections get the new serial.
// A broken certificate file and SIGHUP keep the certificate in force, and
// the log says why.
func TestTLSCertReloadBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	logs := newLogBook(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, certFile, keyFile, 501, time.Now().Add(12*time.Hour))
	authFile := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"principals": [{"name": "admin",
  "accessKeys": [{"accessKeyId": "AKIATLSTEST000000001", "secretAccessKey": "a-long-random-secret-for-the-tls-test"}],
  "policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, listening := startTLSProc(t, logs, "tls-cert", filepath.Join(dir, "data"), "--storage", "memory",
		"--tls-cert", certFile, "--tls-key", keyFile, "--auth-config", authFile)
	eps := endpointsOf(t, listening)
	if len(eps) != 1 || !strings.HasPrefix(eps[0], "https://") || listening["tls"] != true {
		t.Fatalf("listening line %v: want one https:// endpoint on --addr", listening)
	}
	addr := hostOf(eps[0])
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 501 {
		t.Fatalf("serial %v, want 501", got)
	}

	ca.Issue(t, certFile, keyFile, 502, time.Now().Add(12*time.Hour))
	from := p.mark()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitFrom(t, from, "the certificate reload", func(l tlsLogLine) bool { return l.msg() == "TLS certificate reloaded" })
	p.waitFrom(t, from, "the auth reload", func(l tlsLogLine) bool { return l.msg() == "auth configuration reloaded" })
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 502 {
		t.Fatalf("after SIGHUP: serial %v, want 502", got)
	}

	tlstest.ReplaceFile(t, certFile, []byte("not a certificate\n"))
	from = p.mark()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := p.waitFrom(t, from, "the failed reload", func(l tlsLogLine) bool { return l.msg() == "TLS certificate not reloaded" })
	if e, _ := l["error"].(string); !strings.Contains(e, "previous one stays in force") || l["level"] != "error" {
		t.Errorf("failed reload logged as %v", l)
	}
	if got := tlstest.PresentedSerial(t, addr, ca.Pool); got.Int64() != 502 {
		t.Fatalf("after a failed reload: serial %v, want 502 still", got)
	}
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	} else if p.waitErr != nil {
		t.Fatalf("the server exited with %v", p.waitErr)
	}
}

// Flags that do not fit together are refused before anything starts.
func TestTLSFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	bin := shoalBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-addr", "127.0.0.1:0"}, "--tls-addr needs a certificate"},
		{[]string{"--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "exclude each other"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-self-signed-hosts", "a.example"}, "needs --tls-self-signed"},
	} {
		args := append([]string{"server", "--storage", "memory", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("shoal %s: %v, output %q; want a refusal saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
