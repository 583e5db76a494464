package keys

import (
	"crypto"
	"fmt"
	"strconv"
)

// KeyType says what a working key is and what it may do. The numbers are
// part of the wrapped-key format: never reuse or renumber them. A plain
// value, safe for concurrent use.
type KeyType uint8

const (
	// KeyAES256GCM encrypts and decrypts with AES-256-GCM (PAN encryption).
	KeyAES256GCM KeyType = 1
	// KeyAES256FF1 encrypts single AES blocks (ECB), the FF1 round function.
	// It cannot decrypt and cannot do GCM.
	KeyAES256FF1 KeyType = 2
	// KeyHMACSHA256 computes HMAC-SHA256 (PAN fingerprints).
	KeyHMACSHA256 KeyType = 3
	// KeyECDSAP256 signs with ECDSA on P-256 over SHA-256.
	KeyECDSAP256 KeyType = 4
	// KeyECDSAP384 signs with ECDSA on P-384 over SHA-384.
	KeyECDSAP384 KeyType = 5
	// KeyRSA3072PSS signs with RSASSA-PSS, 3072-bit modulus, SHA-256, MGF1-SHA-256, 32-byte salt.
	KeyRSA3072PSS KeyType = 6
	// KeyEd25519 signs with pure Ed25519. Only on HSMs that can wrap
	// Ed25519 private keys; SoftHSM 2.6.1 cannot (GenerateKey fails with
	// ErrNotWrappable).
	KeyEd25519 KeyType = 7
)

var keyTypeNames = map[KeyType]string{
	KeyAES256GCM:  "aes256-gcm",
	KeyAES256FF1:  "aes256-ff1",
	KeyHMACSHA256: "hmac-sha256",
	KeyECDSAP256:  "ecdsa-p256",
	KeyECDSAP384:  "ecdsa-p384",
	KeyRSA3072PSS: "rsa3072-pss",
	KeyEd25519:    "ed25519",
}

// String returns the type's stable name, e.g. "aes256-gcm".
func (t KeyType) String() string {
	if n, ok := keyTypeNames[t]; ok {
		return n
	}
	return "keytype(" + strconv.Itoa(int(t)) + ")"
}

// ParseKeyType is the inverse of String.
func ParseKeyType(s string) (KeyType, error) {
	for t, n := range keyTypeNames {
		if n == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown key type %q", ErrInvalidInput, s)
}

// Valid reports whether t is a known type.
func (t KeyType) Valid() bool { _, ok := keyTypeNames[t]; return ok }

// IsPair reports whether t is an asymmetric (signing) key type.
func (t KeyType) IsPair() bool {
	switch t {
	case KeyECDSAP256, KeyECDSAP384, KeyRSA3072PSS, KeyEd25519:
		return true
	}
	return false
}

// KeyRef names one version of a working key. A plain value, safe for
// concurrent use.
type KeyRef struct {
	ID      string
	Version uint32
}

func (r KeyRef) String() string { return r.ID + "/v" + strconv.FormatUint(uint64(r.Version), 10) }

// KeySpec asks GenerateKey for a key. A plain value, safe for concurrent use.
type KeySpec struct {
	ID      string
	Version uint32
	Type    KeyType
}

// Ref returns the spec's KeyRef.
func (s KeySpec) Ref() KeyRef { return KeyRef{ID: s.ID, Version: s.Version} }

// KeyInfo describes a loaded working key. It holds no secret. Treat it as
// read-only; so treated it is safe for concurrent use.
type KeyInfo struct {
	Ref       KeyRef
	Type      KeyType
	MasterKCV KCV              // KCV of the master key the key was wrapped under
	Public    crypto.PublicKey // for key pairs: *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey; nil otherwise
}

const maxKeyIDLen = 64

// validKeyRef checks a key id (1..64 bytes of A-Z a-z 0-9 . _ - :) and version (>= 1).
func validKeyRef(r KeyRef) error {
	if len(r.ID) == 0 || len(r.ID) > maxKeyIDLen {
		return fmt.Errorf("%w: key id must be 1..%d bytes", ErrInvalidInput, maxKeyIDLen)
	}
	for i := 0; i < len(r.ID); i++ {
		c := r.ID[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':'
		if !ok {
			return fmt.Errorf("%w: key id may contain only letters, digits and . _ - :", ErrInvalidInput)
		}
	}
	if r.Version == 0 {
		return fmt.Errorf("%w: key version must be >= 1", ErrInvalidInput)
	}
	return nil
}
