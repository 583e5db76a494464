package scheme

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/panvault/panvault/vault/card"
)

// layout says where the digits of a token of one length go.
type layout struct {
	n        int // PAN and token length
	lead     int // kept leading digits: [0, lead)
	trail    int // kept trailing digits: [n-trail, n)
	check    int // position of the Luhn-rule digit, or -1 under luhn any
	freeEnd  int // free digits are [lead, freeEnd); freeEnd == n-trail
	valueEnd int // FF1/random value digits are [lead, valueEnd): freeEnd minus the check digit
}

// Scheme is a validated, canonical Definition with its per-length layouts
// precomputed. Build one with New; it is immutable and safe for concurrent use.
//
// Where the check digit goes: under luhn pass or fail, the last free digit
// (position n-keep_trailing-1) is the one set to satisfy the rule; with
// keep_trailing 0 that is the usual check-digit position. The other free
// digits are random (vaulted) or FF1 output.
type Scheme struct {
	def     Definition
	layouts [card.MaxLength + 1]*layout // nil where the length is not allowed
	parse   card.ParseOptions
}

// New validates def and returns the compiled scheme of its canonical form.
// The error is a *ValidationError.
func New(def Definition) (*Scheme, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	c := def.Canonical()
	s := &Scheme{def: c, parse: card.ParseOptions{AllowNonLuhnUnionPay: c.AllowNonLuhnUnionPay}}
	for _, n := range c.Lengths {
		l := &layout{n: n, lead: c.KeepLeading, trail: c.KeepTrailing, check: -1, freeEnd: n - c.KeepTrailing}
		l.valueEnd = l.freeEnd
		if c.Luhn != LuhnAny {
			l.check = l.freeEnd - 1
			l.valueEnd = l.check
		}
		s.layouts[n] = l
	}
	return s, nil
}

// Definition returns a copy of the canonical definition.
func (s *Scheme) Definition() Definition {
	d := s.def
	d.Lengths = slices.Clone(s.def.Lengths)
	return d
}

// Name returns the scheme's name.
func (s *Scheme) Name() string { return s.def.Name }

// Mode returns the scheme's mode.
func (s *Scheme) Mode() Mode { return s.def.Mode }

// AllowsLength reports whether n is one of the scheme's allowed lengths.
func (s *Scheme) AllowsLength(n int) bool { return s.layoutFor(n) != nil }

func (s *Scheme) layoutFor(n int) *layout {
	if n < 0 || n >= len(s.layouts) {
		return nil
	}
	return s.layouts[n]
}

// ParsePAN validates str as a PAN for this scheme: card.Parse with the
// scheme's UnionPay option (field names the input; "" means "pan"), then
// CheckPAN.
func (s *Scheme) ParsePAN(str, field string) (card.PAN, error) {
	opts := s.parse
	opts.Field = field
	p, err := card.Parse(str, opts)
	if err != nil {
		return card.PAN{}, err
	}
	if err := s.CheckPAN(p); err != nil {
		return card.PAN{}, err
	}
	return p, nil
}

// CheckPAN reports whether the scheme can serve p: a non-zero PAN of an
// allowed length (else ErrLengthNotAllowed, a precondition failure rather
// than a malformed field) that passes the Luhn check unless it is a UnionPay
// PAN and the scheme allows non-Luhn UnionPay (else a *card.RuleError
// wrapping card.ErrLuhn, field "pan").
func (s *Scheme) CheckPAN(p card.PAN) error {
	if p.IsZero() {
		return &card.RuleError{Field: "pan", Rule: card.RuleRequired, Description: "is required", Err: card.ErrEmpty}
	}
	if s.layoutFor(p.Len()) == nil {
		return lengthError(s.def.Name, p.Len())
	}
	if !p.LuhnValid() && !(s.def.AllowNonLuhnUnionPay && p.Brand() == card.BrandUnionPay) {
		return &card.RuleError{Field: "pan", Rule: card.RuleLuhn,
			Description: "fails the luhn check (not allowed by this scheme)", Err: card.ErrLuhn}
	}
	return nil
}

func lengthError(scheme string, n int) error {
	return fmt.Errorf("%w: scheme %q does not allow %d-digit numbers", ErrLengthNotAllowed, scheme, n)
}

// CheckToken validates the shape of a token given for detokenization: ASCII
// digits, an allowed length, and the scheme's Luhn rule. field names the
// input ("" means "token"). A malformed token gives a *card.RuleError
// wrapping ErrTokenFormat (and card.ErrNotDigits or card.ErrLength where they
// apply); messages never contain the token. It says nothing about whether the
// token exists; it only keeps garbage away from storage lookups and FF1.
//
// (The issue sketched ParseToken returning a value; a token is just its
// digits, so this returns only the verdict.)
func (s *Scheme) CheckToken(tok, field string) error {
	if field == "" {
		field = "token"
	}
	if tok == "" {
		return &card.RuleError{Field: field, Rule: card.RuleRequired, Description: "is required", Err: ErrTokenFormat}
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < '0' || c > '9' {
			return &card.RuleError{Field: field, Rule: card.RuleASCIIDigits,
				Description: "byte " + strconv.Itoa(i) + " is not an ascii digit (only 0-9 are allowed)",
				Err:         fmt.Errorf("%w: %w", ErrTokenFormat, card.ErrNotDigits)}
		}
	}
	if s.layoutFor(len(tok)) == nil {
		return &card.RuleError{Field: field, Rule: card.RuleLength,
			Description: "has " + strconv.Itoa(len(tok)) + " digits, a length this scheme does not allow",
			Err:         fmt.Errorf("%w: %w", ErrTokenFormat, card.ErrLength)}
	}
	switch s.def.Luhn {
	case LuhnFail:
		if card.Luhn(tok) {
			return &card.RuleError{Field: field, Rule: RuleLuhnRule,
				Description: "passes the luhn check, but this scheme's tokens fail it", Err: ErrTokenFormat}
		}
	case LuhnPass:
		if !card.Luhn(tok) {
			return &card.RuleError{Field: field, Rule: RuleLuhnRule,
				Description: "fails the luhn check, but this scheme's tokens pass it", Err: ErrTokenFormat}
		}
	}
	return nil
}
