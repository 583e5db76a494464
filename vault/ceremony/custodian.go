package ceremony

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Size limits of keys and signatures in the encodings.
const (
	maxPublicKeyLen = 256 // P-256 PKIX is 91 bytes, Ed25519 44
	maxSignatureLen = 128 // ECDSA P-256 ASN.1 is at most 72 bytes, Ed25519 64
)

// Algorithm is a custodian signing algorithm. A plain value, safe for
// concurrent use.
type Algorithm uint8

const (
	// AlgEd25519 is pure Ed25519 (RFC 8032) over the message.
	AlgEd25519 Algorithm = 1
	// AlgECDSAP256 is ECDSA on P-256 over SHA-256 of the message, with an
	// ASN.1 DER signature.
	AlgECDSAP256 Algorithm = 2
)

// String returns "ed25519" or "ecdsa-p256".
func (a Algorithm) String() string {
	switch a {
	case AlgEd25519:
		return "ed25519"
	case AlgECDSAP256:
		return "ecdsa-p256"
	}
	return "algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm is the inverse of String.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "ed25519":
		return AlgEd25519, nil
	case "ecdsa-p256":
		return AlgECDSAP256, nil
	}
	return 0, fmt.Errorf("%w: algorithm must be ed25519 or ecdsa-p256", ErrUnsupportedKey)
}

// Fingerprint identifies a custodian public key: SHA-256 of its PKIX DER
// encoding. Public; may be logged. A plain value, safe for concurrent use.
type Fingerprint [32]byte

// FingerprintOf returns the fingerprint of a PKIX DER public key.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns "sha256:" and 64 lower-case hex digits.
func (f Fingerprint) String() string { return "sha256:" + hex.EncodeToString(f[:]) }

// Short returns the first 16 hex digits, for listings.
func (f Fingerprint) Short() string { return hex.EncodeToString(f[:8]) }

// IsZero reports whether f is all zeros (no key).
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// ParsePublicKey parses a custodian public key: PKIX DER, Ed25519 or ECDSA
// on P-256, in its one canonical encoding (re-encoding it gives the same
// bytes, so one key has one fingerprint). Anything else fails with
// ErrUnsupportedKey.
func ParsePublicKey(der []byte) (crypto.PublicKey, Algorithm, error) {
	if len(der) == 0 || len(der) > maxPublicKeyLen {
		return nil, 0, fmt.Errorf("%w: public key must be 1 to %d bytes of PKIX DER", ErrUnsupportedKey, maxPublicKeyLen)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: public key is not PKIX DER", ErrUnsupportedKey)
	}
	alg, err := algorithmOf(pub)
	if err != nil {
		return nil, 0, err
	}
	again, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || !bytes.Equal(again, der) {
		return nil, 0, fmt.Errorf("%w: public key encoding is not canonical", ErrUnsupportedKey)
	}
	return pub, alg, nil
}

// MarshalPublicKey returns the PKIX DER encoding of an Ed25519 or ECDSA
// P-256 public key.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if _, err := algorithmOf(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return der, nil
}

// algorithmOf returns the algorithm of a supported public key.
func algorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return AlgEd25519, nil
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve == elliptic.P256() {
			return AlgECDSAP256, nil
		}
	}
	return 0, fmt.Errorf("%w: only ed25519 and ecdsa p-256 keys are accepted", ErrUnsupportedKey)
}

// Verify checks sig over msg with pub (Ed25519, or ECDSA P-256 over
// SHA-256 with an ASN.1 signature). It returns nil, ErrBadSignature or
// ErrUnsupportedKey.
func Verify(pub crypto.PublicKey, msg, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if _, err := algorithmOf(k); err != nil {
			return err
		}
		ok = ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		if _, err := algorithmOf(k); err != nil {
			return err
		}
		d := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(k, d[:], sig)
	default:
		return fmt.Errorf("%w: only ed25519 and ecdsa p-256 keys are accepted", ErrUnsupportedKey)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// verifyDER parses der and verifies sig over msg with it.
func verifyDER(der, msg, sig []byte) error {
	pub, _, err := ParsePublicKey(der)
	if err != nil {
		return err
	}
	return Verify(pub, msg, sig)
}

// Custodian is a registered key custodian: a person who holds a signing
// key (in their own PKCS#11 token, or a key file in dev mode) and approves
// or rejects ceremonies with it. The private key never reaches the vault.
//
// A Custodian is a plain value: safe for concurrent reads; do not mutate
// one held by a Registry.
type Custodian struct {
	// Name is the custodian's name, [a-z][a-z0-9_-]{0,62}.
	Name string
	// PublicKey is the PKIX DER public key (Ed25519 or ECDSA P-256).
	PublicKey []byte
	// Acknowledged is when the custodian signed the acknowledgement of
	// duties (their clock); AckSignature is that signature over
	// AcknowledgementMessage(Name, Fingerprint(), Acknowledged).
	Acknowledged time.Time
	AckSignature []byte
	// Registered is when the registration took effect (cluster
	// initialisation, or execution of an AddCustodian ceremony).
	Registered time.Time
}

// Fingerprint returns the fingerprint of the custodian's public key.
func (c Custodian) Fingerprint() Fingerprint { return FingerprintOf(c.PublicKey) }

// Algorithm returns the custodian key's algorithm.
func (c Custodian) Algorithm() (Algorithm, error) {
	_, a, err := ParsePublicKey(c.PublicKey)
	return a, err
}

// VerifyAcknowledgement checks the custodian's signature over their
// acknowledgement of duties (PCI DSS 3.7.8): the fixed Duties text, their
// name, their key's fingerprint and the date, as AcknowledgementStatement
// renders it.
func (c Custodian) VerifyAcknowledgement() error {
	if err := c.validate(false); err != nil {
		return err
	}
	msg := AcknowledgementMessage(c.Name, c.Fingerprint(), c.Acknowledged)
	if err := verifyDER(c.PublicKey, msg, c.AckSignature); err != nil {
		return fmt.Errorf("custodian %s: acknowledgement of duties: %w", c.Name, err)
	}
	return nil
}

// validate checks the fields (Registered is not checked: it is zero in an
// AddCustodian proposal) and, with verifyAck, the acknowledgement.
func (c Custodian) validate(verifyAck bool) error {
	if err := checkName("custodian name", c.Name); err != nil {
		return err
	}
	if _, _, err := ParsePublicKey(c.PublicKey); err != nil {
		return err
	}
	if !encodableTime(c.Acknowledged) {
		return fmt.Errorf("%w: acknowledgement time is required", ErrInvalid)
	}
	if len(c.AckSignature) == 0 || len(c.AckSignature) > maxSignatureLen {
		return fmt.Errorf("%w: acknowledgement signature must be 1 to %d bytes", ErrInvalid, maxSignatureLen)
	}
	if verifyAck {
		return c.VerifyAcknowledgement()
	}
	return nil
}
