package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestIdentityFromCert(t *testing.T) {
	ca := newTestCA(t)
	issue := func(tmpl *x509.Certificate) *x509.Certificate {
		t.Helper()
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		leaf, err := ca.issue(tmpl, time.Now())
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		return leaf.Cert
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"first uri san wins over later ones and the cn", issue(&x509.Certificate{
			Subject: pkix.Name{CommonName: "cn-ignored"},
			URIs:    []*url.URL{mustURL(t, "spiffe://panvault/client/payments"), mustURL(t, "urn:panvault:client:other")},
		}), "spiffe://panvault/client/payments"},
		{"urn san", issue(&x509.Certificate{URIs: []*url.URL{mustURL(t, "urn:panvault:admin:alice")}}), "urn:panvault:admin:alice"},
		{"cn fallback", issue(&x509.Certificate{Subject: pkix.Name{CommonName: "payments-gateway"}}), "payments-gateway"},
		{"dns san is not an identity", issue(&x509.Certificate{
			Subject:  pkix.Name{CommonName: "batch-job"},
			DNSNames: []string{"batch.example"},
		}), "batch-job"},
		{"issued client", mustLeaf(t)(ca.IssueClient("payments")).Cert, ClientIdentity("payments")},
		{"issued admin", mustLeaf(t)(ca.IssueAdmin("ops")).Cert, AdminIdentity("ops")},
		{"issued node", mustLeaf(t)(ca.IssueNode("n3")).Cert, NodeIdentity("n3")},
	}
	for _, tc := range tests {
		got, err := IdentityFromCert(tc.cert)
		if err != nil || got != tc.want {
			t.Errorf("%s: IdentityFromCert = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}

	anonymous := issue(&x509.Certificate{DNSNames: []string{"only-a-host.example"}})
	if id, err := IdentityFromCert(anonymous); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("certificate without uri or cn: got %q, %v; want ErrNoIdentity", id, err)
	}
	if id, err := IdentityFromCert(nil); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("nil certificate: got %q, %v; want ErrNoIdentity", id, err)
	}
}

func mustLeaf(t *testing.T) func(*Leaf, error) *Leaf {
	return func(l *Leaf, err error) *Leaf {
		t.Helper()
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		return l
	}
}

func TestDevIdentities(t *testing.T) {
	for got, want := range map[string]string{
		NodeIdentity("n1"):        "spiffe://panvault.dev/node/n1",
		AdminIdentity("alice"):    "spiffe://panvault.dev/admin/alice",
		ClientIdentity("payment"): "spiffe://panvault.dev/client/payment",
	} {
		if got != want {
			t.Errorf("identity %q, want %q", got, want)
		}
	}
}

// The success paths of PeerIdentity and ConnIdentity run over real TLS in
// handshake_test.go and grpc_test.go; these force the refusals.
func TestPeerIdentityRefusesUnverifiedPeers(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	ca := newTestCA(t)
	leaf := mustLeaf(t)(ca.IssueClient("payments"))
	contexts := map[string]context.Context{
		"no peer":       context.Background(),
		"insecure peer": peer.NewContext(context.Background(), &peer.Peer{Addr: addr, AuthInfo: insecureInfo{}}),
		"tls without verified chain": peer.NewContext(context.Background(), &peer.Peer{Addr: addr, AuthInfo: credentials.TLSInfo{
			// A presented but unverified certificate must not count.
			State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert}},
		}}),
	}
	for name, ctx := range contexts {
		if id, err := PeerIdentity(ctx); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: PeerIdentity = %q, %v; want ErrUnauthenticated", name, id, err)
		}
	}
	if _, err := VerifiedLeaf(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("empty verified chain: %v; want ErrUnauthenticated", err)
	}
}

type insecureInfo struct{}

func (insecureInfo) AuthType() string { return "insecure" }
