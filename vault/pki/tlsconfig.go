package pki

import (
	"crypto/tls"
	"crypto/x509"
	"time"
)

// ServerConfig returns panvault's server TLS policy for an already loaded
// certificate: TLS 1.3 only, and a client certificate is required and verified
// against clientCAs (with the client-authentication extended key usage).
//
// The returned config is fresh on every call; once handed to a listener it must
// not be modified, after which it is safe for concurrent use.
func ServerConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
}

// ClientConfig returns panvault's client TLS policy for an already loaded
// certificate: TLS 1.3 only, presenting cert, and verifying the server against
// rootCAs (with the server-authentication extended key usage).
//
// ServerName is left empty: gRPC fills it from the dial target's authority and
// tls.Dial from the address, so the server's certificate must name the host or
// IP address that clients dial. Set ServerName on the returned config to dial
// by one name and verify another. Concurrency as for ServerConfig.
func ClientConfig(cert tls.Certificate, rootCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      rootCAs,
	}
}

// LoadServerTLS reads a PEM certificate chain (leaf first), its PEM private key
// and a PEM file of CA certificates, and returns ServerConfig for them. The
// certificate must be currently valid and match the key. Errors name the file
// that failed and wrap ErrNoCertificate, ErrBadCertificate, ErrBadKey,
// ErrKeyMismatch, ErrExpired or the *fs.PathError of a file that cannot be
// read.
func LoadServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := loadAll(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return ServerConfig(cert, pool), nil
}

// LoadClientTLS is LoadServerTLS for the client side: it returns ClientConfig
// for the files. Errors as for LoadServerTLS.
func LoadClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, pool, err := loadAll(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return ClientConfig(cert, pool), nil
}

func loadAll(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := loadKeyPair(certFile, keyFile, time.Now())
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool, err := loadCAPool(caFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}
