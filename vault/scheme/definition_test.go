package scheme

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/card"
)

func validDef() Definition {
	return Definition{Name: "cards", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "pan-key"}
}

func TestValidateAcceptsGoodDefinitions(t *testing.T) {
	for _, d := range []Definition{
		validDef(),
		{Name: "a", Mode: ModeFF1, KeepLeading: 6, KeepTrailing: 4, Luhn: LuhnAny, KeyName: "fpe-1", Lengths: []int{16, 19}},
		{Name: "det_1", Mode: ModeVaulted, Deterministic: true, FingerprintKeyName: "fp", KeyName: "k", TTL: time.Hour, Luhn: LuhnPass},
		{Name: "ff1-pass", Mode: ModeFF1, Luhn: LuhnPass, KeyName: "k", Deterministic: false},
		{Name: "up", Mode: ModeFF1, Luhn: LuhnAny, KeyName: "k", AllowNonLuhnUnionPay: true, KeepLeading: 8, Lengths: []int{14, 16, 19}},
		{Name: strings.Repeat("x", 63), Mode: ModeVaulted, KeyName: "k", Lengths: []int{19, 12}},
	} {
		if err := d.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", d.Name, err)
		}
		if _, err := New(d); err != nil {
			t.Errorf("New(%q): %v", d.Name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Definition)
		field string
		rule  string
	}{
		{"empty name", func(d *Definition) { d.Name = "" }, "name", RuleRequired},
		{"long name", func(d *Definition) { d.Name = strings.Repeat("a", 64) }, "name", RuleFormat},
		{"upper-case name", func(d *Definition) { d.Name = "Cards" }, "name", RuleFormat},
		{"name starts with digit", func(d *Definition) { d.Name = "1cards" }, "name", RuleFormat},
		{"name with dot", func(d *Definition) { d.Name = "cards.v1" }, "name", RuleFormat},
		{"mode unspecified", func(d *Definition) { d.Mode = ModeUnspecified }, "mode", RuleAllowed},
		{"mode out of range", func(d *Definition) { d.Mode = 9 }, "mode", RuleAllowed},
		{"keep_leading 4", func(d *Definition) { d.KeepLeading = 4 }, "keep_leading", RuleAllowed},
		{"keep_leading -6", func(d *Definition) { d.KeepLeading = -6 }, "keep_leading", RuleAllowed},
		{"keep_trailing 2", func(d *Definition) { d.KeepTrailing = 2 }, "keep_trailing", RuleAllowed},
		{"luhn out of range", func(d *Definition) { d.Luhn = 3 }, "luhn_rule", RuleAllowed},
		{"negative ttl", func(d *Definition) { d.TTL = -time.Second }, "ttl", RuleAllowed},
		{"ttl on ff1", func(d *Definition) { d.Mode = ModeFF1; d.KeepLeading = 0; d.TTL = time.Hour }, "ttl", RuleConflict},
		{"missing key", func(d *Definition) { d.KeyName = "" }, "key", RuleRequired},
		{"bad key", func(d *Definition) { d.KeyName = "key name" }, "key", RuleFormat},
		{"deterministic without fingerprint key", func(d *Definition) { d.Deterministic = true }, "fingerprint_key", RuleRequired},
		{"bad fingerprint key", func(d *Definition) { d.Deterministic = true; d.FingerprintKeyName = "FP" }, "fingerprint_key", RuleFormat},
		{"fingerprint key when random", func(d *Definition) { d.FingerprintKeyName = "fp" }, "fingerprint_key", RuleConflict},
		{"fingerprint key on ff1", func(d *Definition) { d.Mode = ModeFF1; d.KeepLeading = 0; d.FingerprintKeyName = "fp" }, "fingerprint_key", RuleConflict},
		{"non-luhn unionpay on ff1 fail", func(d *Definition) { d.Mode = ModeFF1; d.KeepLeading = 0; d.AllowNonLuhnUnionPay = true }, "allow_non_luhn_unionpay", RuleConflict},
		{"non-luhn unionpay on ff1 pass", func(d *Definition) {
			d.Mode = ModeFF1
			d.KeepLeading = 0
			d.Luhn = LuhnPass
			d.AllowNonLuhnUnionPay = true
		}, "allow_non_luhn_unionpay", RuleConflict},
		{"length 11", func(d *Definition) { d.Lengths = []int{11, 16} }, "allowed_lengths", RuleAllowed},
		{"length 20", func(d *Definition) { d.Lengths = []int{20} }, "allowed_lengths", RuleAllowed},
		{"duplicate length", func(d *Definition) { d.Lengths = []int{16, 15, 16} }, "allowed_lengths", RuleAllowed},
		{"ff1 domain", func(d *Definition) { d.Mode = ModeFF1 }, "allowed_lengths", RuleDomain},
		{"vaulted no free digit", func(d *Definition) { d.KeepLeading = 8; d.Lengths = []int{12} }, "allowed_lengths", RuleFree},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDef()
			tt.edit(&d)
			err := d.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalidDefinition) {
				t.Error("errors.Is(err, ErrInvalidDefinition) is false")
			}
			if len(ve.Violations) != 1 {
				t.Fatalf("got %d violations (%v), want 1", len(ve.Violations), err)
			}
			v := ve.Violations[0]
			if v.Field != tt.field || v.Rule != tt.rule {
				t.Errorf("violation %s/%s (%v), want %s/%s", v.Field, v.Rule, v, tt.field, tt.rule)
			}
			if msg := err.Error(); msg != strings.ToLower(msg) && !strings.Contains(msg, "'") {
				t.Errorf("message not lower-case: %q", msg)
			}
			if _, err := New(d); !errors.Is(err, ErrInvalidDefinition) {
				t.Errorf("New accepted an invalid definition: %v", err)
			}
		})
	}
}

func TestValidateCollectsAllViolations(t *testing.T) {
	d := Definition{Mode: 7, KeepLeading: 5, KeepTrailing: 5, Luhn: 9, TTL: -1, Lengths: []int{30}}
	err := d.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	var fields []string
	for _, v := range ve.Violations {
		fields = append(fields, v.Field)
	}
	want := []string{"name", "mode", "keep_leading", "keep_trailing", "luhn_rule", "ttl", "key", "allowed_lengths"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
	for _, v := range ve.Violations {
		if !strings.Contains(err.Error(), v.Field+": "+v.Description) {
			t.Errorf("joined message lacks %q", v.Field)
		}
	}
	if len(ve.Unwrap()) != len(ve.Violations) {
		t.Error("Unwrap does not return every violation")
	}
}

// TestFF1DomainErrorNamesLengths checks the example in DESIGN.md: 16 digits
// keeping 6+4 has 10^6 free values under luhn any (accepted) and 10^5 under
// pass or fail (refused), and that the error names every failing length.
func TestFF1DomainErrorNamesLengths(t *testing.T) {
	base := Definition{Name: "ff", Mode: ModeFF1, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Lengths: []int{16}}
	base.Luhn = LuhnAny
	if err := base.Validate(); err != nil {
		t.Fatalf("16 digits, 6+4 kept, luhn any (10^6 values) refused: %v", err)
	}
	for _, r := range []LuhnRule{LuhnPass, LuhnFail} {
		d := base
		d.Luhn = r
		err := d.Validate()
		if !errors.Is(err, ErrFF1Domain) {
			t.Fatalf("luhn %v: 10^5 values accepted: %v", r, err)
		}
		if !strings.Contains(err.Error(), "length 16: 16 digits - 10 kept - 1 luhn digit = 5 free, 10^5 values") {
			t.Errorf("message does not explain the arithmetic: %v", err)
		}
	}
	// All lengths (the default): exactly 12..16 fail under pass.
	d := base
	d.Luhn = LuhnPass
	d.Lengths = nil
	err := d.Validate()
	re := regexp.MustCompile(`length (\d+):`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(err.Error(), -1) {
		got = append(got, m[1])
	}
	if want := []string{"12", "13", "14", "15", "16"}; !slices.Equal(got, want) {
		t.Errorf("failing lengths %v, want %v (%v)", got, want, err)
	}
}

func TestCanonical(t *testing.T) {
	d := Definition{Mode: ModeFF1, Lengths: []int{19, 13, 16}}
	c := d.Canonical()
	if !slices.Equal(c.Lengths, []int{13, 16, 19}) || !c.Deterministic {
		t.Errorf("Canonical = %+v", c)
	}
	if !slices.Equal(d.Lengths, []int{19, 13, 16}) {
		t.Error("Canonical modified its receiver")
	}
	all := Definition{Mode: ModeVaulted}.Canonical()
	if len(all.Lengths) != 8 || all.Lengths[0] != 12 || all.Lengths[7] != 19 || all.Deterministic {
		t.Errorf("default lengths %v deterministic %v", all.Lengths, all.Deterministic)
	}
	s, err := New(Definition{Name: "x", Mode: ModeFF1, Luhn: LuhnAny, KeyName: "k", Lengths: []int{19, 16}})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Definition()
	got.Lengths[0] = 99 // a copy: must not reach the scheme
	if !s.AllowsLength(16) || !s.AllowsLength(19) || s.AllowsLength(17) || s.AllowsLength(99) || s.AllowsLength(-1) {
		t.Error("AllowsLength disagrees with the definition")
	}
	if s.Definition().Lengths[0] != 16 || s.Name() != "x" || s.Mode() != ModeFF1 {
		t.Error("Definition() leaked internal state or lost fields")
	}
}

func TestParseModeAndLuhnRule(t *testing.T) {
	for _, m := range []Mode{ModeVaulted, ModeFF1} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("vault"); !errors.Is(err, ErrInvalidDefinition) {
		t.Errorf("ParseMode(vault) err = %v", err)
	}
	for _, r := range []LuhnRule{LuhnFail, LuhnPass, LuhnAny} {
		got, err := ParseLuhnRule(r.String())
		if err != nil || got != r {
			t.Errorf("ParseLuhnRule(%q) = %v, %v", r.String(), got, err)
		}
	}
	if r, err := ParseLuhnRule(""); err != nil || r != LuhnFail {
		t.Errorf("empty luhn rule = %v, %v; want fail", r, err)
	}
	if _, err := ParseLuhnRule("none"); !errors.Is(err, ErrInvalidDefinition) {
		t.Errorf("ParseLuhnRule(none) err = %v", err)
	}
	if ModeUnspecified.String() != "unspecified" || Mode(9).String() != "mode(9)" || LuhnRule(5).String() != "luhn(5)" {
		t.Error("String of unusual values")
	}
}

func TestFreeDigits(t *testing.T) {
	for _, tt := range []struct {
		d    Definition
		n    int
		want int
	}{
		{Definition{KeepLeading: 6, KeepTrailing: 4, Luhn: LuhnAny}, 16, 6},
		{Definition{KeepLeading: 6, KeepTrailing: 4, Luhn: LuhnFail}, 16, 5},
		{Definition{KeepLeading: 0, KeepTrailing: 0, Luhn: LuhnPass}, 19, 18},
		{Definition{KeepLeading: 8, KeepTrailing: 4, Luhn: LuhnPass}, 12, -1},
	} {
		if got := tt.d.FreeDigits(tt.n); got != tt.want {
			t.Errorf("FreeDigits(%d) for %d+%d %v = %d, want %d", tt.n, tt.d.KeepLeading, tt.d.KeepTrailing, tt.d.Luhn, got, tt.want)
		}
	}
}

func TestCheckPANAndParsePAN(t *testing.T) {
	s, err := New(Definition{Name: "s", Mode: ModeVaulted, KeyName: "k", Lengths: []int{16}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ParsePAN("4111111111111111", ""); err != nil {
		t.Fatalf("ParsePAN: %v", err)
	}
	_, err = s.ParsePAN("378282246310005", "")
	if !errors.Is(err, ErrLengthNotAllowed) {
		t.Errorf("15 digits under a 16-only scheme: %v", err)
	}
	var re *card.RuleError
	if errors.As(err, &re) {
		t.Error("length-not-allowed must not be a field violation (it is a precondition)")
	}
	_, err = s.ParsePAN("4111111111111112", "items[2].pan")
	if !errors.As(err, &re) || re.Field != "items[2].pan" || !errors.Is(err, card.ErrLuhn) {
		t.Errorf("Luhn failure: %v", err)
	}
	if _, err := s.ParsePAN("6200000000000006", ""); !errors.Is(err, card.ErrLuhn) {
		t.Errorf("non-Luhn UnionPay accepted by a scheme that does not allow it: %v", err)
	}
	if err := s.CheckPAN(card.PAN{}); !errors.Is(err, card.ErrEmpty) {
		t.Errorf("zero PAN: %v", err)
	}
	// A PAN parsed elsewhere with the UnionPay option is still refused.
	up, err := card.Parse("6200000000000006", card.ParseOptions{AllowNonLuhnUnionPay: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPAN(up); !errors.Is(err, card.ErrLuhn) {
		t.Errorf("CheckPAN accepted a non-Luhn UnionPay PAN: %v", err)
	}
	s2, err := New(Definition{Name: "s", Mode: ModeVaulted, KeyName: "k", AllowNonLuhnUnionPay: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CheckPAN(up); err != nil {
		t.Errorf("scheme allowing non-Luhn UnionPay refused one: %v", err)
	}
	msg := fmt.Sprint(s.CheckPAN(up))
	if strings.Contains(msg, "6200000000000006") {
		t.Error("error echoes the PAN")
	}
}

func TestCheckToken(t *testing.T) {
	mk := func(r LuhnRule) *Scheme {
		s, err := New(Definition{Name: "s", Mode: ModeVaulted, KeyName: "k", Luhn: r, Lengths: []int{16}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid, invalid := "4111111111111111", "4111111111111112"
	tests := []struct {
		rule LuhnRule
		tok  string
		want string // rule name, "" for ok
		err  error
	}{
		{LuhnFail, invalid, "", nil},
		{LuhnFail, valid, RuleLuhnRule, nil},
		{LuhnPass, valid, "", nil},
		{LuhnPass, invalid, RuleLuhnRule, nil},
		{LuhnAny, valid, "", nil},
		{LuhnAny, invalid, "", nil},
		{LuhnAny, "", card.RuleRequired, nil},
		{LuhnAny, "411111111111111", card.RuleLength, card.ErrLength},
		{LuhnAny, "4111-11111111111", card.RuleASCIIDigits, card.ErrNotDigits},
		{LuhnAny, "４１１１１１１１１１１１１１１１", card.RuleASCIIDigits, card.ErrNotDigits},
	}
	for _, tt := range tests {
		err := mk(tt.rule).CheckToken(tt.tok, "")
		if tt.want == "" {
			if err != nil {
				t.Errorf("rule %v token %s: %v", tt.rule, maskDigits(tt.tok), err)
			}
			continue
		}
		var re *card.RuleError
		if !errors.As(err, &re) || re.Rule != tt.want || re.Field != "token" || !errors.Is(err, ErrTokenFormat) {
			t.Errorf("rule %v token %s: err %v, want rule %s", tt.rule, maskDigits(tt.tok), err, tt.want)
			continue
		}
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("err %v does not wrap %v", err, tt.err)
		}
		if len(tt.tok) > 5 && strings.Contains(err.Error(), tt.tok[:6]) {
			t.Errorf("error echoes the token: %v", err)
		}
	}
	if err := mk(LuhnAny).CheckToken("12", "items[0].token"); !strings.HasPrefix(err.Error(), "items[0].token: ") {
		t.Errorf("field not used: %v", err)
	}
}

func TestValidationErrorRuleErrors(t *testing.T) {
	err := Definition{Name: "ok", Mode: ModeFF1, KeepLeading: 4, KeyName: ""}.Validate()
	got := card.RuleErrors(err)
	if len(got) != 2 || got[0].Field != "keep_leading" || got[1].Field != "key" {
		t.Errorf("RuleErrors = %v", got)
	}
}
