package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// readPublic reads the public half of a generated key pair from its public
// key object (public attributes only) and returns it as a Go key.
func readPublic(p p11, sh pkcs11.SessionHandle, t KeyType, pub pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	switch t {
	case KeyRSA3072PSS:
		a, err := getAttrs(p, sh, pub, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, err
		}
		n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
		e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
		if n.BitLen() != 3072 || !e.IsInt64() || e.Int64() < 65537 || e.Int64() > 1<<31-1 {
			return nil, fmt.Errorf("%w: generated rsa key has unexpected size or exponent", ErrHSMUnavailable)
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case KeyECDSAP256, KeyECDSAP384, KeyEd25519:
		a, err := getAttrs(p, sh, pub, pkcs11.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		point := unwrapOctetString(a[pkcs11.CKA_EC_POINT])
		switch t {
		case KeyEd25519:
			if len(point) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%w: ed25519 public key of %d bytes", ErrHSMUnavailable, len(point))
			}
			return ed25519.PublicKey(append([]byte(nil), point...)), nil
		case KeyECDSAP256:
			return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		default:
			return ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
		}
	}
	return nil, fmt.Errorf("%w: %s has no public key", ErrWrongKeyType, t)
}

// unwrapOctetString returns the content of a DER OCTET STRING, or v itself
// if v is not one (PKCS#11 says CKA_EC_POINT is DER-wrapped; some modules
// return the raw point).
func unwrapOctetString(v []byte) []byte {
	var inner []byte
	rest, err := asn1.Unmarshal(v, &inner)
	if err == nil && len(rest) == 0 {
		return inner
	}
	return v
}

// PublicKey returns the public key of a loaded key pair.
// Safe for concurrent use.
func (h *HSM) PublicKey(ref KeyRef) (crypto.PublicKey, error) {
	info, err := h.KeyInfo(ref)
	if err != nil {
		return nil, err
	}
	if info.Public == nil {
		return nil, fmt.Errorf("%w: %s is a %s key, not a key pair", ErrWrongKeyType, ref, info.Type)
	}
	return info.Public, nil
}

// PublicKeyDER returns the public key of a loaded key pair as PKIX DER.
func (h *HSM) PublicKeyDER(ref KeyRef) ([]byte, error) {
	pub, err := h.PublicKey(ref)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// PublicKeyPEM returns the public key of a loaded key pair as a PEM
// "PUBLIC KEY" block.
func (h *HSM) PublicKeyPEM(ref KeyRef) ([]byte, error) {
	der, err := h.PublicKeyDER(ref)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
