package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/pki/pkitest"
)

// handshake is what the server side saw of one connection.
type handshake struct {
	identity string
	version  uint16
	err      error
}

// serveTLS accepts TLS connections on 127.0.0.1 with cfg until the test ends.
// For each connection it reports the handshake on the returned channel and,
// on success, writes one byte so that the client can tell a completed
// handshake from one the server refused afterwards (in TLS 1.3 the server
// checks the client certificate after the client's handshake has returned).
func serveTLS(t *testing.T, cfg *tls.Config) (string, <-chan handshake) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan handshake, 16)
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			results <- serveOne(conn, cfg)
		}
	}()
	return ln.Addr().String(), results
}

func serveOne(conn net.Conn, cfg *tls.Config) handshake {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return handshake{err: err}
	}
	cs := tc.ConnectionState()
	id, err := pki.ConnIdentity(cs)
	if err != nil {
		return handshake{err: err}
	}
	if _, err := tc.Write([]byte{1}); err != nil {
		return handshake{err: err}
	}
	return handshake{identity: id, version: cs.Version}
}

// dialTLS connects to addr with cfg and waits for the server's byte. It returns
// the server identity the client verified.
func dialTLS(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return "", err
	}
	return pki.ConnIdentity(conn.ConnectionState())
}

func receive(t *testing.T, ch <-chan handshake) handshake {
	t.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(20 * time.Second):
		t.Fatal("server saw no connection")
		return handshake{}
	}
}

// devFiles issues a node and an admin certificate from a dev CA on disk and
// loads them the way the server and the CLI do.
func devFiles(t *testing.T) (server, client *tls.Config, d *pki.DevCA) {
	t.Helper()
	d, err := pki.NewDevCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	nf, err := d.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	af, err := d.Admin("ops")
	if err != nil {
		t.Fatal(err)
	}
	if server, err = pki.LoadServerTLS(nf.Cert, nf.Key, nf.CA); err != nil {
		t.Fatal(err)
	}
	if client, err = pki.LoadClientTLS(af.Cert, af.Key, af.CA); err != nil {
		t.Fatal(err)
	}
	return server, client, d
}

func TestMutualTLSWithDevCertificates(t *testing.T) {
	server, client, _ := devFiles(t)
	addr, seen := serveTLS(t, server)

	for _, serverName := range []string{"", "localhost", "127.0.0.1"} {
		cfg := client.Clone()
		cfg.ServerName = serverName // "" means: from the dialled address
		got, err := dialTLS(addr, cfg)
		if err != nil {
			t.Fatalf("server name %q: handshake failed: %v", serverName, err)
		}
		if got != pki.NodeIdentity("n1") {
			t.Errorf("client verified server identity %q, want %q", got, pki.NodeIdentity("n1"))
		}
		h := receive(t, seen)
		if h.err != nil || h.identity != pki.AdminIdentity("ops") || h.version != tls.VersionTLS13 {
			t.Errorf("server saw identity %q, version %#x, err %v; want %q over TLS 1.3", h.identity, h.version, h.err, pki.AdminIdentity("ops"))
		}
	}
}

func TestNodesAuthenticateEachOther(t *testing.T) {
	ca := pkitest.NewCA(t)
	n1server, _ := ca.Node("n1")
	_, n2client := ca.Node("n2")
	addr, seen := serveTLS(t, n1server)
	if got, err := dialTLS(addr, n2client); err != nil || got != pki.NodeIdentity("n1") {
		t.Fatalf("node n2 dialling n1: %q, %v", got, err)
	}
	if h := receive(t, seen); h.err != nil || h.identity != pki.NodeIdentity("n2") {
		t.Errorf("n1 saw %q, %v; want %q", h.identity, h.err, pki.NodeIdentity("n2"))
	}
}

func TestHandshakeRefusals(t *testing.T) {
	server, client, d := devFiles(t)
	stranger := pkitest.NewCA(t)

	noCert := client.Clone()
	noCert.Certificates = nil

	// An honest Go client withholds a certificate whose issuer is not among the
	// server's acceptable CAs; an attacker sends it anyway.
	foreign, err := stranger.IssueClient("payments")
	if err != nil {
		t.Fatal(err)
	}
	otherCAClient := pki.ClientConfig(foreign.TLSCertificate(), d.CA().Pool())
	otherCAClient.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := foreign.TLSCertificate()
		return &c, nil
	}

	tls12 := client.Clone()
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	wrongName := client.Clone()
	wrongName.ServerName = "vault.attacker.example"

	distrusting := client.Clone()
	distrusting.RootCAs = stranger.Pool()

	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	tests := []struct {
		name   string
		client *tls.Config
		// why checks that the handshake failed for the intended reason.
		why func(clientErr, serverErr error) bool
	}{
		{"client without certificate", noCert, func(_, s error) bool {
			return strings.Contains(s.Error(), "didn't provide a certificate")
		}},
		{"client certificate from another CA", otherCAClient, func(_, s error) bool { return errors.As(s, &unknownCA) }},
		{"TLS 1.2 only client", tls12, func(c, s error) bool {
			return strings.Contains(s.Error(), "unsupported versions") && strings.Contains(c.Error(), "protocol version")
		}},
		{"server name not in certificate", wrongName, func(c, _ error) bool { return errors.As(c, &badHost) }},
		{"client does not trust the server's CA", distrusting, func(c, _ error) bool { return errors.As(c, &unknownCA) }},
	}
	addr, seen := serveTLS(t, server)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, clientErr := dialTLS(addr, tc.client)
			if clientErr == nil {
				t.Fatalf("connection succeeded (server identity %q)", id)
			}
			h := receive(t, seen)
			if h.err == nil {
				t.Fatalf("server accepted the connection: identity %q", h.identity)
			}
			if !tc.why(clientErr, h.err) {
				t.Errorf("refused for another reason: client %v; server %v", clientErr, h.err)
			}
		})
	}
}

// A certificate issued for client authentication only cannot serve: clients
// require the server-authentication usage.
func TestClientCertificateCannotServe(t *testing.T) {
	ca := pkitest.NewCA(t)
	adminLeaf, err := ca.IssueAdmin("ops")
	if err != nil {
		t.Fatal(err)
	}
	addr, seen := serveTLS(t, pki.ServerConfig(adminLeaf.TLSCertificate(), ca.Pool()))
	if _, err := dialTLS(addr, ca.Client("payments")); err == nil {
		t.Fatal("client accepted a server presenting a client-only certificate")
	}
	if h := receive(t, seen); h.err == nil {
		t.Errorf("server side completed: identity %q", h.identity)
	}
}
