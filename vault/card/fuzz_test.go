package card

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCardParse checks Parse against an independent model of the rules, and
// that errors never echo the input and masks never show more than allowed.
func FuzzCardParse(f *testing.F) {
	for _, s := range luhnValid {
		f.Add(s, false)
		f.Add(s[:len(s)-1], true)
	}
	for _, s := range []string{"", "6200000000000006", "6200000000000006", "4111 1111 1111 1111",
		"٤١١١١١١١١١١١١١١١", "４１１１１１１１１１１１１１１１", "41111111111111111113", "\xff"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, allowUP bool) {
		p, err := Parse(s, ParseOptions{AllowNonLuhnUnionPay: allowUP})

		// Model: first failing rule in documented order.
		wantRule := ""
		switch {
		case s == "":
			wantRule = RuleRequired
		case strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0:
			wantRule = RuleASCIIDigits
		case len(s) < 12 || len(s) > 19:
			wantRule = RuleLength
		case !refLuhn(s) && !(allowUP && strings.HasPrefix(s, "62")):
			wantRule = RuleLuhn
		}

		if wantRule == "" {
			if err != nil {
				t.Fatalf("Parse rejected valid %s: %v", maskForTest(s), err)
			}
			if p.Reveal() != s || p.Len() != len(s) || p.LuhnValid() != refLuhn(s) || p.Brand() != DetectBrand(s) {
				t.Fatalf("Parse(%s) returned inconsistent PAN", maskForTest(s))
			}
			for _, eight := range []bool{false, true} {
				m := p.MaskedWith(MaskOptions{EightDigitBIN: eight})
				lead := MaskedLeading(len(s), MaskOptions{EightDigitBIN: eight})
				want := s[:lead] + strings.Repeat("*", len(s)-lead-4) + s[len(s)-4:]
				if m != want || lead > 8 || (lead > 6 && len(s) < 16) || len(s)-lead-4 < 4 {
					t.Fatalf("mask of %s = %q (lead %d)", maskForTest(s), m, lead)
				}
			}
			return
		}
		var re *RuleError
		if !errors.As(err, &re) {
			t.Fatalf("Parse(%s) err = %v, want *RuleError %s", maskForTest(s), err, wantRule)
		}
		if re.Rule != wantRule {
			t.Fatalf("Parse(%s) rule = %s, want %s", maskForTest(s), re.Rule, wantRule)
		}
		if !p.IsZero() {
			t.Fatal("rejected input produced a non-zero PAN")
		}
		assertNoEcho(t, err.Error(), s)
	})
}

// FuzzCardLuhn compares Luhn, LuhnCheckDigit and LuhnDigitAt with the textbook
// reference.
func FuzzCardLuhn(f *testing.F) {
	for _, s := range luhnValid {
		f.Add(s, uint8(3))
	}
	f.Add("0", uint8(0))
	f.Fuzz(func(t *testing.T, s string, pos uint8) {
		if Luhn(s) != refLuhn(s) {
			t.Fatalf("Luhn(%q) disagrees with reference", maskForTest(s))
		}
		cd, err := LuhnCheckDigit(s)
		if err == nil && !refLuhn(s+string(cd)) {
			t.Fatalf("check digit %c does not complete %s", cd, maskForTest(s))
		}
		allDigits := s != "" && strings.Trim(s, "0123456789") == ""
		if (err == nil) != allDigits {
			t.Fatalf("LuhnCheckDigit error %v for all-digits=%v", err, allDigits)
		}
		if allDigits {
			b := []byte(s)
			i := int(pos) % len(b)
			d, err := LuhnDigitAt(b, i)
			if err != nil {
				t.Fatal(err)
			}
			b[i] = d
			if !refLuhn(string(b)) {
				t.Fatalf("LuhnDigitAt(%d) does not complete the check", i)
			}
		}
	})
}
