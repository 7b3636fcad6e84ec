// Package selfsigned makes and keeps the certificates of shoal's
// --tls-self-signed mode: a private certificate authority (CA) that users
// trust once, and a server certificate it signs for the addresses the
// server listens on.
//
// Ensure keeps four PEM files in one directory (mode 0700):
//
//	ca.pem           the CA certificate: what clients trust
//	ca-key.pem       the CA's private key (0600)
//	server.pem       the server certificate, signed by the CA
//	server-key.pem   the server certificate's private key (0600)
//
// The CA (ECDSA P-256) is valid for ten years and made only when ca.pem is
// missing: a CA that clients trust is never replaced behind their backs.
// The server certificate (ECDSA P-256, 825 days, the longest that Apple's
// platforms accept from a user-installed CA) is made again when it is
// missing, unreadable, not signed by the CA, within 30 days of expiry, not
// yet valid, or lacks a name or address the server now listens on. Its
// subject alternative names come from the listen hosts (see SANs).
//
// Every file is written to a temporary file first and renamed into place,
// so a crash leaves either the old file or the new one.
package selfsigned

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" // RFC 5280's method for subject key identifiers, not a security use
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The files of a self-signed directory.
const (
	CAFileName      = "ca.pem"
	CAKeyFileName   = "ca-key.pem"
	CertFileName    = "server.pem"
	CertKeyFileName = "server-key.pem"
)

// Validity periods and the renewal margin.
const (
	// CAValidity is how long a new CA is valid: ten years.
	CAValidity = 10 * 365 * 24 * time.Hour
	// CertValidity is how long a new server certificate is valid: 825 days,
	// the most Apple's platforms accept for a certificate from a CA the user
	// installed.
	CertValidity = 825 * 24 * time.Hour
	// RenewBefore is how long before its expiry a server certificate is
	// made again.
	RenewBefore = 30 * 24 * time.Hour
	// backdate is how far NotBefore lies in the past, for clients whose
	// clocks are a little behind.
	backdate = time.Hour
)

// Options says where the files live and what the server certificate names.
type Options struct {
	// Dir holds the four files. It is created (mode 0700) if missing;
	// its parent is created with mode 0755.
	Dir string
	// Hosts are the hosts the server listens on (the host part of its
	// listen addresses) and any other names clients use; see SANs.
	// Empty means "localhost".
	Hosts []string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Hostname returns the machine's name, named in the certificate of a
	// server that listens on every interface. Nil means os.Hostname.
	Hostname func() (string, error)
}

// Result describes the files Ensure left in place.
type Result struct {
	CAFile, CAKeyFile, CertFile, KeyFile string
	// CA is the CA certificate, Cert the server certificate.
	CA, Cert *x509.Certificate
	// CAGenerated and CertGenerated report what this call made.
	CAGenerated, CertGenerated bool
	// Reason says why the server certificate was made ("" if it was kept).
	Reason string
	// Warnings are problems that do not stop the server now but will (the
	// CA nearing its expiry).
	Warnings []string
}

// Paths returns the four files of dir: the CA certificate and key, the
// server certificate and key.
func Paths(dir string) (caFile, caKeyFile, certFile, keyFile string) {
	return filepath.Join(dir, CAFileName), filepath.Join(dir, CAKeyFileName),
		filepath.Join(dir, CertFileName), filepath.Join(dir, CertKeyFileName)
}

// SANs returns the DNS names and IP addresses a certificate for hosts must
// name, sorted and without duplicates:
//
//   - an IP address names itself; a loopback address adds "localhost";
//   - "", "0.0.0.0" and "::" (every interface) name 127.0.0.1, ::1,
//     "localhost" and the machine's hostname;
//   - "localhost" names itself, 127.0.0.1 and ::1;
//   - any other name names itself (lower case).
//
// hostname is the machine's name ("" for none). An IPv6 zone is dropped.
func SANs(hosts []string, hostname string) (dnsNames []string, ips []net.IP) {
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	dns := map[string]bool{}
	ipSet := map[string]net.IP{}
	addIP := func(ip net.IP) {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		ipSet[ip.String()] = ip
	}
	loopback := func() {
		dns["localhost"] = true
		addIP(net.IPv4(127, 0, 0, 1))
		addIP(net.IPv6loopback)
	}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if i := strings.IndexByte(h, '%'); i >= 0 {
			h = h[:i] // an IPv6 zone
		}
		if h == "" {
			loopback()
			if n := strings.ToLower(strings.TrimSuffix(hostname, ".")); n != "" && net.ParseIP(n) == nil {
				dns[n] = true
			}
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				loopback()
				if n := strings.ToLower(strings.TrimSuffix(hostname, ".")); n != "" && net.ParseIP(n) == nil {
					dns[n] = true
				}
				continue
			}
			addIP(ip)
			if ip.IsLoopback() {
				dns["localhost"] = true
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h == "localhost" {
			loopback()
			continue
		}
		dns[h] = true
	}
	for n := range dns {
		dnsNames = append(dnsNames, n)
	}
	slices.Sort(dnsNames)
	keys := make([]string, 0, len(ipSet))
	for k := range ipSet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ips = append(ips, ipSet[k])
	}
	return dnsNames, ips
}

// Ensure makes the CA and the server certificate in o.Dir as needed (see
// the package doc) and returns what is there now. It fails when the
// directory cannot be written, when ca.pem exists but cannot be read, when
// the CA has expired, or when a server certificate must be made and
// ca-key.pem is missing or does not match ca.pem: these need a person to
// decide, since clients trust the CA.
func Ensure(o Options) (Result, error) {
	if o.Dir == "" {
		return Result{}, errors.New("selfsigned: no directory")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	hostnameFn := os.Hostname
	if o.Hostname != nil {
		hostnameFn = o.Hostname
	}
	hostname, _ := hostnameFn() // no hostname: the certificate names none
	t := now()
	var r Result
	r.CAFile, r.CAKeyFile, r.CertFile, r.KeyFile = Paths(o.Dir)
	if err := makeDir(o.Dir); err != nil {
		return r, err
	}

	// The CA.
	var caKey crypto.Signer
	caPEM, err := os.ReadFile(r.CAFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ca, key, err := newCA(t, hostname)
		if err != nil {
			return r, err
		}
		if err := writeKey(r.CAKeyFile, key); err != nil {
			return r, err
		}
		if err := writeCert(r.CAFile, ca.Raw); err != nil {
			return r, err
		}
		r.CA, caKey, r.CAGenerated = ca, key, true
	case err != nil:
		return r, fmt.Errorf("selfsigned: read the CA: %w", err)
	default:
		if r.CA, err = parseCert(caPEM); err != nil {
			return r, fmt.Errorf("selfsigned: %s: %w (delete %s to make a new CA, which clients must then trust instead)", r.CAFile, err, o.Dir)
		}
		if !r.CA.IsCA {
			return r, fmt.Errorf("selfsigned: %s is not a CA certificate (delete %s to make a new CA)", r.CAFile, o.Dir)
		}
	}
	if t.After(r.CA.NotAfter) {
		return r, fmt.Errorf("selfsigned: the CA in %s expired on %s: delete %s to make a new one, which clients must then trust instead",
			r.CAFile, r.CA.NotAfter.UTC().Format(time.DateOnly), o.Dir)
	}
	if r.CA.NotAfter.Sub(t) < RenewBefore {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the self-signed CA %s expires on %s: delete %s and restart to make a new one, which clients must then trust instead",
			r.CAFile, r.CA.NotAfter.UTC().Format(time.DateOnly), o.Dir))
	}

	// The server certificate.
	dnsNames, ips := SANs(o.Hosts, hostname)
	r.Reason = staleReason(r, t, dnsNames, ips)
	if r.Reason == "" {
		r.Cert, _ = readCertFile(r.CertFile) // read and checked by staleReason
		return r, nil
	}
	if caKey == nil {
		if caKey, err = readCAKey(r.CAFile, r.CAKeyFile, caPEM); err != nil {
			return r, fmt.Errorf("selfsigned: cannot make a server certificate (%s): %w", r.Reason, err)
		}
	}
	cert, key, err := newServerCert(t, r.CA, caKey, dnsNames, ips)
	if err != nil {
		return r, err
	}
	if err := writeKey(r.KeyFile, key); err != nil {
		return r, err
	}
	if err := writeCert(r.CertFile, cert.Raw); err != nil {
		return r, err
	}
	r.Cert, r.CertGenerated = cert, true
	return r, nil
}

// staleReason says why the server certificate in r's files must be made
// again at t for dnsNames and ips, or "" if it serves.
func staleReason(r Result, t time.Time, dnsNames []string, ips []net.IP) string {
	certPEM, err := os.ReadFile(r.CertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "no server certificate yet"
	}
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", r.CertFile, err)
	}
	keyPEM, err := os.ReadFile(r.KeyFile)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", r.KeyFile, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Sprintf("the server certificate and key do not load: %v", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return fmt.Sprintf("%s: %v", r.CertFile, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(r.CA)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return fmt.Sprintf("the server certificate is not valid now (valid %s to %s)", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("the server certificate does not verify with the CA: %v", err)
	}
	if cert.NotAfter.Sub(t) < RenewBefore && r.CA.NotAfter.After(cert.NotAfter) {
		return fmt.Sprintf("the server certificate expires on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, n := range dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, n) }) {
			return fmt.Sprintf("the server certificate does not name %s", n)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return fmt.Sprintf("the server certificate does not name %s", ip)
		}
	}
	return ""
}

// readCAKey reads the CA's key and checks that it belongs to the CA.
func readCAKey(caFile, keyFile string, caPEM []byte) (crypto.Signer, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("the CA's key: %w", err)
	}
	pair, err := tls.X509KeyPair(caPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w", caFile, keyFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyFile)
	}
	return signer, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: generate a key: %w", err)
	}
	return key, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("selfsigned: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // positive, at most 16 bytes
}

// keyID is the subject key identifier of pub: the SHA-1 of its
// subjectPublicKey bits (RFC 5280, 4.2.1.2, method 1).
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: encode the public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("selfsigned: decode the public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) // an identifier, not a security use
	return sum[:], nil
}

// newTemplate makes a key and the parts of a certificate's template that
// the CA and the server certificate share: serial number, subject, start
// of validity and subject key ID.
func newTemplate(t time.Time, cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	ski, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"shoal"}},
		NotBefore:             t.Add(-backdate),
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
	}, key, nil
}

// sign creates the certificate tmpl for key, signed by parent's key
// signer (tmpl itself and key for a self-signed one), and parses it back.
func sign(what string, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("selfsigned: create the %s: %w", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func newCA(t time.Time, hostname string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cn := "shoal self-signed CA"
	if hostname != "" {
		cn += " (" + hostname + ")"
	}
	tmpl, key, err := newTemplate(t, cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.NotAfter = t.Add(CAValidity)
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	return sign("CA", tmpl, tmpl, key, key)
}

func newServerCert(t time.Time, ca *x509.Certificate, caKey crypto.Signer, dnsNames []string, ips []net.IP) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cn := "shoal"
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl, key, err := newTemplate(t, cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.NotAfter = t.Add(CertValidity)
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.DNSNames = dnsNames
	tmpl.IPAddresses = ips
	tmpl.AuthorityKeyId = ca.SubjectKeyId
	return sign("server certificate", tmpl, ca, key, caKey)
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCert(b)
}

// makeDir creates dir with mode 0700 (its parent with 0755) and narrows the
// mode of an existing dir to 0700: it holds private keys.
func makeDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("selfsigned: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("selfsigned: %s is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("selfsigned: %w", err)
		}
	}
	return nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("selfsigned: encode the key: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path with data atomically: a temporary file in the
// same directory, synced, then renamed over path.
func writeFile(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("selfsigned: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("selfsigned: sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("selfsigned: %w", err)
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync() // best effort: the rename is what matters
		_ = d.Close()
	}
	return nil
}

// TrustInstructions returns, for people, how to make the common clients
// trust the CA in caFile (an absolute path is best) when they talk to
// endpoint (an https:// URL).
func TrustInstructions(caFile, endpoint string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "shoal serves TLS with a certificate signed by its own CA, %s. Trust that CA in clients:\n", caFile)
	fmt.Fprintf(&b, "  AWS CLI:              aws --ca-bundle %s --endpoint-url %s kinesis list-streams\n", caFile, endpoint)
	fmt.Fprintf(&b, "  AWS SDKs, CLI, boto3: export AWS_CA_BUNDLE=%s\n", caFile)
	fmt.Fprintf(&b, "  Python (boto3):       AWS_CA_BUNDLE=%s, or boto3.client(\"kinesis\", verify=%q, ...)\n", caFile, caFile)
	fmt.Fprintf(&b, "  Node.js (AWS SDK v3): export NODE_EXTRA_CA_CERTS=%s\n", caFile)
	fmt.Fprintf(&b, "  Java (JVM):           keytool -importcert -alias shoal -file %s -keystore <truststore> -storepass changeit -noprompt\n", caFile)
	fmt.Fprintf(&b, "  Go:                   add %s to the RootCAs of the http.Transport's tls.Config\n", caFile)
	return b.String()
}
