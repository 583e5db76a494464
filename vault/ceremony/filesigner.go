package ceremony

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxKeyFileSize bounds a key file read.
const maxKeyFileSize = 16 << 10

const pemPrivateKey = "PRIVATE KEY"

// FileSigner is a custodian key kept in a file: PEM "PRIVATE KEY" (PKCS#8),
// Ed25519 or ECDSA P-256, mode 0600. It is for dev mode (`panvault dev`
// writes three under DIR/custodians/) and tests; in production each
// custodian's key lives in their own PKCS#11 token. Safe for concurrent
// use.
type FileSigner struct {
	priv crypto.Signer
	alg  Algorithm
	der  []byte
}

// GenerateKeyFile creates a new key of algorithm alg and writes it to
// path, which must not exist; the file is created with mode 0600 and
// synced. The directory must exist.
func GenerateKeyFile(path string, alg Algorithm) (*FileSigner, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("%w: algorithm must be ed25519 or ecdsa-p256", ErrUnsupportedKey)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrKeyFile, err)
	}
	s, err := newFileSigner(priv)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrKeyFile, err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: p8})
	clear(p8)
	defer clear(out)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if _, err := f.Write(out); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: write %s: %w", ErrKeyFile, path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: sync %s: %w", ErrKeyFile, path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: close %s: %w", ErrKeyFile, path, err)
	}
	return s, nil
}

// LoadOrGenerateKeyFile loads the key file at path, or generates one of
// algorithm alg there if none exists (for `panvault dev`, which keeps its
// directory across restarts). created says which happened.
func LoadOrGenerateKeyFile(path string, alg Algorithm) (s *FileSigner, created bool, err error) {
	s, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, false, err
	}
	s, err = GenerateKeyFile(path, alg)
	return s, err == nil, err
}

// LoadKeyFile reads a key file. It refuses a file that is not a regular
// file, is readable or writable by group or others, is larger than 16 KiB,
// holds anything but exactly one PEM "PRIVATE KEY" block (PKCS#8, no
// headers, only white space around it), or a key that is not Ed25519 or
// ECDSA P-256. Errors wrap ErrKeyFile (or ErrUnsupportedKey) and never
// contain key bytes.
func LoadKeyFile(path string) (*FileSigner, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has permissions %v: must not be accessible by group or others", ErrKeyFile, path, st.Mode().Perm())
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	defer clear(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrKeyFile, path, err)
	}
	if len(raw) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, maxKeyFileSize)
	}
	s, err := parseKeyPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// parseKeyPEM parses the contents of a key file.
func parseKeyPEM(raw []byte) (*FileSigner, error) {
	block, rest := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFile)
	}
	defer clear(block.Bytes)
	if block.Type != pemPrivateKey || len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: PEM block must be %q without headers", ErrKeyFile, pemPrivateKey)
	}
	// Nothing but white space around the one block: pem.Decode skips
	// leading text and broken blocks, this does not.
	consumed := bytes.TrimLeft(raw[:len(raw)-len(rest)], " \t\r\n")
	if len(bytes.TrimSpace(rest)) != 0 || !bytes.HasPrefix(consumed, []byte("-----BEGIN "+pemPrivateKey+"-----")) ||
		bytes.Count(consumed, []byte("-----BEGIN")) != 1 {
		return nil, fmt.Errorf("%w: file must hold exactly one PEM block", ErrKeyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not a PKCS#8 private key", ErrKeyFile)
	}
	priv, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: not a signing key", ErrUnsupportedKey)
	}
	return newFileSigner(priv)
}

func newFileSigner(priv crypto.Signer) (*FileSigner, error) {
	alg, err := algorithmOf(priv.Public())
	if err != nil {
		return nil, err
	}
	der, err := MarshalPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	return &FileSigner{priv: priv, alg: alg, der: der}, nil
}

// Public returns the public key (ed25519.PublicKey or *ecdsa.PublicKey).
func (s *FileSigner) Public() crypto.PublicKey { return s.priv.Public() }

// PublicKeyDER returns the PKIX DER public key (a copy).
func (s *FileSigner) PublicKeyDER() []byte { return bytes.Clone(s.der) }

// Fingerprint returns the public key's fingerprint.
func (s *FileSigner) Fingerprint() Fingerprint { return FingerprintOf(s.der) }

// Algorithm returns the key's algorithm.
func (s *FileSigner) Algorithm() Algorithm { return s.alg }

// Sign signs msg: pure Ed25519, or ECDSA P-256 over SHA-256(msg) with an
// ASN.1 DER signature.
func (s *FileSigner) Sign(msg []byte) ([]byte, error) {
	switch k := s.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, d[:])
	}
	return nil, errors.New("ceremony: unreachable: unsupported file key")
}
