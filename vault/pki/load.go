package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

// loadKeyPair reads a PEM certificate chain (leaf first) and its PEM private
// key, checks that they belong together and that the leaf is within its
// validity period at now. Errors name the file concerned and never quote its
// contents.
func loadKeyPair(certFile, keyFile string, now time.Time) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: certificate file: %w", err)
	}
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: certificate file %q: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: key file: %w", err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: key file %q: %w", keyFile, err)
	}
	return assemble(chain, key, now, func() string {
		return fmt.Sprintf("certificate file %q with key file %q", certFile, keyFile)
	})
}

// assemble checks a parsed chain and key and builds the tls.Certificate. what
// describes the source for error messages (computed only on failure).
func assemble(chain []*x509.Certificate, key crypto.Signer, now time.Time, what func() string) (tls.Certificate, error) {
	leaf := chain[0]
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("pki: %s: %w", what(), ErrKeyMismatch)
	}
	if err := checkValidity(leaf, now); err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %s: %w", what(), err)
	}
	out := tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out, nil
}

// loadCAPool reads one or more PEM CA certificates into a pool. Every
// certificate must be a CA certificate: a leaf in a CA file is a mistake that
// would otherwise show up only as handshake failures.
func loadCAPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: ca file: %w", err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("pki: ca file %q: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	for i, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("pki: ca file %q: certificate %d (%q) is not a ca: %w",
				caFile, i, c.Subject.CommonName, ErrBadCertificate)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCertificates returns every CERTIFICATE block of PEM data, in order.
// Other block types are skipped.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			// The x509 parse error describes structure, not contents; it is
			// still left out: the sentinel and block number are enough.
			return nil, fmt.Errorf("certificate %d: %w", len(out), ErrBadCertificate)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNoCertificate
	}
	return out, nil
}

// parsePrivateKey returns the first private key of PEM data: PKCS #8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY").
// Parser errors are not wrapped: they could echo bytes of the key.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("no pem private key block: %w", ErrBadKey)
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			if strings.HasSuffix(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("unsupported pem block type %q (encrypted keys are not supported): %w", block.Type, ErrBadKey)
			}
			continue // for example "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("malformed %q block: %w", block.Type, ErrBadKey)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key type %T cannot sign: %w", key, ErrBadKey)
		}
		return signer, nil
	}
}

// checkValidity reports ErrExpired when now is outside c's validity period.
func checkValidity(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("valid from %s: %w", c.NotBefore.UTC().Format(time.RFC3339), ErrExpired)
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("expired %s: %w", c.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}
