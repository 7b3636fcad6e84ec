package selfsigned_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/selfsigned"
)

// start is the injected clock's first reading.
var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func opts(dir string, now *time.Time, hosts ...string) selfsigned.Options {
	return selfsigned.Options{
		Dir:      dir,
		Hosts:    hosts,
		Now:      func() time.Time { return *now },
		Hostname: func() (string, error) { return "Build-Box.example.", nil },
	}
}

func ensure(t *testing.T, o selfsigned.Options) selfsigned.Result {
	t.Helper()
	r, err := selfsigned.Ensure(o)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return r
}

// verify checks that the server certificate on disk, with its key, is
// signed by the CA on disk, valid at now, and valid for every name.
func verify(t *testing.T, r selfsigned.Result, now time.Time, names ...string) *x509.Certificate {
	t.Helper()
	caPEM, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", r.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("server key %T, want ECDSA", pair.PrivateKey)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: n, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the server certificate does not verify for %q with the CA: %v", n, err)
		}
	}
	return leaf
}

func TestSANs(t *testing.T) {
	for _, tc := range []struct {
		hosts    []string
		hostname string
		dns, ips string
	}{
		{nil, "box", "[localhost]", "[127.0.0.1 ::1]"},
		{[]string{"127.0.0.1"}, "box", "[localhost]", "[127.0.0.1]"},
		{[]string{"10.1.2.3"}, "box", "[]", "[10.1.2.3]"},
		{[]string{"0.0.0.0"}, "Box.Example.", "[box.example localhost]", "[127.0.0.1 ::1]"},
		{[]string{"::"}, "box", "[box localhost]", "[127.0.0.1 ::1]"},
		{[]string{"[::]"}, "", "[localhost]", "[127.0.0.1 ::1]"},
		{[]string{""}, "box", "[box localhost]", "[127.0.0.1 ::1]"},
		{[]string{"::1"}, "box", "[localhost]", "[::1]"},
		{[]string{"fe80::1%eth0"}, "box", "[]", "[fe80::1]"},
		{[]string{"LocalHost"}, "box", "[localhost]", "[127.0.0.1 ::1]"},
		{[]string{"Kinesis.Internal", "10.0.0.5", "kinesis.internal", "::ffff:10.0.0.5"}, "box", "[kinesis.internal]", "[10.0.0.5]"},
		{[]string{"0.0.0.0"}, "10.9.9.9", "[localhost]", "[127.0.0.1 ::1]"}, // a hostname that is an address is no DNS name
	} {
		dns, ips := selfsigned.SANs(tc.hosts, tc.hostname)
		if got := fmt.Sprint(dns); got != tc.dns {
			t.Errorf("SANs(%q, %q) DNS names %s, want %s", tc.hosts, tc.hostname, got, tc.dns)
		}
		if got := fmt.Sprint(ips); got != tc.ips {
			t.Errorf("SANs(%q, %q) IP addresses %s, want %s", tc.hosts, tc.hostname, got, tc.ips)
		}
	}
}

// The first Ensure makes a CA and a server certificate with the right
// names, lifetimes, key types and file modes; the second reuses both.
func TestEnsureMakesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "tls")
	now := start
	r := ensure(t, opts(dir, &now, "0.0.0.0"))
	if !r.CAGenerated || !r.CertGenerated || r.Reason == "" {
		t.Fatalf("first Ensure: CA generated %v, cert generated %v (%q); want both", r.CAGenerated, r.CertGenerated, r.Reason)
	}
	leaf := verify(t, r, now, "localhost", "127.0.0.1", "::1", "build-box.example")
	if !slices.Equal(leaf.DNSNames, []string{"build-box.example", "localhost"}) || fmt.Sprint(leaf.IPAddresses) != "[127.0.0.1 ::1]" {
		t.Errorf("server certificate names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if got, want := leaf.NotAfter.Sub(now), selfsigned.CertValidity; got != want {
		t.Errorf("server certificate valid for %v from now, want %v", got, want)
	}
	if !leaf.NotBefore.Before(now) {
		t.Errorf("server certificate NotBefore %v is not before now %v", leaf.NotBefore, now)
	}
	if len(leaf.AuthorityKeyId) == 0 || len(leaf.SubjectKeyId) == 0 {
		t.Errorf("server certificate lacks key identifiers: authority %x, subject %x", leaf.AuthorityKeyId, leaf.SubjectKeyId)
	}
	ca := r.CA
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 || len(ca.SubjectKeyId) == 0 {
		t.Errorf("CA: IsCA %v, constraints %v, key usage %v, key id %x", ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage, ca.SubjectKeyId)
	}
	if got, want := ca.NotAfter.Sub(now), selfsigned.CAValidity; got != want || want < 10*365*24*time.Hour {
		t.Errorf("CA valid for %v from now, want %v (ten years)", got, want)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key %T, want ECDSA P-256", ca.PublicKey)
	}
	if !strings.Contains(ca.Subject.CommonName, "Build-Box.example.") || !strings.Contains(ca.Subject.CommonName, "shoal") {
		t.Errorf("CA common name %q, want shoal's and the host's name", ca.Subject.CommonName)
	}

	// Modes: the directory 0700, the keys 0600.
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, r.CAKeyFile: 0o600, r.KeyFile: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[ca-key.pem ca.pem server-key.pem server.pem]" {
		t.Errorf("files %v, want the four and no temporary ones", names)
	}

	// Reused a day later, files unchanged.
	before := readAll(t, dir)
	now = now.Add(24 * time.Hour)
	r2 := ensure(t, opts(dir, &now, "0.0.0.0"))
	if r2.CAGenerated || r2.CertGenerated || r2.Reason != "" {
		t.Fatalf("second Ensure: CA generated %v, cert generated %v (%q); want neither", r2.CAGenerated, r2.CertGenerated, r2.Reason)
	}
	if after := readAll(t, dir); after != before {
		t.Error("the second Ensure changed the files")
	}
	if r2.Cert.SerialNumber.Cmp(leaf.SerialNumber) != 0 || r2.CA.SerialNumber.Cmp(ca.SerialNumber) != 0 {
		t.Error("the second Ensure reports other certificates than the files hold")
	}
}

// A directory made with a looser mode is narrowed to 0700.
func TestEnsureNarrowsDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := start
	ensure(t, opts(dir, &now))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
}

// The server certificate is made again within 30 days of its expiry, not
// before; the CA stays.
func TestEnsureRenewsNearExpiry(t *testing.T) {
	dir := t.TempDir()
	now := start
	first := ensure(t, opts(dir, &now, "127.0.0.1"))
	expiry := first.Cert.NotAfter

	now = expiry.Add(-selfsigned.RenewBefore - time.Minute)
	if r := ensure(t, opts(dir, &now, "127.0.0.1")); r.CertGenerated || r.CAGenerated {
		t.Fatalf("renewed %v before expiry: %q", expiry.Sub(now), r.Reason)
	}
	now = expiry.Add(-selfsigned.RenewBefore + time.Minute)
	r := ensure(t, opts(dir, &now, "127.0.0.1"))
	if !r.CertGenerated || r.CAGenerated {
		t.Fatalf("%v before expiry: cert generated %v, CA generated %v; want only the certificate", expiry.Sub(now), r.CertGenerated, r.CAGenerated)
	}
	if !strings.Contains(r.Reason, "expires") {
		t.Errorf("reason %q, want the expiry", r.Reason)
	}
	if r.CA.SerialNumber.Cmp(first.CA.SerialNumber) != 0 {
		t.Error("the CA changed")
	}
	if r.Cert.SerialNumber.Cmp(first.Cert.SerialNumber) == 0 || !r.Cert.NotAfter.Equal(now.Add(selfsigned.CertValidity)) {
		t.Errorf("renewed certificate: serial %x (old %x), NotAfter %v", r.Cert.SerialNumber, first.Cert.SerialNumber, r.Cert.NotAfter)
	}
	verify(t, r, now, "127.0.0.1")

	// Long after the old one expired, a restart renews too.
	now = r.Cert.NotAfter.Add(time.Hour)
	r = ensure(t, opts(dir, &now, "127.0.0.1"))
	if !r.CertGenerated {
		t.Fatal("an expired server certificate was kept")
	}
	verify(t, r, now, "127.0.0.1")
}

// A server certificate that lacks a name the server now listens on is made
// again, with the new names; one that names more than needed is kept.
func TestEnsureRenewsForNewAddress(t *testing.T) {
	dir := t.TempDir()
	now := start
	first := ensure(t, opts(dir, &now, "127.0.0.1"))
	r := ensure(t, opts(dir, &now, "10.1.2.3", "shoal.internal"))
	if !r.CertGenerated || r.CAGenerated || !strings.Contains(r.Reason, "does not name") {
		t.Fatalf("new address: cert generated %v (%q), CA generated %v", r.CertGenerated, r.Reason, r.CAGenerated)
	}
	verify(t, r, now, "10.1.2.3", "shoal.internal")
	if r.CA.SerialNumber.Cmp(first.CA.SerialNumber) != 0 {
		t.Error("the CA changed")
	}
	if r := ensure(t, opts(dir, &now, "SHOAL.internal")); r.CertGenerated {
		t.Errorf("a subset of the names renewed the certificate: %q", r.Reason)
	}
}

// Damaged or mismatched server files are made again; a missing CA makes a
// new CA and a new server certificate; a CA whose key is gone is an error
// only once a server certificate must be made.
func TestEnsureRepairs(t *testing.T) {
	now := start
	t.Run("garbage server certificate", func(t *testing.T) {
		dir := t.TempDir()
		r := ensure(t, opts(dir, &now))
		if err := os.WriteFile(r.CertFile, []byte("not PEM"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := ensure(t, opts(dir, &now)); !r.CertGenerated || r.CAGenerated {
			t.Fatalf("cert generated %v (%q), CA generated %v", r.CertGenerated, r.Reason, r.CAGenerated)
		}
		verify(t, r, now, "localhost")
	})
	t.Run("key of another certificate", func(t *testing.T) {
		dir := t.TempDir()
		r := ensure(t, opts(dir, &now))
		other := ensure(t, opts(t.TempDir(), &now))
		copyFile(t, other.KeyFile, r.KeyFile)
		if r := ensure(t, opts(dir, &now)); !r.CertGenerated || !strings.Contains(r.Reason, "do not load") {
			t.Fatalf("cert generated %v (%q)", r.CertGenerated, r.Reason)
		}
		verify(t, r, now, "localhost")
	})
	t.Run("server certificate of another CA", func(t *testing.T) {
		dir := t.TempDir()
		r := ensure(t, opts(dir, &now))
		other := ensure(t, opts(t.TempDir(), &now))
		copyFile(t, other.CertFile, r.CertFile)
		copyFile(t, other.KeyFile, r.KeyFile)
		if r := ensure(t, opts(dir, &now)); !r.CertGenerated || !strings.Contains(r.Reason, "does not verify") {
			t.Fatalf("cert generated %v (%q)", r.CertGenerated, r.Reason)
		}
		verify(t, r, now, "localhost")
	})
	t.Run("CA gone", func(t *testing.T) {
		dir := t.TempDir()
		first := ensure(t, opts(dir, &now))
		if err := os.Remove(first.CAFile); err != nil {
			t.Fatal(err)
		}
		r := ensure(t, opts(dir, &now))
		if !r.CAGenerated || !r.CertGenerated {
			t.Fatalf("CA generated %v, cert generated %v", r.CAGenerated, r.CertGenerated)
		}
		verify(t, r, now, "localhost")
	})
	t.Run("CA key gone", func(t *testing.T) {
		dir := t.TempDir()
		first := ensure(t, opts(dir, &now))
		if err := os.Remove(first.CAKeyFile); err != nil {
			t.Fatal(err)
		}
		if r := ensure(t, opts(dir, &now)); r.CertGenerated { // nothing to sign: fine
			t.Fatalf("cert generated: %q", r.Reason)
		}
		_, err := selfsigned.Ensure(opts(dir, &now, "10.0.0.1"))
		if err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
			t.Fatalf("a new name without the CA key: %v; want an error naming ca-key.pem", err)
		}
	})
	t.Run("CA garbage", func(t *testing.T) {
		dir := t.TempDir()
		first := ensure(t, opts(dir, &now))
		if err := os.WriteFile(first.CAFile, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := selfsigned.Ensure(opts(dir, &now)); err == nil || !strings.Contains(err.Error(), "ca.pem") {
			t.Fatalf("a garbage CA: %v; want an error naming ca.pem (never replaced silently)", err)
		}
	})
}

// Near the CA's own expiry Ensure warns; after it, it refuses; it never
// replaces the CA.
func TestEnsureCAExpiry(t *testing.T) {
	dir := t.TempDir()
	now := start
	first := ensure(t, opts(dir, &now))
	now = first.CA.NotAfter.Add(-selfsigned.RenewBefore / 2)
	r := ensure(t, opts(dir, &now))
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "expires") || r.CAGenerated {
		t.Fatalf("warnings %q, CA generated %v", r.Warnings, r.CAGenerated)
	}
	if !r.CertGenerated || !r.Cert.NotAfter.Equal(first.CA.NotAfter) {
		t.Errorf("server certificate generated %v, NotAfter %v; want one that ends with the CA (%v)", r.CertGenerated, r.Cert.NotAfter, first.CA.NotAfter)
	}
	if again := ensure(t, opts(dir, &now)); again.CertGenerated {
		t.Errorf("the certificate capped at the CA's expiry is made again at every start: %q", again.Reason)
	}
	now = first.CA.NotAfter.Add(time.Second)
	if _, err := selfsigned.Ensure(opts(dir, &now)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired CA: %v", err)
	}
}

// Over a real TLS connection, a client trusting only ca.pem accepts the
// server certificate for 127.0.0.1 and for localhost.
func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	r, err := selfsigned.Ensure(selfsigned.Options{Dir: dir, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	caPEM, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("dial %s:%s trusting ca.pem: %v", name, port, err)
		}
		_ = c.Close()
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{}); err == nil {
		_ = c.Close()
		t.Fatal("a client trusting only the system roots accepted the certificate")
	}
}

func TestTrustInstructions(t *testing.T) {
	got := selfsigned.TrustInstructions("/d/tls/ca.pem", "https://127.0.0.1:4567")
	for _, want := range []string{
		"--ca-bundle /d/tls/ca.pem --endpoint-url https://127.0.0.1:4567",
		"AWS_CA_BUNDLE=/d/tls/ca.pem",
		"NODE_EXTRA_CA_CERTS=/d/tls/ca.pem",
		"keytool -importcert -alias shoal -file /d/tls/ca.pem -keystore <truststore> -storepass changeit -noprompt",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q:\n%s", want, got)
		}
	}
}

func readAll(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
