package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// MaxSignSize bounds one signed message.
const MaxSignSize = 1 << 20

// PSSSaltLength is the RSASSA-PSS salt length used by KeyRSA3072PSS (the
// SHA-256 digest length).
const PSSSaltLength = 32

// Sign signs msg with the loaded signing key ref. The digest is computed in
// Go and signed in the HSM (SoftHSM has no hashing ECDSA mechanisms):
//
//	KeyECDSAP256   SHA-256, ASN.1 DER ECDSA signature
//	KeyECDSAP384   SHA-384, ASN.1 DER ECDSA signature
//	KeyRSA3072PSS  SHA-256, RSASSA-PSS with MGF1-SHA-256 and a 32-byte salt
//	KeyEd25519     pure Ed25519 over msg (64 bytes)
//
// VerifySignature checks such signatures. Safe for concurrent use.
func (h *HSM) Sign(ctx context.Context, ref KeyRef, msg []byte) ([]byte, error) {
	if len(msg) > MaxSignSize {
		return nil, fmt.Errorf("%w: message longer than %d bytes", ErrInvalidInput, MaxSignSize)
	}
	var out []byte
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		kh, t, err := h.keyHandle(ref, KeyECDSAP256, KeyECDSAP384, KeyRSA3072PSS, KeyEd25519)
		if err != nil {
			return err
		}
		out, err = signRaw(h.p, sh, t, kh, msg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", ref, err)
	}
	return out, nil
}

// signRaw signs msg on session sh with private key kh of type t.
func signRaw(p p11, sh pkcs11.SessionHandle, t KeyType, kh pkcs11.ObjectHandle, msg []byte) ([]byte, error) {
	var m []*pkcs11.Mechanism
	var input []byte
	switch t {
	case KeyECDSAP256:
		d := sha256.Sum256(msg)
		m, input = mech(pkcs11.CKM_ECDSA, nil), d[:]
	case KeyECDSAP384:
		d := sha512.Sum384(msg)
		m, input = mech(pkcs11.CKM_ECDSA, nil), d[:]
	case KeyRSA3072PSS:
		d := sha256.Sum256(msg)
		params := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, PSSSaltLength)
		m, input = mech(pkcs11.CKM_RSA_PKCS_PSS, params), d[:]
	case KeyEd25519:
		m, input = mech(ckmEdDSA, nil), msg
	default:
		return nil, fmt.Errorf("%w: %s cannot sign", ErrWrongKeyType, t)
	}
	if err := p.SignInit(sh, m, kh); err != nil {
		return nil, fmt.Errorf("sign init: %w", err)
	}
	sig, err := p.Sign(sh, input)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	switch t {
	case KeyECDSAP256, KeyECDSAP384:
		return ecdsaRawToDER(t, sig)
	}
	return sig, nil
}

// ecdsaRawToDER converts PKCS#11's r||s into the ASN.1 form Go and X.509 use.
func ecdsaRawToDER(t KeyType, raw []byte) ([]byte, error) {
	n := 32
	if t == KeyECDSAP384 {
		n = 48
	}
	if len(raw) != 2*n {
		return nil, fmt.Errorf("%w: ecdsa signature of %d bytes", ErrHSMUnavailable, len(raw))
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:n]),
		new(big.Int).SetBytes(raw[n:]),
	})
}

// VerifySignature checks, in Go, a signature made by Sign with a key of type
// t whose public key is pub. It returns nil or an error wrapping
// ErrBadSignature (or ErrWrongKeyType if pub does not fit t).
func VerifySignature(t KeyType, pub crypto.PublicKey, msg, sig []byte) error {
	ok := false
	switch t {
	case KeyECDSAP256, KeyECDSAP384:
		k, isEC := pub.(*ecdsa.PublicKey)
		if !isEC {
			return fmt.Errorf("%w: %s needs an ecdsa public key", ErrWrongKeyType, t)
		}
		if t == KeyECDSAP256 {
			d := sha256.Sum256(msg)
			ok = ecdsa.VerifyASN1(k, d[:], sig)
		} else {
			d := sha512.Sum384(msg)
			ok = ecdsa.VerifyASN1(k, d[:], sig)
		}
	case KeyRSA3072PSS:
		k, isRSA := pub.(*rsa.PublicKey)
		if !isRSA {
			return fmt.Errorf("%w: %s needs an rsa public key", ErrWrongKeyType, t)
		}
		d := sha256.Sum256(msg)
		ok = rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: PSSSaltLength, Hash: crypto.SHA256}) == nil
	case KeyEd25519:
		k, isEd := pub.(ed25519.PublicKey)
		if !isEd {
			return fmt.Errorf("%w: %s needs an ed25519 public key", ErrWrongKeyType, t)
		}
		ok = ed25519.Verify(k, msg, sig)
	default:
		return fmt.Errorf("%w: %s does not sign", ErrWrongKeyType, t)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
