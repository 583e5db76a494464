package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/pkcs11"
)

// ErrUnsafeKey: a token key that should sign for a person (a custodian) is
// extractable or not sensitive, so its holder could copy it out of the
// token; it is refused.
var ErrUnsafeKey = errors.New("keys: token key is extractable or not sensitive")

// DefaultSignTimeout bounds TokenSigner.Sign, which takes no context.
const DefaultSignTimeout = 30 * time.Second

// selfTestPrefix starts the one message GenerateTokenSigner signs to prove
// a new key pair. It names no other protocol's purpose, so the signature is
// worthless anywhere else.
const selfTestPrefix = "panvault-keys-token-signer-selftest-v1"

// TokenSigner is a signing key that lives in a PKCS#11 token as a
// persistent private-key object, found by its label: a key custodian's key
// on their own smartcard, USB HSM or (in tests) SoftHSM token. Ed25519
// (CKM_EDDSA, pure, over the whole message) and ECDSA P-256 (SHA-256
// computed in Go, CKM_ECDSA in the token, result as ASN.1 DER as
// crypto/ecdsa makes it) are supported.
//
// It has the two methods of vault/ceremony's Signer (Public and Sign),
// without this package importing vault. Every signature is verified in Go
// against the public key before it is returned, so a faulty token or a
// public key object that does not belong to the private key is caught at
// once.
//
// The key is looked up again for every signature (object handles do not
// survive a session loss; a ceremony signs rarely). TokenSigner is safe for
// concurrent use; sessions come from the HSM's pool.
type TokenSigner struct {
	h     *HSM
	label string
	typ   KeyType
	pub   crypto.PublicKey
}

// OpenTokenSigner opens the token cfg names (exactly one C_Login, as Open)
// and finds the key labelled keyLabel: exactly one private-key object and
// exactly one public-key object with that label, Ed25519 or ECDSA P-256.
// The private key must be sensitive and not extractable (ErrUnsafeKey).
// Close the signer to release the token. A missing key wraps
// ErrKeyNotFound; two with the label wrap ErrAmbiguous.
func OpenTokenSigner(ctx context.Context, cfg Config, keyLabel string) (*TokenSigner, error) {
	if err := validObjectLabel(keyLabel); err != nil {
		return nil, err
	}
	h, err := openForSigner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &TokenSigner{h: h, label: keyLabel}
	err = h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		priv, t, err := s.findPrivate(sh)
		if err != nil {
			return err
		}
		a, err := getAttrs(h.p, sh, priv, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_SIGN)
		if err != nil {
			return fmt.Errorf("key %q: %w", keyLabel, err)
		}
		if !isTrue(a[pkcs11.CKA_SENSITIVE]) || isTrue(a[pkcs11.CKA_EXTRACTABLE]) {
			return fmt.Errorf("%w: key %q in token %q", ErrUnsafeKey, keyLabel, h.token.Label)
		}
		if !isTrue(a[pkcs11.CKA_SIGN]) {
			return fmt.Errorf("%w: key %q cannot sign (CKA_SIGN is false)", ErrWrongKeyType, keyLabel)
		}
		pubH, found, err := findOne(h.p, sh, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			attr(pkcs11.CKA_LABEL, keyLabel),
		})
		if err != nil {
			return fmt.Errorf("public key %q: %w", keyLabel, err)
		}
		if !found {
			return fmt.Errorf("%w: token %q has no public-key object labelled %q (the private key is there)", ErrKeyNotFound, h.token.Label, keyLabel)
		}
		if err := checkCurve(h.p, sh, pubH, t); err != nil {
			return fmt.Errorf("public key %q: %w", keyLabel, err)
		}
		pub, err := readPublic(h.p, sh, t, pubH)
		if err != nil {
			return fmt.Errorf("public key %q: %w", keyLabel, err)
		}
		s.typ, s.pub = t, pub
		return nil
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	return s, nil
}

// GenerateTokenSigner generates a new key pair of type t (KeyEd25519 or
// KeyECDSAP256) inside the token cfg names, as persistent objects labelled
// keyLabel (see tokenSignerTemplates: the private key is sensitive, never
// extractable, signs only), proves it with one signature verified in Go,
// and returns the signer. A label already used by any object of the token
// is refused (ErrKeyExists): nothing is overwritten.
func GenerateTokenSigner(ctx context.Context, cfg Config, keyLabel string, t KeyType) (*TokenSigner, error) {
	if err := validObjectLabel(keyLabel); err != nil {
		return nil, err
	}
	if t != KeyEd25519 && t != KeyECDSAP256 {
		return nil, fmt.Errorf("%w: a token signer is ed25519 or ecdsa-p256, not %s", ErrWrongKeyType, t)
	}
	h, err := openForSigner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &TokenSigner{h: h, label: keyLabel, typ: t}
	// Token objects need a read-write session: the anchor is the only one.
	err = h.withAnchor(func(sh pkcs11.SessionHandle) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := findNone(h.p, sh, keyLabel); err != nil {
			return fmt.Errorf("token %q: %w", h.token.Label, err)
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return fmt.Errorf("random key id: %w", err)
		}
		pubT, privT := tokenSignerTemplates(t, keyLabel, id)
		pubH, privH, err := h.p.GenerateKeyPair(sh, mech(generateMechanism(t), nil), pubT, privT)
		if err != nil {
			return fmt.Errorf("generate %s key pair %q: %w", t, keyLabel, err)
		}
		destroy := func(cause error) error {
			_ = h.p.DestroyObject(sh, privH)
			_ = h.p.DestroyObject(sh, pubH)
			return cause
		}
		pub, err := readPublic(h.p, sh, t, pubH)
		if err != nil {
			return destroy(fmt.Errorf("read public key: %w", err))
		}
		probe := make([]byte, len(selfTestPrefix)+32)
		copy(probe, selfTestPrefix)
		if _, err := rand.Read(probe[len(selfTestPrefix):]); err != nil {
			return destroy(fmt.Errorf("random probe: %w", err))
		}
		sig, err := signRaw(h.p, sh, t, privH, probe)
		if err != nil {
			return destroy(fmt.Errorf("test signature: %w", err))
		}
		if err := VerifySignature(t, pub, probe, sig); err != nil {
			return destroy(fmt.Errorf("%w: the new key's test signature does not verify: %w", ErrHSMUnavailable, err))
		}
		s.pub = pub
		return nil
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	return s, nil
}

// findNone returns nil if no object of the session's view carries label,
// and an error wrapping ErrKeyExists otherwise.
func findNone(p p11, sh pkcs11.SessionHandle, label string) error {
	if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, label)}); err != nil {
		return fmt.Errorf("find objects: %w", err)
	}
	objs, _, err := p.FindObjects(sh, 1)
	if ferr := p.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("find objects: %w", err)
	}
	if len(objs) > 0 {
		return fmt.Errorf("%w: an object labelled %q exists; choose another label", ErrKeyExists, label)
	}
	return nil
}

// tokenSignerTemplates describe a custodian key pair: persistent objects
// linked by label and CKA_ID; the private half can sign and nothing else,
// and never leaves the token.
func tokenSignerTemplates(t KeyType, label string, id []byte) (pub, priv []*pkcs11.Attribute) {
	class, kt := keyClass(t)
	pub = []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_LABEL, label),           // found by label
		attr(pkcs11.CKA_ID, id),                 // links the pair (PKCS#11 convention)
		attr(pkcs11.CKA_TOKEN, true),            // persists in the token
		attr(pkcs11.CKA_PRIVATE, false),         // a public key: readable without login
		attr(pkcs11.CKA_MODIFIABLE, false),      // frozen
		attr(pkcs11.CKA_VERIFY, false),          // verification happens in Go
		attr(pkcs11.CKA_ENCRYPT, false),         // never encrypts
		attr(pkcs11.CKA_WRAP, false),            // never wraps
		attr(pkcs11.CKA_EC_PARAMS, ecParams(t)), // the curve
	}
	priv = []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_LABEL, label),        // found by label
		attr(pkcs11.CKA_ID, id),              // links the pair
		attr(pkcs11.CKA_TOKEN, true),         // persists in the token
		attr(pkcs11.CKA_PRIVATE, true),       // usable only after the custodian's login
		attr(pkcs11.CKA_SENSITIVE, true),     // value never readable in clear
		attr(pkcs11.CKA_EXTRACTABLE, false),  // can never be wrapped out: it stays with its custodian
		attr(pkcs11.CKA_MODIFIABLE, false),   // attributes frozen
		attr(pkcs11.CKA_SIGN, true),          // its one use
		attr(pkcs11.CKA_SIGN_RECOVER, false), // no message recovery
		attr(pkcs11.CKA_DECRYPT, false),      // never decrypts
		attr(pkcs11.CKA_UNWRAP, false),       // never unwraps
		attr(pkcs11.CKA_DERIVE, false),       // no key agreement or derivation
		allowedMechanisms(opMechanism(t)),    // CKM_EDDSA or CKM_ECDSA only
	}
	return pub, priv
}

// openForSigner opens the token with a small session pool: a signer makes
// one signature at a time.
func openForSigner(ctx context.Context, cfg Config) (*HSM, error) {
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 2
	}
	return Open(ctx, cfg)
}

// findPrivate finds the one private key labelled s.label and returns its
// handle and type.
func (s *TokenSigner) findPrivate(sh pkcs11.SessionHandle) (pkcs11.ObjectHandle, KeyType, error) {
	priv, found, err := findOne(s.h.p, sh, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		attr(pkcs11.CKA_LABEL, s.label),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("key %q in token %q: %w", s.label, s.h.token.Label, err)
	}
	if !found {
		return 0, 0, fmt.Errorf("%w: token %q has no private key labelled %q", ErrKeyNotFound, s.h.token.Label, s.label)
	}
	a, err := getAttrs(s.h.p, sh, priv, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return 0, 0, fmt.Errorf("key %q: %w", s.label, err)
	}
	kt, _ := ulong(a[pkcs11.CKA_KEY_TYPE])
	var t KeyType
	switch kt {
	case ckkECEdwards:
		t = KeyEd25519
	case pkcs11.CKK_EC:
		t = KeyECDSAP256 // the curve is checked on the public key
	default:
		return 0, 0, fmt.Errorf("%w: key %q is neither ed25519 nor ecdsa-p256", ErrWrongKeyType, s.label)
	}
	if s.typ != 0 && s.typ != t {
		return 0, 0, fmt.Errorf("%w: key %q changed type", ErrWrongKeyType, s.label)
	}
	return priv, t, nil
}

// checkCurve checks that the public key is on the curve type t needs.
// PKCS#11 3.0 lets Edwards keys name their curve by OID or by the printable
// string "edwards25519".
func checkCurve(p p11, sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle, t KeyType) error {
	a, err := getAttrs(p, sh, pub, pkcs11.CKA_EC_PARAMS)
	if err != nil {
		return err
	}
	params := string(a[pkcs11.CKA_EC_PARAMS])
	ok := false
	switch t {
	case KeyECDSAP256:
		ok = params == string(oidP256)
	case KeyEd25519:
		ok = params == string(oidEd25519) || params == "\x13\x0cedwards25519"
	}
	if !ok {
		return fmt.Errorf("%w: curve is not the one %s needs", ErrWrongKeyType, t)
	}
	return nil
}

// Public returns the public key: ed25519.PublicKey or *ecdsa.PublicKey on
// P-256.
func (s *TokenSigner) Public() crypto.PublicKey { return s.pub }

// Type returns KeyEd25519 or KeyECDSAP256.
func (s *TokenSigner) Type() KeyType { return s.typ }

// Label returns the key's label.
func (s *TokenSigner) Label() string { return s.label }

// Token returns the token the key lives in.
func (s *TokenSigner) Token() TokenInfo { return s.h.Token() }

// Sign signs msg (at most MaxSignSize bytes) within DefaultSignTimeout:
// pure Ed25519, or ECDSA P-256 over SHA-256(msg) as ASN.1 DER.
func (s *TokenSigner) Sign(msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultSignTimeout)
	defer cancel()
	return s.SignContext(ctx, msg)
}

// SignContext is Sign bounded by ctx (which bounds the wait for a session;
// a PKCS#11 call in progress cannot be cancelled). The signature is
// verified against Public before it is returned.
func (s *TokenSigner) SignContext(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) > MaxSignSize {
		return nil, fmt.Errorf("%w: message longer than %d bytes", ErrInvalidInput, MaxSignSize)
	}
	var sig []byte
	err := s.h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		priv, t, err := s.findPrivate(sh)
		if err != nil {
			return err
		}
		sig, err = signRaw(s.h.p, sh, t, priv, msg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sign with token key %q: %w", s.label, err)
	}
	if err := VerifySignature(s.typ, s.pub, msg, sig); err != nil {
		return nil, fmt.Errorf("token key %q made a signature its public key does not verify (is the public-key object another key's?): %w", s.label, err)
	}
	return sig, nil
}

// Close releases the token (closes the signer's sessions and, with the last
// user, the library). Idempotent.
func (s *TokenSigner) Close() error { return s.h.Close() }
