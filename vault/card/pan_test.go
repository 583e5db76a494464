package card

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	for _, s := range luhnValid {
		p, err := Parse(s, ParseOptions{})
		if err != nil {
			t.Fatalf("Parse(%s): %v", maskForTest(s), err)
		}
		if p.Reveal() != s || p.Len() != len(s) || !p.LuhnValid() || p.Brand() != DetectBrand(s) || p.IsZero() {
			t.Errorf("Parse(%s) = len %d luhn %v brand %v", maskForTest(s), p.Len(), p.LuhnValid(), p.Brand())
		}
		if string(p.AppendDigits([]byte("x"))) != "x"+s || !p.EqualDigits([]byte(s)) {
			t.Errorf("AppendDigits/EqualDigits mismatch for %s", maskForTest(s))
		}
		for i := range s {
			if p.Digit(i) != s[i] {
				t.Fatalf("Digit(%d) mismatch for %s", i, maskForTest(s))
			}
		}
		q, err := ParseBytes([]byte(s), ParseOptions{})
		if err != nil || !q.Equal(p) {
			t.Errorf("ParseBytes(%s) differs from Parse: %v", maskForTest(s), err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		opts  ParseOptions
		rule  string
		err   error
		field string
	}{
		{"empty", "", ParseOptions{}, RuleRequired, ErrEmpty, "pan"},
		{"spaces", "4111 1111 1111 1111", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"dashes", "4111-1111-1111-1111", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"trailing newline", "4111111111111111\n", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"leading plus", "+4111111111111111", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"nul", "41111111\x0011111111", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"arabic-indic digits", "٤١١١١١١١١١١١١١١١", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"fullwidth digits", "４１１１１１１１１１１１１１１１", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"devanagari digit inside", "411111111111११11", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"invalid utf8", "4111111111\xff11111", ParseOptions{}, RuleASCIIDigits, ErrNotDigits, "pan"},
		{"too short", "79927398713", ParseOptions{}, RuleLength, ErrLength, "pan"},
		{"too long", "41111111111111111113", ParseOptions{}, RuleLength, ErrLength, "pan"},
		{"very long", strings.Repeat("4", 5000), ParseOptions{}, RuleLength, ErrLength, "pan"},
		{"luhn", "4111111111111112", ParseOptions{}, RuleLuhn, ErrLuhn, "pan"},
		{"luhn with unionpay option, visa", "4111111111111112", ParseOptions{AllowNonLuhnUnionPay: true}, RuleLuhn, ErrLuhn, "pan"},
		{"non-luhn unionpay not allowed", "6200000000000006", ParseOptions{}, RuleLuhn, ErrLuhn, "pan"},
		{"field name", "123", ParseOptions{Field: "pans[3]"}, RuleLength, ErrLength, "pans[3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.in, tt.opts)
			if err == nil {
				t.Fatalf("Parse accepted %s", maskForTest(tt.in))
			}
			if !p.IsZero() {
				t.Error("rejected parse returned a non-zero PAN")
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *RuleError", err)
			}
			if re.Rule != tt.rule || re.Field != tt.field || !errors.Is(err, tt.err) {
				t.Errorf("got rule %q field %q err %v; want rule %q field %q wrapping %v",
					re.Rule, re.Field, err, tt.rule, tt.field, tt.err)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") || err.Error() != strings.ToLower(err.Error()) {
				t.Errorf("message %q: want lower-case, prefixed with the field", err.Error())
			}
			assertNoEcho(t, err.Error(), tt.in)
		})
	}
}

func TestParseNonLuhnUnionPay(t *testing.T) {
	const s = "6200000000000006" // UnionPay range, fails Luhn
	if Luhn(s) {
		t.Fatal("vector must fail Luhn")
	}
	p, err := Parse(s, ParseOptions{AllowNonLuhnUnionPay: true})
	if err != nil {
		t.Fatalf("non-Luhn UnionPay with option: %v", err)
	}
	if p.LuhnValid() || p.Brand() != BrandUnionPay || p.Reveal() != s {
		t.Errorf("got luhn %v brand %v", p.LuhnValid(), p.Brand())
	}
	_, err = Parse(s, ParseOptions{})
	var re *RuleError
	if !errors.As(err, &re) || !strings.Contains(re.Description, "unionpay") {
		t.Errorf("error should say non-luhn unionpay is not allowed: %v", err)
	}
}

func TestRuleErrorWithField(t *testing.T) {
	_, err := Parse("12", ParseOptions{})
	var re *RuleError
	if !errors.As(err, &re) {
		t.Fatal("not a RuleError")
	}
	c := re.WithField("pans[7]")
	if c.Field != "pans[7]" || re.Field != "pan" || !errors.Is(c, ErrLength) {
		t.Errorf("WithField: copy %q original %q", c.Field, re.Field)
	}
}

// TestPANNeverFormatsClear checks every fmt verb and log/slog.
func TestPANNeverFormatsClear(t *testing.T) {
	const s = "4111111111111111"
	p, err := Parse(s, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct{ PAN PAN }
	var outs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10.3v"} {
		outs = append(outs, fmt.Sprintf(f, p), fmt.Sprintf(f, &p), fmt.Sprintf(f, wrapper{p}), fmt.Sprintf(f, []PAN{p}))
	}
	outs = append(outs, fmt.Sprint(p), fmt.Sprintln(p), p.String(), p.GoString(), fmt.Errorf("wrap %v", p).Error())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("tokenize", "pan", p)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("tokenize", "pan", p)
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, s) || strings.Contains(o, "111111111") {
			t.Errorf("output %q shows hidden digits", strings.ReplaceAll(o, s, "<PAN>"))
		}
		if !strings.Contains(o, "411111******1111") {
			t.Errorf("output %q lacks the masked form", o)
		}
	}
}

func TestWipe(t *testing.T) {
	p, err := Parse("5555555555554444", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := p
	p.Wipe()
	if !p.IsZero() || p.Len() != 0 || p.Reveal() != "" || p.Masked() != "" || p.d != [MaxLength]byte{} {
		t.Error("Wipe left data behind")
	}
	if q.Reveal() != "5555555555554444" {
		t.Error("Wipe changed an earlier copy")
	}
}

func TestRuleErrors(t *testing.T) {
	_, e1 := Parse("12", ParseOptions{Field: "a"})
	_, e2 := Parse("x", ParseOptions{Field: "b"})
	joined := fmt.Errorf("batch: %w", errors.Join(e1, errors.New("other"), fmt.Errorf("wrapped: %w", e2)))
	got := RuleErrors(joined)
	if len(got) != 2 || got[0].Field != "a" || got[1].Field != "b" {
		t.Errorf("RuleErrors = %v", got)
	}
	if RuleErrors(nil) != nil || RuleErrors(errors.New("plain")) != nil {
		t.Error("RuleErrors found violations in errors without any")
	}
}
