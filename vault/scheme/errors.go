package scheme

import (
	"errors"
	"strings"

	"github.com/panvault/panvault/vault/card"
)

// Sentinel errors. Messages are lower-case and never contain a PAN or token.
var (
	// ErrInvalidDefinition: a definition breaks a rule (see ValidationError).
	ErrInvalidDefinition = errors.New("invalid scheme definition")
	// ErrFF1Domain: an FF1 scheme leaves fewer than 1,000,000 free values for
	// some allowed length (wrapped by a violation inside ValidationError).
	ErrFF1Domain = errors.New("ff1 free domain is below 1,000,000 values")
	// ErrNoFreeDigits: a vaulted scheme leaves no random digit for some
	// allowed length, so its token would have to equal the PAN.
	ErrNoFreeDigits = errors.New("scheme leaves no random digit")
	// ErrLengthNotAllowed: the PAN or token length is not one of the scheme's
	// allowed lengths (the input is well-formed; the scheme cannot serve it).
	ErrLengthNotAllowed = errors.New("length not allowed by the scheme")
	// ErrWrongMode: the operation belongs to another mode (a random token for
	// an FF1 scheme, an FF1 tokenizer for a vaulted one).
	ErrWrongMode = errors.New("operation does not match the scheme mode")
	// ErrTokenFormat: a token is not well-formed for the scheme (wrapped by a
	// *card.RuleError naming the field and rule).
	ErrTokenFormat = errors.New("malformed token")
	// ErrNotToken: a well-formed string that this scheme (and key version)
	// cannot have produced.
	ErrNotToken = errors.New("not a token of this scheme")
	// ErrFixedPoint: FF1 would map this PAN to itself (probability 10^-free per
	// PAN under luhn pass or any); the PAN is refused rather than exposed.
	ErrFixedPoint = errors.New("ff1 token would equal the pan")
	// ErrRandomness: the random source failed or kept producing unusable output.
	ErrRandomness = errors.New("random source failed")
	// ErrConfig: a tokenizer was built from unusable parts.
	ErrConfig = errors.New("invalid tokenizer configuration")
)

// Rule names used in *card.RuleError values from this package, beside the
// card package's rules.
const (
	RuleAllowed  = "allowed"     // value outside the allowed set
	RuleRequired = "required"    // missing value
	RuleFormat   = "format"      // malformed name
	RuleDomain   = "ff1_domain"  // FF1 free domain under 1,000,000
	RuleFree     = "free_digits" // vaulted: no random digit left
	RuleLuhnRule = "luhn_rule"   // token breaks the scheme's Luhn rule
	RuleConflict = "conflict"    // fields that cannot be combined
)

// ValidationError lists every rule a Definition breaks, one *card.RuleError
// per violation, each naming its field ("keep_leading", "allowed_lengths"...)
// so the gRPC edge can return them all as google.rpc.BadRequest field
// violations. errors.Is(err, ErrInvalidDefinition) holds, as does errors.Is
// for each violation's sentinel (ErrFF1Domain, ErrNoFreeDigits).
//
// A ValidationError is immutable once returned: safe for concurrent reads.
type ValidationError struct {
	Violations []*card.RuleError
}

// Error joins the violations: "invalid scheme definition: field: text; ...".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidDefinition.Error())
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(v.Error())
	}
	return b.String()
}

// Is reports ErrInvalidDefinition.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidDefinition }

// Unwrap returns the violations.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Violations))
	for i, v := range e.Violations {
		out[i] = v
	}
	return out
}
