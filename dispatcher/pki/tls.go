package pki

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ServerTLS is the dispatcher's TLS configuration for f's certificate.
// Session tickets are off: agents keep one long connection, and resumption
// would only add 0-RTT replay questions.
func ServerTLS(f *Files, alpn string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load server certificate: %w", err)
	}
	c := base(alpn)
	c.Certificates = []tls.Certificate{cert}
	c.SessionTicketsDisabled = true
	return c, nil
}

// ClientTLS is an agent's TLS configuration. It trusts the dispatcher by
// exactly one of: caFile, a PEM file of the CA (the server certificate
// must then name serverName, "localhost" if empty); or pin, the SHA-256 of
// the server certificate ("sha256:HEX" or bare HEX, colons allowed), for
// setups without a way to copy the CA file. A pin breaks when the server
// certificate is re-issued (yearly); a CA file does not.
func ClientTLS(caFile, pin, alpn, serverName string) (*tls.Config, error) {
	c := base(alpn)
	c.ServerName = serverName
	switch {
	case caFile == "" && pin == "":
		return nil, errors.New("pki: no way to verify the dispatcher: give a CA file or a certificate pin")
	case caFile != "" && pin != "":
		return nil, errors.New("pki: give a CA file or a certificate pin, not both")
	case caFile != "":
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("pki: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("pki: no certificate in CA file %s", caFile)
		}
		c.RootCAs = pool
		if c.ServerName == "" {
			c.ServerName = "localhost"
		}
		return c, nil
	}
	want, err := parsePin(pin)
	if err != nil {
		return nil, err
	}
	// The pin replaces chain and name verification: it names the exact
	// certificate, so nothing else is needed to trust it.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pki: server sent no certificate")
		}
		got := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return fmt.Errorf("pki: server certificate sha256:%x does not match pin sha256:%x", got, want)
		}
		return nil
	}
	return c, nil
}

// base is what both sides share: TLS 1.3 only, X25519, one ALPN.
func base(alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
		NextProtos:       []string{alpn},
	}
}

func parsePin(pin string) ([]byte, error) {
	h := strings.TrimSpace(pin)
	if len(h) >= 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("pki: malformed pin %q: want sha256: and 64 hex digits", pin)
	}
	return b, nil
}

// Fingerprint returns "sha256:HEX" of the first certificate in a PEM file,
// the pin ClientTLS accepts.
func Fingerprint(certPEMFile string) (string, error) {
	data, err := os.ReadFile(certPEMFile)
	if err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	cert, err := parseCert(data)
	if err != nil {
		return "", fmt.Errorf("pki: %s: %w", certPEMFile, err)
	}
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// DialTLS is ClientTLS for an agent dialling addr (HOST:PORT): the server
// name it verifies is addr's host, as the server's --host made it.
func DialTLS(addr, caFile, pin, alpn string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	return ClientTLS(caFile, pin, alpn, host)
}
