package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// DevTrustDomain is the SPIFFE trust domain of the identities the dev CA
// issues. Production certificates may use any URI or common name; the
// Authorizer compares identities as exact strings.
const DevTrustDomain = "panvault.dev"

// NodeIdentity returns the identity the dev CA gives node id:
// spiffe://panvault.dev/node/<id>.
func NodeIdentity(id string) string { return devIdentity("node", id) }

// DevNodePattern is the Authorizer entry that gives RoleNode to every node
// certificate the dev CA issues (spiffe://panvault.dev/node/<id>).
const DevNodePattern = "spiffe://" + DevTrustDomain + "/node/*"

// AdminIdentity returns the identity the dev CA gives administrator name:
// spiffe://panvault.dev/admin/<name>.
func AdminIdentity(name string) string { return devIdentity("admin", name) }

// ClientIdentity returns the identity the dev CA gives client name:
// spiffe://panvault.dev/client/<name>.
func ClientIdentity(name string) string { return devIdentity("client", name) }

func devIdentity(kind, name string) string {
	return "spiffe://" + DevTrustDomain + "/" + kind + "/" + name
}

// IdentityFromCert returns the identity a certificate names: its first URI SAN
// (for example spiffe://panvault.dev/client/payments or urn:panvault:client:x)
// when it has one, else its subject common name. It returns ErrNoIdentity when
// the certificate names neither. Pass only a verified leaf certificate.
func IdentityFromCert(c *x509.Certificate) (string, error) {
	if c == nil {
		return "", ErrNoIdentity
	}
	if len(c.URIs) > 0 {
		if id := c.URIs[0].String(); id != "" {
			return id, nil
		}
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName, nil
	}
	return "", fmt.Errorf("pki: certificate serial %s: %w", c.SerialNumber, ErrNoIdentity)
}

// VerifiedLeaf returns the leaf certificate of the first chain the TLS
// handshake verified. It returns ErrUnauthenticated when no chain was verified
// (no client certificate, or a config that does not verify): an unverified
// certificate names no one.
func VerifiedLeaf(cs tls.ConnectionState) (*x509.Certificate, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, fmt.Errorf("pki: %w", ErrUnauthenticated)
	}
	return cs.VerifiedChains[0][0], nil
}

// ConnIdentity returns the identity of the verified peer of a TLS connection
// (IdentityFromCert of VerifiedLeaf). For raw TLS connections such as the Raft
// transport.
func ConnIdentity(cs tls.ConnectionState) (string, error) {
	leaf, err := VerifiedLeaf(cs)
	if err != nil {
		return "", err
	}
	return IdentityFromCert(leaf)
}

// PeerIdentity returns the identity of the caller of a gRPC call, from the
// verified client certificate of its TLS connection (ctx is the handler's or
// interceptor's context). It returns ErrUnauthenticated when the call did not
// arrive over TLS with a verified client certificate.
func PeerIdentity(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", fmt.Errorf("pki: no grpc peer in context: %w", ErrUnauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", fmt.Errorf("pki: grpc peer not authenticated by tls: %w", ErrUnauthenticated)
	}
	return ConnIdentity(info.State)
}
