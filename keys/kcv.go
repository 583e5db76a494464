package keys

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// KCV is a key check value: the first 3 bytes of AES-CMAC over one zero
// block, computed inside the HSM. It identifies a key without revealing it
// and is printed as 6 upper-case hex digits. KCVs may be logged. A plain
// value, safe for concurrent use.
type KCV [3]byte

// String returns the 6 hex digits.
func (k KCV) String() string { return strings.ToUpper(hex.EncodeToString(k[:])) }

// ParseKCV parses 6 hex digits (either case).
func ParseKCV(s string) (KCV, error) {
	var k KCV
	if len(s) != 6 {
		return k, fmt.Errorf("%w: kcv must be 6 hex digits", ErrInvalidInput)
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("%w: kcv must be 6 hex digits", ErrInvalidInput)
	}
	return k, nil
}

// cmac computes AES-CMAC (16 bytes) of msg under an AES key in the HSM.
func cmac(p p11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle, msg []byte) ([]byte, error) {
	if err := p.SignInit(sh, mech(pkcs11.CKM_AES_CMAC, nil), key); err != nil {
		return nil, fmt.Errorf("cmac init: %w", err)
	}
	tag, err := p.Sign(sh, msg)
	if err != nil {
		return nil, fmt.Errorf("cmac: %w", err)
	}
	if len(tag) != 16 {
		return nil, fmt.Errorf("%w: cmac returned %d bytes", ErrHSMUnavailable, len(tag))
	}
	return tag, nil
}

// kcvOf computes the KCV of an AES key in the HSM.
func kcvOf(p p11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) (KCV, error) {
	var k KCV
	tag, err := cmac(p, sh, key, make([]byte, 16))
	if err != nil {
		return k, err
	}
	copy(k[:], tag)
	return k, nil
}

// kcvOfValue imports value as a temporary, non-extractable AES session
// object able only to compute CMAC, computes its KCV and destroys it.
// Used for custodian components, whose bytes are in memory by nature. The
// binding copies value into C memory for C_CreateObject and frees that copy
// without zeroing it (see Residual risk in the package doc).
func kcvOfValue(p p11, sh pkcs11.SessionHandle, value []byte) (KCV, error) {
	var k KCV
	tmpl := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_VALUE, value),
		attr(pkcs11.CKA_TOKEN, false),       // gone with the session at the latest
		attr(pkcs11.CKA_PRIVATE, true),      // visible to the logged-in user only
		attr(pkcs11.CKA_SENSITIVE, true),    // value not readable back
		attr(pkcs11.CKA_EXTRACTABLE, false), // cannot be wrapped out
		attr(pkcs11.CKA_SIGN, true),         // CMAC for the KCV, nothing else
		attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_WRAP, false),
		attr(pkcs11.CKA_UNWRAP, false),
		attr(pkcs11.CKA_DERIVE, false),
		allowedMechanisms(pkcs11.CKM_AES_CMAC),
	}
	oh, err := p.CreateObject(sh, tmpl)
	if err != nil {
		return k, fmt.Errorf("import for kcv: %w", err)
	}
	k, err = kcvOf(p, sh, oh)
	if derr := p.DestroyObject(sh, oh); err == nil && derr != nil {
		err = fmt.Errorf("destroy temporary key: %w", derr)
	}
	return k, err
}
