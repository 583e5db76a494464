// Package pkitest gives tests a throwaway certificate authority and ready
// TLS 1.3 configurations with panvault's production policy (pki.ServerConfig
// and pki.ClientConfig), so that every test of a gRPC service or of the Raft
// transport runs real mutual TLS over loopback instead of an insecure channel.
//
// Helpers fail the test through testing.TB on error; they never put key
// material in a failure message.
package pkitest

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/panvault/panvault/vault/pki"
)

// CA is an in-memory pki.CA bound to a test. Safe for concurrent use by the
// test's goroutines (it only issues certificates), but its helpers call
// tb.Fatalf and therefore belong on the test goroutine.
type CA struct {
	*pki.CA
	tb testing.TB
}

// NewCA creates a fresh CA for tb. Certificates of one NewCA are not trusted by
// configurations of another, which makes "wrong CA" tests one line.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	ca, err := pki.NewCA()
	if err != nil {
		tb.Fatalf("pkitest: new ca: %v", err)
	}
	return &CA{CA: ca, tb: tb}
}

// Node issues a node certificate for id (names localhost, 127.0.0.1, ::1) and
// returns the server and client configurations a node uses: it serves gRPC and
// Raft with the first and dials other nodes with the second.
func (c *CA) Node(id string) (server, client *tls.Config) {
	c.tb.Helper()
	leaf := c.must(c.IssueNode(id))
	return pki.ServerConfig(leaf.TLSCertificate(), c.Pool()), pki.ClientConfig(leaf.TLSCertificate(), c.Pool())
}

// Server returns the server configuration of node id (see Node).
func (c *CA) Server(id string) *tls.Config {
	c.tb.Helper()
	s, _ := c.Node(id)
	return s
}

// Client returns a client configuration whose certificate names
// pki.ClientIdentity(name).
func (c *CA) Client(name string) *tls.Config {
	c.tb.Helper()
	return pki.ClientConfig(c.must(c.IssueClient(name)).TLSCertificate(), c.Pool())
}

// Admin returns a client configuration whose certificate names
// pki.AdminIdentity(name).
func (c *CA) Admin(name string) *tls.Config {
	c.tb.Helper()
	return pki.ClientConfig(c.must(c.IssueAdmin(name)).TLSCertificate(), c.Pool())
}

// WriteFiles writes leaf's certificate and key (mode 0600) and the CA
// certificate into dir as <base>.crt, <base>.key and ca.crt, for code that
// takes file names (pki.LoadServerTLS, the CLI).
func (c *CA) WriteFiles(dir, base string, leaf *pki.Leaf) pki.CertFiles {
	c.tb.Helper()
	f := pki.CertFiles{
		Cert:     filepath.Join(dir, base+".crt"),
		Key:      filepath.Join(dir, base+".key"),
		CA:       filepath.Join(dir, pki.CACertFileName),
		Identity: leaf.Identity(),
	}
	for _, w := range []struct {
		path string
		data []byte
		perm os.FileMode
	}{{f.Key, leaf.KeyPEM, 0o600}, {f.Cert, leaf.CertPEM, 0o644}, {f.CA, c.CertPEM(), 0o644}} {
		if err := os.WriteFile(w.path, w.data, w.perm); err != nil {
			c.tb.Fatalf("pkitest: write %s: %v", w.path, err)
		}
	}
	return f
}

func (c *CA) must(leaf *pki.Leaf, err error) *pki.Leaf {
	c.tb.Helper()
	if err != nil {
		c.tb.Fatalf("pkitest: issue certificate: %v", err)
	}
	return leaf
}
