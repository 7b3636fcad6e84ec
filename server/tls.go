package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/selfsigned"
)

// tlsConfigured reports whether the configuration gives the server a TLS
// certificate.
func (c Config) tlsConfigured() bool { return c.TLSCertFile != "" || c.TLSSelfSignedDir != "" }

// getCertificate hands every TLS handshake the certificate in force.
func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.tlsCert.Load(), nil
}

// ReloadTLS reads the server's TLS certificate again: Config.TLSCertFile and
// TLSKeyFile, or with Config.TLSSelfSignedDir the self-signed files, which
// it first makes again where they need it, as New does (a server
// certificate near its expiry, or one that no longer names every host).
// Connections made afterwards get the new certificate; established ones
// keep theirs. A pair that does not load, or a certificate that has already
// expired, leaves the certificate in force and returns why. Without TLS it
// does nothing.
func (s *Server) ReloadTLS() error {
	if !s.cfg.tlsConfigured() {
		return nil
	}
	s.tlsMu.Lock()
	defer s.tlsMu.Unlock()
	cert, err := s.loadTLS(true)
	if err != nil {
		return fmt.Errorf("reload the TLS certificate (the previous one stays in force): %w", err)
	}
	s.tlsCert.Store(cert)
	s.log.Info("TLS certificate reloaded", certFields(cert.Leaf)...)
	return nil
}

// loadTLS reads the configured certificate and key, after making the
// self-signed ones where needed. A certificate that has expired is refused
// on reload and only warned about at start (as before there was a reload).
func (s *Server) loadTLS(reload bool) (*tls.Certificate, error) {
	certFile, keyFile := s.cfg.TLSCertFile, s.cfg.TLSKeyFile
	if dir := s.cfg.TLSSelfSignedDir; dir != "" {
		res, err := selfsigned.Ensure(selfsigned.Options{Dir: dir, Hosts: s.cfg.TLSSelfSignedHosts, Now: s.cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("self-signed TLS certificate: %w", err)
		}
		for _, w := range res.Warnings {
			s.log.Warn(w)
		}
		if res.CAGenerated {
			s.log.Info("made a self-signed TLS certificate authority: clients must trust it", zap.String("ca_file", res.CAFile),
				zap.String("not_after", res.CA.NotAfter.UTC().Format(time.RFC3339)))
		}
		if res.CertGenerated {
			s.log.Info("made a self-signed TLS server certificate", append(certFields(res.Cert),
				zap.String("reason", res.Reason), zap.String("cert_file", res.CertFile))...)
		}
		certFile, keyFile = res.CertFile, res.KeyFile
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key pair: %w", err)
	}
	if cert.Leaf == nil { // LoadX509KeyPair sets it unless GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
	}
	if now := s.cfg.Now(); now.After(cert.Leaf.NotAfter) {
		if reload {
			return nil, fmt.Errorf("TLS certificate %s expired at %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		s.log.Warn("the TLS certificate has expired: clients will refuse it", append(certFields(cert.Leaf), zap.String("cert_file", certFile))...)
	}
	return &cert, nil
}

// certFields describes a certificate in the log.
func certFields(c *x509.Certificate) []zap.Field {
	if c == nil {
		return nil
	}
	ips := make([]string, len(c.IPAddresses))
	for i, ip := range c.IPAddresses {
		ips[i] = ip.String()
	}
	return []zap.Field{
		zap.String("serial", c.SerialNumber.Text(16)),
		zap.Strings("dns_names", c.DNSNames),
		zap.Strings("ip_addresses", ips),
		zap.String("not_after", c.NotAfter.UTC().Format(time.RFC3339)),
	}
}
