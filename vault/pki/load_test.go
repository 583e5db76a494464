package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes data into dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return p
}

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func issueNode(t *testing.T, ca *CA, id string) *Leaf {
	t.Helper()
	leaf, err := ca.IssueNode(id)
	if err != nil {
		t.Fatalf("IssueNode: %v", err)
	}
	return leaf
}

func TestLoadTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	leaf := issueNode(t, ca, "n1")
	certFile := writeFile(t, dir, "n1.crt", leaf.CertPEM)
	keyFile := writeFile(t, dir, "n1.key", leaf.KeyPEM)
	caFile := writeFile(t, dir, "ca.crt", ca.CertPEM())

	srv, err := LoadServerTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatalf("LoadServerTLS: %v", err)
	}
	if srv.MinVersion != tls.VersionTLS13 {
		t.Errorf("server MinVersion = %#x, want TLS 1.3", srv.MinVersion)
	}
	if srv.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("server ClientAuth = %v, want RequireAndVerifyClientCert", srv.ClientAuth)
	}
	if srv.ClientCAs == nil || len(srv.Certificates) != 1 || srv.Certificates[0].Leaf == nil {
		t.Fatalf("server config lacks client CAs or certificate")
	}
	if !srv.Certificates[0].Leaf.Equal(leaf.Cert) {
		t.Errorf("server certificate is not the one in %s", certFile)
	}

	cli, err := LoadClientTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatalf("LoadClientTLS: %v", err)
	}
	if cli.MinVersion != tls.VersionTLS13 || cli.RootCAs == nil || len(cli.Certificates) != 1 {
		t.Errorf("client config: MinVersion %#x, RootCAs set %v, %d certificates", cli.MinVersion, cli.RootCAs != nil, len(cli.Certificates))
	}
	if cli.InsecureSkipVerify {
		t.Errorf("client config skips verification")
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	leaf := issueNode(t, ca, "n1")
	other := issueNode(t, ca, "n2")
	goodCert := writeFile(t, dir, "good.crt", leaf.CertPEM)
	goodKey := writeFile(t, dir, "good.key", leaf.KeyPEM)
	goodCA := writeFile(t, dir, "ca.crt", ca.CertPEM())

	// A key-file body that must never appear in an error, raw or base64.
	const marker = "SECRET-KEY-MATERIAL-0123456789"
	bogusKey := pemBlock("PRIVATE KEY", []byte(marker))
	expired, err := ca.issue(&x509.Certificate{
		URIs:      leaf.Cert.URIs,
		NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter:  time.Now().Add(-24 * time.Hour),
	}, time.Now())
	if err != nil {
		t.Fatalf("issue expired: %v", err)
	}

	tests := []struct {
		name          string
		cert, key, ca string
		want          error
		mentions      string
	}{
		{"missing cert", filepath.Join(dir, "absent.crt"), goodKey, goodCA, fs.ErrNotExist, "absent.crt"},
		{"cert not pem", writeFile(t, dir, "junk.crt", []byte("not a certificate")), goodKey, goodCA, ErrNoCertificate, "junk.crt"},
		{"cert corrupt", writeFile(t, dir, "corrupt.crt", pemBlock("CERTIFICATE", []byte("garbage"))), goodKey, goodCA, ErrBadCertificate, "corrupt.crt"},
		{"missing key", goodCert, filepath.Join(dir, "absent.key"), goodCA, fs.ErrNotExist, "absent.key"},
		{"key corrupt", goodCert, writeFile(t, dir, "bogus.key", bogusKey), goodCA, ErrBadKey, "bogus.key"},
		{"key encrypted", goodCert, writeFile(t, dir, "enc.key", pemBlock("ENCRYPTED PRIVATE KEY", []byte(marker))), goodCA, ErrBadKey, "enc.key"},
		{"key absent from file", goodCert, writeFile(t, dir, "certonly.key", leaf.CertPEM), goodCA, ErrBadKey, "certonly.key"},
		{"key of another cert", goodCert, writeFile(t, dir, "other.key", other.KeyPEM), goodCA, ErrKeyMismatch, "other.key"},
		{"expired cert", writeFile(t, dir, "expired.crt", expired.CertPEM), writeFile(t, dir, "expired.key", expired.KeyPEM), goodCA, ErrExpired, "expired.crt"},
		{"missing ca", goodCert, goodKey, filepath.Join(dir, "absent-ca.crt"), fs.ErrNotExist, "absent-ca.crt"},
		{"ca empty", goodCert, goodKey, writeFile(t, dir, "empty-ca.crt", nil), ErrNoCertificate, "empty-ca.crt"},
		{"ca is a leaf", goodCert, goodKey, writeFile(t, dir, "leaf-ca.crt", leaf.CertPEM), ErrBadCertificate, "leaf-ca.crt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for side, load := range map[string]func(string, string, string) (*tls.Config, error){
				"server": LoadServerTLS, "client": LoadClientTLS,
			} {
				cfg, err := load(tc.cert, tc.key, tc.ca)
				if cfg != nil || !errors.Is(err, tc.want) {
					t.Fatalf("%s: got (%v, %v), want error wrapping %v", side, cfg != nil, err, tc.want)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.mentions) {
					t.Errorf("%s: error %q does not name %s", side, msg, tc.mentions)
				}
				if strings.Contains(msg, marker) || strings.Contains(msg, base64.StdEncoding.EncodeToString([]byte(marker))[:16]) {
					t.Errorf("%s: error message leaks key file contents", side)
				}
			}
		})
	}
}

func TestParsePrivateKeyFormats(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	// `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
	params := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	tests := []struct {
		name string
		pem  []byte
		pub  any
	}{
		{"pkcs8", pemBlock("PRIVATE KEY", pkcs8), &ec.PublicKey},
		{"sec1 after parameters", append(params, pemBlock("EC PRIVATE KEY", sec1)...), &ec.PublicKey},
		{"pkcs1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), &rsaKey.PublicKey},
	}
	for _, tc := range tests {
		signer, err := parsePrivateKey(tc.pem)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
			t.Errorf("%s: parsed a different key", tc.name)
		}
	}
}
