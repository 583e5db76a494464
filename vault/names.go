package vault

import (
	"fmt"

	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
)

// MaxNameLen bounds scheme and key names (see AdminService).
const MaxNameLen = 63

// MaxRequestIDLen bounds idempotency keys.
const MaxRequestIDLen = 128

// fieldError returns an ErrInvalidArgument naming field. desc must not
// contain the field's value.
func fieldError(field, rule, desc string) error {
	return fmt.Errorf("%w: %w", ErrInvalidArgument, &card.RuleError{Field: field, Rule: rule, Description: desc, Err: ErrInvalidArgument})
}

// checkName validates a scheme or key name given in field: 1 to 63
// characters from [a-z0-9_-], starting with a letter. The error never echoes
// the name (a confused client might send a PAN there).
func checkName(field, name string) error {
	if name == "" {
		return fieldError(field, scheme.RuleRequired, "is required")
	}
	if len(name) > MaxNameLen {
		return fieldError(field, scheme.RuleFormat, fmt.Sprintf("is longer than %d characters", MaxNameLen))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return fieldError(field, scheme.RuleFormat, "must be lower-case letters, digits, '-' and '_', starting with a letter")
		}
	}
	return nil
}

// checkRequestID validates an optional idempotency key: empty, or 1 to 128
// printable ASCII characters.
func checkRequestID(field, id string) error {
	if len(id) > MaxRequestIDLen {
		return fieldError(field, scheme.RuleFormat, fmt.Sprintf("is longer than %d characters", MaxRequestIDLen))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fieldError(field, scheme.RuleFormat, "must be printable ascii without spaces")
		}
	}
	return nil
}
