package pki

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions of this package wrap them with %w, adding the file,
// identity or configuration key concerned; test with errors.Is.
var (
	// ErrNoCertificate means a PEM file holds no CERTIFICATE block.
	ErrNoCertificate = errors.New("no certificate found")
	// ErrBadCertificate means a certificate cannot be parsed, or is not fit for
	// its use (a CA file entry that is not a CA certificate).
	ErrBadCertificate = errors.New("bad certificate")
	// ErrBadKey means a private key file holds no usable private key (missing,
	// encrypted, malformed or of an unsupported type).
	ErrBadKey = errors.New("bad private key")
	// ErrKeyMismatch means a private key is not the key of its certificate.
	ErrKeyMismatch = errors.New("private key does not match certificate")
	// ErrExpired means a certificate is outside its validity period.
	ErrExpired = errors.New("certificate expired or not yet valid")
	// ErrNoIdentity means a certificate has neither a URI SAN nor a common name.
	ErrNoIdentity = errors.New("certificate names no identity")
	// ErrUnauthenticated means a connection carries no verified client
	// certificate (not TLS, or no certificate chain was verified).
	ErrUnauthenticated = errors.New("no verified client certificate")
	// ErrPermissionDenied means an identity lacks every role an action allows.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownIdentity means an identity is not in the Authorizer's
	// configuration. It wraps ErrPermissionDenied: unknown identities are denied.
	ErrUnknownIdentity = fmt.Errorf("unknown identity: %w", ErrPermissionDenied)
	// ErrInvalidConfig means an Authorizer configuration is malformed.
	ErrInvalidConfig = errors.New("invalid authorization config")
	// ErrInvalidName means a node, admin or client name, or a host name, cannot
	// be used in a certificate or a file name.
	ErrInvalidName = errors.New("invalid name")
	// ErrIncompleteCA means a dev CA directory holds only one of the CA's
	// certificate and key; it is never overwritten automatically.
	ErrIncompleteCA = errors.New("incomplete ca: certificate or key file missing")
)
