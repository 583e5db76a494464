package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// Validity periods of what the CA issues. Dev and test material only: a
// production CA is not this package's business.
const (
	// CAValidity is how long a new CA certificate is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long an issued certificate is valid (never beyond the
	// CA's own expiry).
	LeafValidity = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a certificate issued on one machine
	// is valid at once on another whose clock is slightly behind.
	clockSkew = 5 * time.Minute
)

// CA is a small ECDSA P-256 certificate authority for dev mode and tests. It
// issues node certificates (server and client authentication) and admin and
// client certificates (client authentication), each naming its identity in a
// URI SAN (see NodeIdentity, AdminIdentity, ClientIdentity).
//
// A CA is immutable after creation and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// NewCA creates a CA with a fresh ECDSA P-256 key, held in memory only. Use
// NewDevCA to keep one in a directory.
func NewCA() (*CA, error) {
	return newCA(time.Now())
}

func newCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial's start in the name tells dev CAs apart in error messages
		// and `openssl x509 -text` output.
		Subject: pkix.Name{
			Organization: []string{"panvault"},
			CommonName:   fmt.Sprintf("panvault dev CA %.4x", serial.Bytes()),
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // issues leaves only, never intermediates
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new ca certificate: %w", err)
	}
	return &CA{cert: cert, certPEM: pemCert(der), key: key}, nil
}

// Certificate returns the CA certificate. Callers must not modify it.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate, PEM encoded (a copy).
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// Pool returns a new certificate pool holding only this CA, for ServerConfig
// and ClientConfig.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// IssueNode issues a certificate for node id, valid for TLS server and client
// authentication (nodes dial each other), with identity NodeIdentity(id) and
// names localhost, 127.0.0.1 and ::1 plus hosts (DNS names or IP addresses).
// id must be 1 to 63 characters from ASCII letters, digits, '.', '_' and '-',
// starting with a letter or digit; errors wrap ErrInvalidName.
func (c *CA) IssueNode(id string, hosts ...string) (*Leaf, error) {
	tmpl, err := leafTemplate(kindNode, id, hosts)
	if err != nil {
		return nil, err
	}
	return c.issue(tmpl, time.Now())
}

// IssueAdmin issues a client-authentication certificate with identity
// AdminIdentity(name). Name rules as for IssueNode.
func (c *CA) IssueAdmin(name string) (*Leaf, error) {
	tmpl, err := leafTemplate(kindAdmin, name, nil)
	if err != nil {
		return nil, err
	}
	return c.issue(tmpl, time.Now())
}

// IssueClient issues a client-authentication certificate with identity
// ClientIdentity(name). Name rules as for IssueNode.
func (c *CA) IssueClient(name string) (*Leaf, error) {
	tmpl, err := leafTemplate(kindClient, name, nil)
	if err != nil {
		return nil, err
	}
	return c.issue(tmpl, time.Now())
}

// Leaf is an issued certificate with its private key. It holds key material:
// never log it. A Leaf is immutable and safe for concurrent use; callers must
// not modify its fields.
type Leaf struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// CertPEM is the certificate, PEM encoded (without the CA certificate).
	CertPEM []byte
	// KeyPEM is the private key, PEM encoded as PKCS #8 ("PRIVATE KEY").
	KeyPEM []byte
	key    crypto.Signer
}

// TLSCertificate returns the certificate and key for ServerConfig or
// ClientConfig.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.key, Leaf: l.Cert}
}

// Identity returns the identity the certificate names (see IdentityFromCert).
func (l *Leaf) Identity() string {
	id, _ := IdentityFromCert(l.Cert) // every issued leaf has a URI SAN
	return id
}

// The kinds of leaf the CA issues; each is the first path segment of the
// identity URI and the prefix of the dev CA's file names.
const (
	kindNode   = "node"
	kindAdmin  = "admin"
	kindClient = "client"
)

// validName keeps names usable both as a URI path segment and as part of a
// file name.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// defaultNodeHosts are the names every node certificate carries, so that a
// local cluster works whichever loopback form clients dial.
var defaultNodeHosts = []string{"localhost", "127.0.0.1", "::1"}

// leafTemplate returns the certificate template (without serial, validity or
// key) for a leaf of kind with name, and for nodes the extra hosts.
func leafTemplate(kind, name string, hosts []string) (*x509.Certificate, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("pki: %s name %q: %w", kind, name, ErrInvalidName)
	}
	uri, err := url.Parse(devIdentity(kind, name))
	if err != nil {
		return nil, fmt.Errorf("pki: %s name %q: %w", kind, name, ErrInvalidName)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"panvault"},
			CommonName:   "panvault " + kind + " " + name,
		},
		URIs:        []*url.URL{uri},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if kind != kindNode {
		if len(hosts) > 0 {
			return nil, fmt.Errorf("pki: %s certificates carry no host names: %w", kind, ErrInvalidName)
		}
		return tmpl, nil
	}
	tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	for _, h := range append(append([]string(nil), defaultNodeHosts...), hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			continue
		}
		if !validDNSName(h) {
			return nil, fmt.Errorf("pki: node %q host %q: %w", name, h, ErrInvalidName)
		}
		if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl, nil
}

var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validDNSName accepts host names of letters, digits and inner hyphens, in
// labels of up to 63 characters; no wildcards.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i == len(h) || h[i] == '.' {
			if !dnsLabel.MatchString(h[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// issue signs tmpl with a fresh ECDSA P-256 key. A zero NotBefore or NotAfter
// is filled from now and LeafValidity, and NotAfter never passes the CA's.
func (c *CA) issue(tmpl *x509.Certificate, now time.Time) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	t := *tmpl
	if t.SerialNumber, err = randomSerial(); err != nil {
		return nil, err
	}
	if t.NotBefore.IsZero() {
		t.NotBefore = now.Add(-clockSkew)
	}
	if t.NotAfter.IsZero() {
		t.NotAfter = now.Add(LeafValidity)
	}
	if t.NotAfter.After(c.cert.NotAfter) {
		t.NotAfter = c.cert.NotAfter
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, &t, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate for %q: %w", t.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode new key: %w", err)
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: pemCert(der),
		KeyPEM:  pemBlock("PRIVATE KEY", keyDER),
		key:     key,
	}, nil
}

// randomSerial returns a random positive 128-bit serial number (RFC 5280 allows
// up to 20 octets; unpredictable serials are CA/Browser Forum practice).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func pemCert(der []byte) []byte { return pemBlock("CERTIFICATE", der) }

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
