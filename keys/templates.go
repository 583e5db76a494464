package keys

import (
	"github.com/miekg/pkcs11"
)

// DER-encoded curve OIDs for CKA_EC_PARAMS.
var (
	oidP256    = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
	oidP384    = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}                   // 1.3.132.0.34
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}                               // 1.3.101.112
)

// keyClass returns CKA_CLASS and CKA_KEY_TYPE of the key that gets wrapped.
func keyClass(t KeyType) (class, keyType uint) {
	switch t {
	case KeyAES256GCM, KeyAES256FF1:
		return pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES
	case KeyHMACSHA256:
		return pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET
	case KeyECDSAP256, KeyECDSAP384:
		return pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC
	case KeyRSA3072PSS:
		return pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA
	case KeyEd25519:
		return pkcs11.CKO_PRIVATE_KEY, ckkECEdwards
	}
	return 0, 0
}

func ecParams(t KeyType) []byte {
	switch t {
	case KeyECDSAP256:
		return oidP256
	case KeyECDSAP384:
		return oidP384
	case KeyEd25519:
		return oidEd25519
	}
	return nil
}

// generateTemplate describes the key as first generated: a session object
// whose only purpose is to be wrapped once under the master key and then
// destroyed. It has no usage but one AES-CMAC for an AES key's KCV, and is
// extractable only because wrapping requires it; the copy that is used is
// the unwrapped one.
func generateTemplate(t KeyType) []*pkcs11.Attribute {
	class, kt := keyClass(t)
	a := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_TOKEN, false),      // session object: dies with its session
		attr(pkcs11.CKA_PRIVATE, true),     // visible to the logged-in user only
		attr(pkcs11.CKA_SENSITIVE, true),   // value never readable in clear
		attr(pkcs11.CKA_EXTRACTABLE, true), // for the one wrap under the master key
		attr(pkcs11.CKA_DERIVE, false),     // no derived keys
	}
	if class == pkcs11.CKO_SECRET_KEY {
		// AES keys compute one CMAC, their key check value, before they are
		// wrapped; the copy that is used never can.
		kcv := kt == pkcs11.CKK_AES
		a = append(a,
			attr(pkcs11.CKA_VALUE_LEN, 32), // 256-bit key
			attr(pkcs11.CKA_ENCRYPT, false),
			attr(pkcs11.CKA_DECRYPT, false),
			attr(pkcs11.CKA_SIGN, kcv),
			attr(pkcs11.CKA_VERIFY, false),
			attr(pkcs11.CKA_WRAP, false),
			attr(pkcs11.CKA_UNWRAP, false),
		)
		if kcv {
			a = append(a, allowedMechanisms(pkcs11.CKM_AES_CMAC))
		}
	} else {
		a = append(a,
			attr(pkcs11.CKA_SIGN, false),
			attr(pkcs11.CKA_DECRYPT, false),
			attr(pkcs11.CKA_UNWRAP, false),
		)
	}
	return a
}

// publicTemplate describes the public half of a generated pair: a session
// object read once for its public value and destroyed.
func publicTemplate(t KeyType) []*pkcs11.Attribute {
	a := []*pkcs11.Attribute{
		attr(pkcs11.CKA_TOKEN, false),   // session object
		attr(pkcs11.CKA_VERIFY, false),  // verification happens in Go
		attr(pkcs11.CKA_ENCRYPT, false), // never used
		attr(pkcs11.CKA_WRAP, false),
	}
	switch t {
	case KeyRSA3072PSS:
		a = append(a,
			attr(pkcs11.CKA_MODULUS_BITS, 3072),
			attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{0x01, 0x00, 0x01}),
		)
	default:
		a = append(a, attr(pkcs11.CKA_EC_PARAMS, ecParams(t)))
	}
	return a
}

func generateMechanism(t KeyType) uint {
	switch t {
	case KeyAES256GCM, KeyAES256FF1:
		return pkcs11.CKM_AES_KEY_GEN
	case KeyHMACSHA256:
		return pkcs11.CKM_GENERIC_SECRET_KEY_GEN
	case KeyECDSAP256, KeyECDSAP384:
		return pkcs11.CKM_EC_KEY_PAIR_GEN
	case KeyRSA3072PSS:
		return pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
	case KeyEd25519:
		return ckmECEdwardsKeyPairGen
	}
	return 0
}

// opMechanism is the one mechanism a loaded key may be used with.
func opMechanism(t KeyType) uint {
	switch t {
	case KeyAES256GCM:
		return pkcs11.CKM_AES_GCM
	case KeyAES256FF1:
		return pkcs11.CKM_AES_ECB
	case KeyHMACSHA256:
		return pkcs11.CKM_SHA256_HMAC
	case KeyECDSAP256, KeyECDSAP384:
		return pkcs11.CKM_ECDSA
	case KeyRSA3072PSS:
		return pkcs11.CKM_RSA_PKCS_PSS
	case KeyEd25519:
		return ckmEdDSA
	}
	return 0
}

// loadTemplate describes a working key as unwrapped from its blob into this
// HSM: a session object owned by the anchor session, sensitive, never
// extractable (so nothing, not even the master key, can wrap it out again),
// restricted to its one mechanism and usage. (SoftHSM refuses
// CKA_MODIFIABLE in an unwrap template, so it is left at its default.)
func loadTemplate(wk *WrappedKey) []*pkcs11.Attribute {
	class, kt := keyClass(wk.Type)
	a := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_LABEL, wk.ID),                  // for humans reading the token
		attr(pkcs11.CKA_ID, []byte(wk.Ref().String())), // id/vN
		attr(pkcs11.CKA_TOKEN, false),                  // session object: re-unwrapped after session loss
		attr(pkcs11.CKA_PRIVATE, true),                 // visible to the logged-in user only
		attr(pkcs11.CKA_SENSITIVE, true),               // value never readable in clear
		attr(pkcs11.CKA_EXTRACTABLE, false),            // cannot be wrapped by any key
		attr(pkcs11.CKA_WRAP_WITH_TRUSTED, true),       // belt and braces: only trusted keys could wrap it
		attr(pkcs11.CKA_DERIVE, false),                 // no derived keys
		attr(pkcs11.CKA_UNWRAP, false),                 // unwraps nothing
		allowedMechanisms(opMechanism(wk.Type)),        // its one mechanism
	}
	switch wk.Type {
	case KeyAES256GCM:
		a = append(a,
			attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, true),
			attr(pkcs11.CKA_SIGN, false), attr(pkcs11.CKA_VERIFY, false), attr(pkcs11.CKA_WRAP, false))
	case KeyAES256FF1:
		// FF1 uses only the forward cipher.
		a = append(a,
			attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, false),
			attr(pkcs11.CKA_SIGN, false), attr(pkcs11.CKA_VERIFY, false), attr(pkcs11.CKA_WRAP, false))
	case KeyHMACSHA256:
		a = append(a,
			attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_VERIFY, false),
			attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false), attr(pkcs11.CKA_WRAP, false))
	default: // private signing keys
		a = append(a, attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_DECRYPT, false))
	}
	return a
}
