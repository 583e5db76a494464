package scheme

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/panvault/panvault/vault/card"
)

// Mode is how a scheme makes tokens. A plain value, safe for concurrent use.
type Mode uint8

// Modes. The zero value is unspecified and refused by Validate.
const (
	ModeUnspecified Mode = iota
	ModeVaulted          // random digits; PAN stored encrypted in the vault
	ModeFF1              // FF1 format-preserving encryption; nothing stored
)

// String returns "vaulted", "ff1" or "unspecified".
func (m Mode) String() string {
	switch m {
	case ModeVaulted:
		return "vaulted"
	case ModeFF1:
		return "ff1"
	case ModeUnspecified:
		return "unspecified"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses "vaulted" or "ff1".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "vaulted":
		return ModeVaulted, nil
	case "ff1":
		return ModeFF1, nil
	}
	return ModeUnspecified, fmt.Errorf("%w: mode must be vaulted or ff1", ErrInvalidDefinition)
}

// LuhnRule says whether tokens pass the Luhn check. The zero value is
// LuhnFail, the default. A plain value, safe for concurrent use.
type LuhnRule uint8

// Luhn rules.
const (
	LuhnFail LuhnRule = iota // every token fails Luhn: never mistaken for a PAN
	LuhnPass                 // every token passes Luhn (legacy systems)
	LuhnAny                  // no rule; FF1 gains one free digit
)

// String returns "fail", "pass" or "any".
func (r LuhnRule) String() string {
	switch r {
	case LuhnFail:
		return "fail"
	case LuhnPass:
		return "pass"
	case LuhnAny:
		return "any"
	}
	return "luhn(" + strconv.Itoa(int(r)) + ")"
}

// ParseLuhnRule parses "fail", "pass" or "any"; "" means fail.
func ParseLuhnRule(s string) (LuhnRule, error) {
	switch s {
	case "", "fail":
		return LuhnFail, nil
	case "pass":
		return LuhnPass, nil
	case "any":
		return LuhnAny, nil
	}
	return LuhnFail, fmt.Errorf("%w: luhn rule must be fail, pass or any", ErrInvalidDefinition)
}

// MinFF1Domain is the smallest number of free values an FF1 scheme may leave
// for any allowed length (NIST SP 800-38G Rev. 1: radix^minlen >= 1,000,000).
const MinFF1Domain = 1_000_000

// minFF1FreeDigits is log10(MinFF1Domain).
const minFF1FreeDigits = 6

// maxNameLen bounds scheme and key names (see the AdminService name rules).
const maxNameLen = 63

// Definition is a token scheme as an administrator defines it. Field names in
// validation errors are the API's (proto) names, given in each comment.
//
// A Definition is a plain value; Validate and Canonical do not modify it.
// Safe for concurrent reads.
type Definition struct {
	// Name (name): 1 to 63 of [a-z0-9_-], starting with a letter.
	Name string
	// Mode (mode): ModeVaulted or ModeFF1.
	Mode Mode
	// KeepLeading (keep_leading): 0, 6 or 8 leading PAN digits kept in clear.
	KeepLeading int
	// KeepTrailing (keep_trailing): 0 or 4 trailing PAN digits kept in clear.
	KeepTrailing int
	// Luhn (luhn_rule): the tokens' Luhn rule; zero value LuhnFail.
	Luhn LuhnRule
	// Deterministic (deterministic): vaulted only, the same PAN always gets the
	// same token. FF1 is always deterministic: Canonical sets it to true.
	Deterministic bool
	// TTL (ttl): vaulted only; 0 means tokens never expire. Must be 0 for FF1.
	TTL time.Duration
	// KeyName (key): the key protecting tokens (PAN encryption for vaulted,
	// FPE for FF1). Required; same name rules as Name.
	KeyName string
	// FingerprintKeyName (fingerprint_key): required for deterministic vaulted
	// schemes, empty otherwise.
	FingerprintKeyName string
	// Lengths (allowed_lengths): allowed PAN lengths, 12 to 19, no duplicates.
	// Empty means every length from 12 to 19.
	Lengths []int
	// AllowNonLuhnUnionPay (allow_non_luhn_unionpay): accept UnionPay PANs that
	// fail the Luhn check. Refused for FF1 with luhn pass or fail, where the
	// check digit is recomputed on detokenize and such a PAN cannot round-trip.
	AllowNonLuhnUnionPay bool
}

// Canonical returns the definition as it is stored: Lengths sorted (all of
// 12-19 when empty) and Deterministic true for FF1. It does not validate.
func (d Definition) Canonical() Definition {
	c := d
	if len(d.Lengths) == 0 {
		c.Lengths = make([]int, 0, card.MaxLength-card.MinLength+1)
		for n := card.MinLength; n <= card.MaxLength; n++ {
			c.Lengths = append(c.Lengths, n)
		}
	} else {
		c.Lengths = slices.Clone(d.Lengths)
		slices.Sort(c.Lengths)
	}
	if c.Mode == ModeFF1 {
		c.Deterministic = true
	}
	return c
}

// FreeDigits returns how many token digits a scheme of this shape fills with
// secret-dependent values (random digits or FF1 output) for PANs of n digits:
// n - kept digits, minus the check digit under luhn pass or fail. Under FF1 the
// free domain is 10^FreeDigits(n). Negative when the shape does not fit n.
func (d Definition) FreeDigits(n int) int {
	free := n - d.KeepLeading - d.KeepTrailing
	if d.Luhn != LuhnAny {
		free--
	}
	return free
}

// Validate checks every rule and returns nil or a *ValidationError listing all
// violations.
func (d Definition) Validate() error {
	var v []*card.RuleError
	add := func(field, rule, desc string, err error) {
		v = append(v, &card.RuleError{Field: field, Rule: rule, Description: desc, Err: err})
	}
	if msg := checkName(d.Name); msg != "" {
		add("name", nameRule(d.Name), msg, ErrInvalidDefinition)
	}
	modeOK := d.Mode == ModeVaulted || d.Mode == ModeFF1
	if !modeOK {
		add("mode", RuleAllowed, "must be vaulted or ff1", ErrInvalidDefinition)
	}
	if d.KeepLeading != 0 && d.KeepLeading != 6 && d.KeepLeading != 8 {
		add("keep_leading", RuleAllowed, "must be 0, 6 or 8", ErrInvalidDefinition)
	}
	if d.KeepTrailing != 0 && d.KeepTrailing != 4 {
		add("keep_trailing", RuleAllowed, "must be 0 or 4", ErrInvalidDefinition)
	}
	if d.Luhn > LuhnAny {
		add("luhn_rule", RuleAllowed, "must be fail, pass or any", ErrInvalidDefinition)
	}
	if d.TTL < 0 {
		add("ttl", RuleAllowed, "must not be negative", ErrInvalidDefinition)
	}
	if d.Mode == ModeFF1 && d.TTL != 0 {
		add("ttl", RuleConflict, "must be unset for ff1 schemes (nothing is stored, so nothing expires)", ErrInvalidDefinition)
	}
	if msg := checkName(d.KeyName); msg != "" {
		add("key", nameRule(d.KeyName), msg, ErrInvalidDefinition)
	}
	needFP := d.Mode == ModeVaulted && d.Deterministic
	switch {
	case needFP && d.FingerprintKeyName == "":
		add("fingerprint_key", RuleRequired, "is required for deterministic vaulted schemes", ErrInvalidDefinition)
	case needFP:
		if msg := checkName(d.FingerprintKeyName); msg != "" {
			add("fingerprint_key", RuleFormat, msg, ErrInvalidDefinition)
		}
	case d.FingerprintKeyName != "":
		add("fingerprint_key", RuleConflict, "must be empty unless the scheme is vaulted and deterministic", ErrInvalidDefinition)
	}
	if d.Mode == ModeFF1 && d.AllowNonLuhnUnionPay && d.Luhn != LuhnAny {
		add("allow_non_luhn_unionpay", RuleConflict,
			"ff1 schemes with luhn rule pass or fail recompute the pan's check digit on detokenize, so non-luhn pans cannot round-trip; use luhn rule any",
			ErrInvalidDefinition)
	}
	lengthsOK := true
	seen := map[int]bool{}
	for _, n := range d.Lengths {
		if n < card.MinLength || n > card.MaxLength {
			add("allowed_lengths", RuleAllowed, "length "+strconv.Itoa(n)+" is outside 12-19", ErrInvalidDefinition)
			lengthsOK = false
		} else if seen[n] {
			add("allowed_lengths", RuleAllowed, "length "+strconv.Itoa(n)+" is listed twice", ErrInvalidDefinition)
			lengthsOK = false
		}
		seen[n] = true
	}
	// The domain checks need a valid shape and valid lengths to say anything
	// useful; otherwise the violations above already explain the problem.
	keepOK := (d.KeepLeading == 0 || d.KeepLeading == 6 || d.KeepLeading == 8) &&
		(d.KeepTrailing == 0 || d.KeepTrailing == 4) && d.Luhn <= LuhnAny
	if modeOK && keepOK && lengthsOK {
		var rv *card.RuleError
		if d.Mode == ModeFF1 {
			rv = d.ff1DomainViolation()
		} else {
			rv = d.vaultedFreeViolation()
		}
		if rv != nil {
			v = append(v, rv)
		}
	}
	if len(v) > 0 {
		return &ValidationError{Violations: v}
	}
	return nil
}

// ff1DomainViolation lists every allowed length whose free domain is under
// MinFF1Domain.
func (d Definition) ff1DomainViolation() *card.RuleError {
	var bad []string
	for _, n := range d.Canonical().Lengths {
		free := d.FreeDigits(n)
		if free >= minFF1FreeDigits {
			continue
		}
		s := "length " + strconv.Itoa(n) + ": " + strconv.Itoa(n) + " digits - " +
			strconv.Itoa(d.KeepLeading+d.KeepTrailing) + " kept"
		if d.Luhn != LuhnAny {
			s += " - 1 luhn digit"
		}
		if free < 0 {
			free = 0
		}
		s += " = " + strconv.Itoa(free) + " free, 10^" + strconv.Itoa(free) + " values"
		bad = append(bad, s)
	}
	if len(bad) == 0 {
		return nil
	}
	hint := " (keep fewer digits or drop these lengths)"
	if d.Luhn != LuhnAny {
		hint = " (keep fewer digits, use luhn rule any, or drop these lengths)"
	}
	return &card.RuleError{Field: "allowed_lengths", Rule: RuleDomain,
		Description: "ff1 needs at least 10^6 free values per length (nist sp 800-38g); too small for " +
			strings.Join(bad, "; ") + hint,
		Err: ErrFF1Domain}
}

// vaultedFreeViolation lists every allowed length for which a vaulted token
// cannot differ from its PAN: no free digit at all, or (luhn pass) only the
// check digit, which is then fixed by the other digits.
func (d Definition) vaultedFreeViolation() *card.RuleError {
	var bad []string
	for _, n := range d.Canonical().Lengths {
		free := n - d.KeepLeading - d.KeepTrailing
		switch {
		case free < 1:
			bad = append(bad, "length "+strconv.Itoa(n)+": every digit is kept")
		case free == 1 && d.Luhn == LuhnPass:
			bad = append(bad, "length "+strconv.Itoa(n)+": the only free digit is the luhn check digit")
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &card.RuleError{Field: "allowed_lengths", Rule: RuleFree,
		Description: "a vaulted token must be able to differ from its pan; " + strings.Join(bad, "; "),
		Err:         ErrNoFreeDigits}
}

// checkName returns "" for a valid name, else the reason.
func checkName(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > maxNameLen {
		return "must be at most 63 characters"
	}
	if s[0] < 'a' || s[0] > 'z' {
		return "must start with a lower-case letter"
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "may contain only lower-case letters, digits, '-' and '_'"
		}
	}
	return ""
}

func nameRule(s string) string {
	if s == "" {
		return RuleRequired
	}
	return RuleFormat
}
