package card

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// PAN length bounds from ISO/IEC 7812-1.
const (
	MinLength = 12
	MaxLength = 19
)

// ParseOptions adjusts Parse. The zero value is the strict default. A plain
// value, safe for concurrent reads.
type ParseOptions struct {
	// Field names the input in a RuleError; empty means "pan".
	Field string
	// AllowNonLuhnUnionPay accepts UnionPay PANs (IIN 62) that fail the Luhn
	// check. Other brands must always pass it.
	AllowNonLuhnUnionPay bool
}

// PAN is a validated primary account number. It is a small value (no pointers);
// copies are independent. The zero value is not a valid PAN (Len() == 0).
//
// A PAN formats itself masked (see Masked) with every fmt verb and as a slog
// value; only Reveal and AppendDigits give the clear digits.
//
// A PAN is safe for concurrent reads; Wipe must not run concurrently with use.
type PAN struct {
	d         [MaxLength]byte // ASCII digits, d[:n]
	n         uint8
	luhnValid bool
	brand     Brand
}

// Parse validates s as a PAN. The error, if any, is a *RuleError wrapping
// ErrEmpty, ErrNotDigits, ErrLength or ErrLuhn, checked in that order.
func Parse(s string, opts ParseOptions) (PAN, error) { return parse(s, opts) }

// ParseBytes is Parse for a byte slice; b is not retained.
func ParseBytes(b []byte, opts ParseOptions) (PAN, error) { return parse(b, opts) }

func parse[T ~string | ~[]byte](s T, opts ParseOptions) (PAN, error) {
	field := opts.Field
	if field == "" {
		field = "pan"
	}
	if len(s) == 0 {
		return PAN{}, &RuleError{Field: field, Rule: RuleRequired, Description: "is required", Err: ErrEmpty}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			return PAN{}, &RuleError{Field: field, Rule: RuleASCIIDigits,
				Description: "byte " + strconv.Itoa(i) + " is not an ascii digit (only 0-9 are allowed)",
				Err:         ErrNotDigits}
		}
	}
	if len(s) < MinLength || len(s) > MaxLength {
		return PAN{}, &RuleError{Field: field, Rule: RuleLength,
			Description: "must have 12 to 19 digits, has " + strconv.Itoa(len(s)),
			Err:         ErrLength}
	}
	var p PAN
	p.n = uint8(copy(p.d[:], s))
	p.luhnValid = Luhn(s)
	p.brand = DetectBrand(s)
	if !p.luhnValid {
		desc := "fails the luhn check"
		if p.brand == BrandUnionPay {
			if opts.AllowNonLuhnUnionPay {
				return p, nil
			}
			desc = "fails the luhn check (non-luhn unionpay cards are not allowed here)"
		}
		return PAN{}, &RuleError{Field: field, Rule: RuleLuhn, Description: desc, Err: ErrLuhn}
	}
	return p, nil
}

// Len returns the number of digits (0 for the zero PAN).
func (p PAN) Len() int { return int(p.n) }

// IsZero reports whether p is the zero value.
func (p PAN) IsZero() bool { return p.n == 0 }

// Brand returns the brand detected from the IIN prefix.
func (p PAN) Brand() Brand { return p.brand }

// LuhnValid reports whether the PAN passes the Luhn check (false only for an
// accepted non-Luhn UnionPay PAN).
func (p PAN) LuhnValid() bool { return p.luhnValid }

// Digit returns the ASCII digit at position i (0-based). It panics if i is out
// of range, like a slice index (the panic carries no digit).
func (p PAN) Digit(i int) byte { return p.d[:p.n][i] }

// AppendDigits appends the clear digits to dst.
func (p PAN) AppendDigits(dst []byte) []byte { return append(dst, p.d[:p.n]...) }

// Reveal returns the clear digits. The returned string cannot be wiped; keep it
// out of logs and errors.
func (p PAN) Reveal() string { return string(p.d[:p.n]) }

// Equal reports whether p and q hold the same digits.
func (p PAN) Equal(q PAN) bool { return p.n == q.n && p.d == q.d }

// EqualDigits reports whether p's digits equal the ASCII digits in b.
func (p PAN) EqualDigits(b []byte) bool { return string(p.d[:p.n]) == string(b) }

// Wipe overwrites the digits and resets p to the zero value. Copies made
// earlier are not affected.
func (p *PAN) Wipe() {
	clear(p.d[:])
	*p = PAN{}
}

// String returns the masked form (Masked).
func (p PAN) String() string { return p.Masked() }

// GoString returns the masked form, so %#v does not reveal digits.
func (p PAN) GoString() string { return "card.PAN(" + p.Masked() + ")" }

// Format writes the masked form for every verb, so that no fmt verb (%d, %x, %v,
// %#v...) prints the clear digits.
func (p PAN) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, p.GoString())
		return
	}
	_, _ = io.WriteString(f, p.Masked())
}

// LogValue makes log/slog record the masked form.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.Masked()) }
