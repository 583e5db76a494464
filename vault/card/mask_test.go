package card

import (
	"fmt"
	"strings"
	"testing"
)

func TestMaskedKnown(t *testing.T) {
	tests := []struct {
		pan        string
		six, eight string
	}{
		{"4111111111111111", "411111******1111", "41111111****1111"},
		{"6205500000000000004", "620550*********0004", "62055000*******0004"},
		{"378282246310005", "378282*****0005", "378282*****0005"},
		{"30569309025904", "30569*****5904", "30569*****5904"},
		{"4222222222222", "4222*****2222", "4222*****2222"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pan, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Masked(); got != tt.six {
			t.Errorf("Masked = %q, want %q", got, tt.six)
		}
		if got := p.MaskedWith(MaskOptions{EightDigitBIN: true}); got != tt.eight {
			t.Errorf("MaskedWith(8) = %q, want %q", got, tt.eight)
		}
	}
	if (PAN{}).Masked() != "" {
		t.Error("zero PAN should mask to empty")
	}
}

// TestMaskDigits: an unvalidated digit string masks exactly as a PAN of the
// same digits; anything else shows only its length.
func TestMaskDigits(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"4111111111111111", "411111******1111"},
		{"4222222222222", "4222*****2222"},
		{"123456789012", "123*****9012"},
		{"1234567890123456789012345", "123456***************2345"},
		{"12345678901", "[len 11]"},
		{"41111111111x1111", "[len 16]"},
		{"", "[len 0]"},
	} {
		if got := MaskDigits(tt.in); got != tt.want {
			t.Errorf("MaskDigits(len %d) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
	for _, pan := range []string{"4111111111111111", "6205500000000000004", "378282246310005", "30569309025904", "4222222222222"} {
		p, err := Parse(pan, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := MaskDigits(pan), p.Masked(); got != want {
			t.Errorf("MaskDigits != Masked for a PAN of %d digits (Masked %q)", len(pan), want)
		}
	}
}

// TestMaskedBounds checks the PCI DSS 3.4.1 limits for every length: at most
// BIN (6, or 8 for >= 16 digits) plus last four shown, the rest hidden, and at
// least five digits hidden below 15 digits.
func TestMaskedBounds(t *testing.T) {
	for n := MinLength; n <= MaxLength; n++ {
		payload := strings.Repeat("7", n-1)
		cd, _ := LuhnCheckDigit(payload)
		p, err := Parse(payload+string(cd), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, eight := range []bool{false, true} {
			m := p.MaskedWith(MaskOptions{EightDigitBIN: eight})
			bin := 6
			if eight && n >= 16 {
				bin = 8
			}
			shown := strings.Count(m, "7") + strings.Count(m, string(cd))
			if cd == '7' {
				shown = strings.Count(m, "7")
			}
			hidden := strings.Count(m, "*")
			if len(m) != n || shown+hidden != n {
				t.Fatalf("n=%d eight=%v: mask %q malformed", n, eight, m)
			}
			if shown > bin+4 {
				t.Errorf("n=%d eight=%v: %d digits shown, limit %d", n, eight, shown, bin+4)
			}
			if n < 15 && hidden < 5 {
				t.Errorf("n=%d: only %d digits hidden", n, hidden)
			}
			if m[n-4:] != p.Reveal()[n-4:] {
				t.Errorf("n=%d: last four not shown", n)
			}
			if lead := MaskedLeading(n, MaskOptions{EightDigitBIN: eight}); m[:lead] != p.Reveal()[:lead] || strings.Contains(m[:lead], "*") || m[lead] != '*' {
				t.Errorf("n=%d eight=%v: leading %d not shown as documented in %q", n, eight, lead, m)
			}
		}
	}
}

func TestPANLikeRuns(t *testing.T) {
	for _, tt := range []struct {
		in   string
		has  bool
		want string
	}{
		{"5500000000000004 and 37828224631000", true, "550000******0004 and 37828*****1000"},
		{"6011 0009 9013 9424", true, "601100******9424"},
		{"dek-20261125-0001", true, "dek-202*****0001"},
		{"seq 12345678901 is short", false, "seq 12345678901 is short"},
		{"411111******1111", false, "411111******1111"},
		{"pan-encryption", false, "pan-encryption"},
	} {
		if got := HasPANLikeRun(tt.in); got != tt.has {
			t.Errorf("HasPANLikeRun(len %d) = %v", len(tt.in), got)
		}
		if got := MaskPANLikeRuns(tt.in); got != tt.want {
			t.Errorf("MaskPANLikeRuns = %q, want %q", safeText(got), tt.want)
		}
	}
}

func TestHasPANLikeRun(t *testing.T) {
	for s, want := range map[string]bool{
		"":                      false,
		"411111******1111":      false,
		"41111111111":           false, // 11 digits
		"411111111111":          true,
		"4111 1111 1111 1111":   true,
		"4111-1111-1111-1111":   true,
		"411111  111111":        false, // double space breaks the run
		"411111 -111111":        false,
		"4111  1111 1111 1111":  true, // the last 12 digits are a run
		"tok=4111111111111111;": true,
		"2026-01-02 03:04:05":   false,
	} {
		if got := HasPANLikeRun(s); got != want {
			t.Errorf("HasPANLikeRun(%q) = %v, want %v", safeText(s), got, want)
		}
	}
}

// safeText is s for a failure message, or a placeholder when s holds a
// PAN-like run: a test message never shows digits in clear.
func safeText(s string) string {
	if HasPANLikeRun(s) {
		return fmt.Sprintf("[%d characters holding a PAN-like run]", len(s))
	}
	return s
}
