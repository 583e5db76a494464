package softhsm

import "errors"

// Sentinel errors; every error of this package wraps one with %w.
var (
	// ErrNotFound: no SoftHSM library was found (or PANVAULT_PKCS11_LIB
	// names a file that does not exist).
	ErrNotFound = errors.New("softhsm: library not found")
	// ErrConflict: the process already uses another SoftHSM configuration.
	// SoftHSM reads SOFTHSM2_CONF when the library is initialised, so one
	// process has one token directory.
	ErrConflict = errors.New("softhsm: another configuration is already in use in this process")
	// ErrTokenInUse: a token cannot be deleted while an HSM of this process has it open.
	ErrTokenInUse = errors.New("softhsm: token in use")
	// ErrTokenNotFound: the token's directory is not in the token directory.
	ErrTokenNotFound = errors.New("softhsm: token not found")
	// ErrInvalid: a label or PIN is out of range.
	ErrInvalid = errors.New("softhsm: invalid argument")
)
