package keys

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Sentinel errors. Every error returned by this package wraps one or more of
// them with %w; callers test with errors.Is. Messages never contain PINs, key
// bytes or component values; they may contain labels, key ids and KCVs.
var (
	// ErrInvalidConfig: a Config field is missing or out of range.
	ErrInvalidConfig = errors.New("keys: invalid config")
	// ErrInvalidInput: an argument (length, key id, version, type) is invalid.
	ErrInvalidInput = errors.New("keys: invalid input")
	// ErrLibrary: the PKCS#11 library cannot be found or loaded.
	ErrLibrary = errors.New("keys: cannot load pkcs11 library")
	// ErrHSMUnavailable: the HSM or token did not answer, or a recovery
	// after session loss failed. Retrying later may succeed.
	ErrHSMUnavailable = errors.New("keys: hsm unavailable")
	// ErrTokenNotFound: no token carries the configured label.
	ErrTokenNotFound = errors.New("keys: token not found")
	// ErrTokenExists: InitToken was asked for a label that is already used.
	ErrTokenExists = errors.New("keys: token label already in use")
	// ErrNoFreeSlot: InitToken found no uninitialised slot.
	ErrNoFreeSlot = errors.New("keys: no free slot for a new token")
	// ErrAmbiguous: a token label or object label matched more than once.
	ErrAmbiguous = errors.New("keys: more than one match")
	// ErrBadPIN: the PIN was refused. It is never retried automatically.
	ErrBadPIN = errors.New("keys: pin incorrect")
	// ErrPINLocked: the token reports the PIN as locked.
	ErrPINLocked = errors.New("keys: pin locked")
	// ErrClosed: the HSM was closed.
	ErrClosed = errors.New("keys: hsm closed")
	// ErrNoSession: no pooled session became free before the context ended.
	ErrNoSession = errors.New("keys: no session available")
	// ErrMasterKeyMissing: the token holds no master key with the configured label.
	ErrMasterKeyMissing = errors.New("keys: master key missing")
	// ErrMasterKeyExists: LoadMasterKey was called on a token that already has one.
	ErrMasterKeyExists = errors.New("keys: master key already present")
	// ErrMasterKeyMismatch: a wrapped key was made under a different master key
	// than the one in this HSM (their KCVs differ).
	ErrMasterKeyMismatch = errors.New("keys: wrapped under a different master key")
	// ErrMasterKeyInUse: DestroyMasterKey was asked to destroy the master
	// key this HSM uses, or one a loaded key's kept blob is wrapped under
	// (it would be needed to restore that key after a session loss).
	ErrMasterKeyInUse = errors.New("keys: master key in use")
	// ErrKCVMismatch: a computed key check value differs from the expected one.
	ErrKCVMismatch = errors.New("keys: kcv mismatch")
	// ErrKeyNotFound: no working key with that id and version is loaded.
	ErrKeyNotFound = errors.New("keys: key not found")
	// ErrKeyExists: a different key with the same id and version is already loaded.
	ErrKeyExists = errors.New("keys: key id and version already loaded")
	// ErrWrongKeyType: the key's type does not support the operation.
	ErrWrongKeyType = errors.New("keys: operation not supported by this key type")
	// ErrNotWrappable: the HSM refuses to wrap this kind of key, so it cannot be
	// replicated. There is no software fallback.
	ErrNotWrappable = errors.New("keys: hsm cannot wrap this key type")
	// ErrMalformedBlob: a wrapped-key blob does not parse.
	ErrMalformedBlob = errors.New("keys: malformed wrapped key")
	// ErrBlobAuth: a wrapped-key blob parsed but failed its integrity checks
	// (header MAC, RFC 5649 unwrap, or the unwrapped key does not match its header).
	ErrBlobAuth = errors.New("keys: wrapped key failed integrity check")
	// ErrBadSignature: VerifySignature rejected a signature.
	ErrBadSignature = errors.New("keys: signature does not verify")
	// ErrDecrypt: an AES-GCM ciphertext failed authentication.
	ErrDecrypt = errors.New("keys: message authentication failed")
)

// ComponentError reports which master-key component failed its own KCV
// check. Index is 1-based, as custodians number their components.
// It wraps ErrKCVMismatch. A plain value, safe for concurrent use.
type ComponentError struct {
	Index     int
	Got, Want KCV
}

func (e *ComponentError) Error() string {
	return fmt.Sprintf("keys: component %d: kcv mismatch (computed %s, recorded %s)", e.Index, e.Got, e.Want)
}

// Unwrap returns ErrKCVMismatch.
func (e *ComponentError) Unwrap() error { return ErrKCVMismatch }

// ckr returns the PKCS#11 return value inside err, or 0 (CKR_OK) if none.
func ckr(err error) uint {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe)
	}
	return 0
}

// errClass says what an operation failure means for the session it ran on.
type errClass int

const (
	classNone  errClass = iota // success
	classKeep                  // the operation failed, the session is fine (bad input, bad tag)
	classEvict                 // the session may be in a bad state: close it
	classStale                 // session, login or object handles are gone: evict, recover, retry once
)

func classify(err error) errClass {
	if err == nil {
		return classNone
	}
	switch ckr(err) {
	case 0:
		// Not a PKCS#11 error: an error of ours (bad input, mismatch).
		return classKeep
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_WRAPPING_KEY_HANDLE_INVALID, pkcs11.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_TOKEN_NOT_RECOGNIZED:
		return classStale
	case pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID,
		pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE,
		pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_KEY_NOT_WRAPPABLE, pkcs11.CKR_KEY_UNEXTRACTABLE:
		return classKeep
	default:
		return classEvict
	}
}
