// Package pki keeps the dispatcher's own certificate authority and TLS
// certificate, and builds the TLS configurations both sides of the agent
// protocol use. Agents trust the dispatcher by its CA file or by a pin of
// its certificate; they hold no certificates of their own (they
// authenticate with tokens).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files names the PEM files Ensure keeps.
type Files struct {
	CAFile   string // the CA certificate agents verify against
	CertFile string // the server certificate
	KeyFile  string // the server key
}

const (
	caLife     = 10 * 365 * 24 * time.Hour
	serverLife = 365 * 24 * time.Hour
	renewAhead = 30 * 24 * time.Hour
	// backdate tolerates agents whose clocks run a little slow.
	backdate = time.Hour
)

// Ensure makes DIR hold a CA (ca.pem, ca.key) and a server certificate
// signed by it (server.pem, server.key), creating them on first start and
// reusing them after. The server certificate is re-issued by the same CA
// when it expires within 30 days or lacks one of the names: localhost,
// 127.0.0.1, ::1, the host name and hosts. The CA is never replaced,
// because agents in the field trust it.
func Ensure(dir string, hosts []string) (*Files, error) {
	return ensure(dir, hosts, time.Now())
}

func ensure(dir string, hosts []string, now time.Time) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	f := &Files{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server.key"),
	}
	caKeyFile := filepath.Join(dir, "ca.key")
	ca, caKey, err := loadCA(f.CAFile, caKeyFile, now)
	if errors.Is(err, os.ErrNotExist) {
		ca, caKey, err = createCA(f.CAFile, caKeyFile, now)
	}
	if err != nil {
		return nil, err
	}
	dns, ips := names(hosts)
	if serverValid(f, ca, dns, ips, now) {
		return f, nil
	}
	if err := issueServer(f, ca, caKey, dns, ips, now); err != nil {
		return nil, err
	}
	return f, nil
}

// names returns the DNS names and IP addresses the server must carry.
func names(hosts []string) (dns []string, ips []net.IP) {
	all := append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	if h, err := os.Hostname(); err == nil {
		all = append(all, h)
	}
	for _, h := range all {
		h = strings.ToLower(strings.TrimSpace(h))
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// loadCA reads the CA. It returns an error wrapping os.ErrNotExist only if
// neither file exists, so that half a CA is never silently replaced.
func loadCA(certFile, keyFile string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	switch {
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, certErr
	case certErr != nil || keyErr != nil:
		return nil, nil, fmt.Errorf("pki: incomplete CA (move %s and %s away to create a new one, then re-enroll agents): %v",
			certFile, keyFile, errors.Join(certErr, keyErr)) // %v: not ErrNotExist
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s: %w", keyFile, err)
	}
	if !cert.IsCA || !publicKeyEqual(cert.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("pki: %s is not a CA certificate for the key in %s", certFile, keyFile)
	}
	if now.After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("pki: CA %s expired on %s; move ca.pem and ca.key away to create a new one, then re-enroll agents",
			certFile, cert.NotAfter.Format(time.DateOnly))
	}
	return cert, key, nil
}

func createCA(certFile, keyFile string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"Pando"}, CommonName: "Pando dispatcher CA " + host},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLife),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, err := sign(tmpl, tmpl, key, key)
	if err != nil {
		return nil, nil, err
	}
	// Key first: a crash in between leaves a key without a certificate,
	// which loadCA reports instead of overwriting.
	if err := writeKey(keyFile, key); err != nil {
		return nil, nil, err
	}
	if err := writeFile(certFile, pemCert(cert), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// serverValid reports whether the server files can be used as they are.
// Any problem with them means re-issue: they are derived from the CA.
func serverValid(f *Files, ca *x509.Certificate, dns []string, ips []net.IP, now time.Time) bool {
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return false
	}
	cert, err := parseCert(certPEM)
	if err != nil || cert.CheckSignatureFrom(ca) != nil || now.Add(renewAhead).After(cert.NotAfter) {
		return false
	}
	key, err := parseKey(keyPEM)
	if err != nil || !publicKeyEqual(cert.PublicKey, key.Public()) {
		return false
	}
	for _, d := range dns {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, d) }) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func issueServer(f *Files, ca *x509.Certificate, caKey crypto.Signer, dns []string, ips []net.IP, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"Pando"}, CommonName: "pando dispatcher"},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(serverLife),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	cert, err := sign(tmpl, ca, key, caKey)
	if err != nil {
		return err
	}
	// Key first: a crash in between leaves a mismatched pair, which the
	// next start re-issues.
	if err := writeKey(f.KeyFile, key); err != nil {
		return err
	}
	return writeFile(f.CertFile, pemCert(cert), 0o644)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// parseCert returns the first certificate in PEM data.
func parseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("no certificate in PEM data")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no key in PEM data")
	}
	var key any
	var err error
	switch b.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return s, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile replaces path atomically, so that a crash never leaves a
// truncated key or certificate behind.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(mode), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
