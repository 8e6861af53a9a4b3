package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const alpn = "pando/test"

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func leaf(t *testing.T, f *Files) *x509.Certificate {
	t.Helper()
	c, err := parseCert(read(t, f.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureCreatesAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	f, err := Ensure(dir, []string{"dispatcher.example.org", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.key", "server.key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	c := leaf(t, f)
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "dispatcher.example.org", strings.ToLower(host)} {
		if err := c.VerifyHostname(name); err != nil {
			t.Errorf("certificate lacks %s: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if err := c.VerifyHostname(ip); err != nil {
			t.Errorf("certificate lacks %s: %v", ip, err)
		}
	}
	if d := time.Until(c.NotAfter); d < 360*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("server certificate valid for %v", d)
	}
	ca, _ := parseCert(read(t, f.CAFile))
	if d := time.Until(ca.NotAfter); d < 9*365*24*time.Hour || !ca.IsCA {
		t.Errorf("CA valid for %v, IsCA %v", d, ca.IsCA)
	}

	caPEM, certPEM := read(t, f.CAFile), read(t, f.CertFile)
	f2, err := Ensure(dir, []string{"dispatcher.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if *f2 != *f || !bytes.Equal(read(t, f.CAFile), caPEM) || !bytes.Equal(read(t, f.CertFile), certPEM) {
		t.Error("second Ensure changed the files")
	}
}

func TestEnsureReissues(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	f, err := ensure(dir, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := read(t, f.CAFile)
	ca, _ := parseCert(caPEM)

	check := func(name string, hosts []string, at time.Time, wantNew bool) {
		t.Helper()
		before := read(t, f.CertFile)
		if _, err := ensure(dir, hosts, at); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if changed := !bytes.Equal(before, read(t, f.CertFile)); changed != wantNew {
			t.Errorf("%s: re-issued %v, want %v", name, changed, wantNew)
		}
		if !bytes.Equal(read(t, f.CAFile), caPEM) {
			t.Fatalf("%s: CA changed", name)
		}
		if err := leaf(t, f).CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s: not signed by the CA: %v", name, err)
		}
	}
	check("unchanged", nil, now, false)
	check("new host", []string{"new.example.org"}, now, true)
	check("host kept", []string{"NEW.example.org"}, now, false)
	check("far from expiry", []string{"new.example.org"}, now.Add(300*24*time.Hour), false)
	check("near expiry", []string{"new.example.org"}, now.Add(340*24*time.Hour), true)

	if err := os.WriteFile(f.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("broken key", nil, now, true)
}

func TestEnsureRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "ca.pem"))
	_, err := Ensure(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "incomplete CA") {
		t.Errorf("got %v, want incomplete CA error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		t.Error("CA re-created over an existing key")
	}
}

func TestEnsureRefusesExpiredCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, nil); err != nil {
		t.Fatal(err)
	}
	_, err := ensure(dir, nil, time.Now().Add(11*365*24*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("got %v, want expired error", err)
	}
}

// handshake runs a TLS handshake over loopback TCP and returns both sides'
// errors. (net.Pipe is unbuffered: a client that fails mid-flight and a
// server still writing would block each other until the deadline.)
func handshake(t *testing.T, server, client *tls.Config) (serr, cerr error, proto string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		done <- c.(*tls.Conn).Handshake()
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, cerr := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	if cerr == nil {
		proto = c.ConnectionState().NegotiatedProtocol
		c.Close()
	}
	return <-done, cerr, proto
}

func TestHandshake(t *testing.T) {
	f, err := Ensure(t.TempDir(), []string{"dispatcher.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Ensure(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ServerTLS(f, alpn)
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS13 || !server.SessionTicketsDisabled {
		t.Errorf("server config %+v", server)
	}
	pin, err := Fingerprint(f.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	otherPin, _ := Fingerprint(other.CertFile)

	tests := []struct {
		name                 string
		caFile, pin, srvName string
		wantErr              string
	}{
		{"ca", f.CAFile, "", "", ""},
		{"ca and name", f.CAFile, "", "dispatcher.example.org", ""},
		{"ca and ip", f.CAFile, "", "127.0.0.1", ""},
		{"pin", "", pin, "", ""},
		{"bare hex pin", "", strings.TrimPrefix(pin, "sha256:"), "", ""},
		{"upper-case pin", "", strings.ToUpper(pin), "whatever", ""},
		{"wrong pin", "", otherPin, "", "does not match pin " + otherPin},
		{"other CA", other.CAFile, "", "", "certificate signed by unknown authority"},
		{"wrong name", f.CAFile, "", "evil.example.org", "not evil.example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := ClientTLS(tt.caFile, tt.pin, alpn, tt.srvName)
			if err != nil {
				t.Fatal(err)
			}
			serr, cerr, proto := handshake(t, server, client)
			if tt.wantErr == "" {
				if serr != nil || cerr != nil {
					t.Fatalf("server: %v; client: %v", serr, cerr)
				}
				if proto != alpn {
					t.Errorf("ALPN %q", proto)
				}
				return
			}
			if cerr == nil || !strings.Contains(cerr.Error(), tt.wantErr) {
				t.Errorf("client error %v, want %q", cerr, tt.wantErr)
			}
			if serr == nil {
				t.Error("server handshake succeeded")
			}
		})
	}
}

func TestClientTLSRefuses(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	tests := []struct {
		name, caFile, pin, want string
	}{
		{"neither", "", "", "give a CA file or a certificate pin"},
		{"both", notPEM, "sha256:00", "not both"},
		{"missing file", filepath.Join(dir, "nope.pem"), "", "read CA file"},
		{"no certificate", notPEM, "", "no certificate in CA file"},
		{"short pin", "", "sha256:abcd", "malformed pin"},
		{"non-hex pin", "", "sha256:" + strings.Repeat("zz", 32), "malformed pin"},
		{"other hash", "", "md5:" + strings.Repeat("00", 32), "malformed pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientTLS(tt.caFile, tt.pin, alpn, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	c, err := ClientTLS("", "AB:"+strings.Repeat("00:", 30)+"CD", alpn, "")
	if err != nil || c.MinVersion != tls.VersionTLS13 || c.NextProtos[0] != alpn || c.CurvePreferences[0] != tls.X25519 {
		t.Errorf("colon pin: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	f, err := Ensure(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(f.CertFile)
	if err != nil || !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		t.Errorf("Fingerprint = %q, %v", fp, err)
	}
	if _, err := Fingerprint(f.KeyFile); err == nil {
		t.Error("fingerprint of a key file")
	}
}
