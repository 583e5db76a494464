package ceremony

import (
	"encoding/hex"
	"fmt"
)

// Limits of names and texts. Every string in a proposal, vote or log entry
// is printable ASCII, so what a custodian reads on a terminal before
// signing (see Describe) cannot hide control characters or escape
// sequences, and cannot look different from what is signed.
const (
	// MaxNameLen bounds custodian, key and scheme names (the vault's rule).
	MaxNameLen = 63
	// MaxProposerLen bounds a proposer identity.
	MaxProposerLen = 128
	// MaxReasonLen bounds a rejection reason.
	MaxReasonLen = 256
	// MaxOutcomeLen bounds the outcome text of an executed or failed
	// proposal.
	MaxOutcomeLen = 1024
)

// checkName validates a custodian, key or scheme name: 1 to 63 characters
// from [a-z0-9_-], starting with a letter (the vault's names.go rule). The
// error names the field and never echoes the value.
func checkName(field, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return fmt.Errorf("%w: %s must be lower-case letters, digits, '-' and '_', starting with a letter", ErrInvalid, field)
		}
	}
	return nil
}

// checkIdentity validates a proposer identity: 1 to 128 printable ASCII
// characters without spaces (a custodian name, or a client identity such
// as a certificate's URI SAN).
func checkIdentity(field, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if len(id) > MaxProposerLen {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, MaxProposerLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%w: %s must be printable ascii without spaces", ErrInvalid, field)
		}
	}
	return nil
}

// checkText validates free text (a reason or an outcome): at most max
// printable ASCII characters, spaces allowed, no control characters.
func checkText(field, s string, max int, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("%w: %s must be printable ascii", ErrInvalid, field)
		}
	}
	return nil
}

// IDLen is the length of a proposal id: the first 16 lower-case hex digits
// (64 bits) of the transcript hash.
const IDLen = 16

// CheckID validates a proposal id as typed by a user: exactly 16
// lower-case hex digits.
func CheckID(id string) error {
	if len(id) != IDLen {
		return fmt.Errorf("%w: proposal id must be %d hex digits", ErrInvalid, IDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: proposal id must be lower-case hex", ErrInvalid)
		}
	}
	return nil
}

// Hash is a SHA-256 digest: a proposal's transcript hash or a log entry's
// chain hash. A plain value, safe for concurrent use.
type Hash [32]byte

// String returns the 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (no hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: hash must be %d hex digits", ErrInvalid, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: hash must be hex", ErrInvalid)
	}
	return h, nil
}

// ID returns the proposal id derived from a transcript hash.
func (h Hash) ID() string { return hex.EncodeToString(h[:IDLen/2]) }
