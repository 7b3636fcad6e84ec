package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/selfsigned"
	"github.com/shoalstream/shoal/server"
)

// tlsFlags are the TLS flags of "shoal server".
type tlsFlags struct {
	cert, key  *string
	selfSigned *bool
	addr       *string
	hosts      *string
}

func addTLSFlags(fs *flag.FlagSet) *tlsFlags {
	return &tlsFlags{
		cert: fs.String("tls-cert", "", "PEM certificate file: serve TLS (ALPN h2 and http/1.1), on --addr instead of cleartext HTTP/1.1 and h2c, or on --tls-addr beside it (re-read on SIGHUP)"),
		key:  fs.String("tls-key", "", "PEM private key file for --tls-cert"),
		selfSigned: fs.Bool("tls-self-signed", false, "serve TLS (as --tls-cert does) with a certificate signed by a CA of shoal's own, both kept in --data-dir/tls "+
			"(made on first start, the server certificate renewed within 30 days of expiry or when the listen address changes; trust ca.pem in clients)"),
		addr:  fs.String("tls-addr", "", "also listen on this address with TLS, keeping --addr cleartext (needs --tls-cert/--tls-key or --tls-self-signed)"),
		hosts: fs.String("tls-self-signed-hosts", "", "comma-separated extra DNS names and IP addresses for the --tls-self-signed certificate (beside the host of the TLS listen address)"),
	}
}

// enabled reports whether the server has a certificate.
func (f *tlsFlags) enabled() bool { return *f.cert != "" || *f.selfSigned }

// dir is where --tls-self-signed keeps its files.
func selfSignedDir(dataDir string) string { return filepath.Join(dataDir, "tls") }

// configure checks the TLS flags and sets cfg's TLS fields. addr is --addr;
// dataDir is --data-dir, which names where --tls-self-signed keeps its
// files whatever the storage engine.
func (f *tlsFlags) configure(cfg *server.Config, addr, dataDir string) error {
	if (*f.cert == "") != (*f.key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if *f.selfSigned && *f.cert != "" {
		return errors.New("--tls-self-signed and --tls-cert exclude each other")
	}
	if *f.addr != "" && !f.enabled() {
		return errors.New("--tls-addr needs a certificate: --tls-cert and --tls-key, or --tls-self-signed")
	}
	if *f.hosts != "" && !*f.selfSigned {
		return errors.New("--tls-self-signed-hosts needs --tls-self-signed")
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = *f.cert, *f.key
	if !*f.selfSigned {
		return nil
	}
	if dataDir == "" {
		return errors.New("--tls-self-signed keeps its files in --data-dir/tls: set --data-dir")
	}
	tlsAddr, flagName := addr, "--addr"
	if *f.addr != "" {
		tlsAddr, flagName = *f.addr, "--tls-addr"
	}
	host, _, err := net.SplitHostPort(tlsAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	if host == "" {
		host = "::" // every interface
	}
	hosts := []string{host}
	for h := range strings.SplitSeq(*f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	cfg.TLSSelfSignedDir, cfg.TLSSelfSignedHosts = selfSignedDir(dataDir), hosts
	return nil
}

// clientEndpoint is the URL a client on this machine uses to reach a
// listener on addr: an unspecified address (every interface) becomes
// 127.0.0.1.
func clientEndpoint(scheme string, addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("%s://127.0.0.1:%d", scheme, ta.Port)
	}
	return scheme + "://" + addr.String()
}

// printTrust tells, once, how clients trust the self-signed CA: in the log
// (at info) and, for people, on stderr.
func printTrust(logger *zap.Logger, stderr io.Writer, dataDir, endpoint string) {
	ca, _, _, _ := selfsigned.Paths(selfSignedDir(dataDir))
	if abs, err := filepath.Abs(ca); err == nil {
		ca = abs
	}
	logger.Info("TLS with a self-signed CA: trust it in clients",
		zap.String("ca_file", ca),
		zap.String("endpoint", endpoint),
		zap.String("aws_cli", "aws --ca-bundle "+ca+" --endpoint-url "+endpoint+" kinesis ..."),
		zap.String("aws_sdks", "AWS_CA_BUNDLE="+ca),
		zap.String("python", "AWS_CA_BUNDLE="+ca),
		zap.String("node", "NODE_EXTRA_CA_CERTS="+ca),
		zap.String("jvm", "keytool -importcert -alias shoal -file "+ca+" -keystore <truststore> -storepass changeit -noprompt"))
	_, _ = fmt.Fprint(stderr, selfsigned.TrustInstructions(ca, endpoint))
}
