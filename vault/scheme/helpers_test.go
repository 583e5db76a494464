package scheme

import (
	"math/rand/v2"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
	"github.com/panvault/panvault/vault/card"
)

// testKey is a software AES-256 key for tests only.
var testKey = []byte("panvault-scheme-test-key-32byte!")

// newAESFF1 returns FF1 (radix 10) over crypto/aes through fpetest's adapter.
func newAESFF1(t testing.TB, key []byte) *fpe.FF1 {
	t.Helper()
	c, err := fpetest.NewAESCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fpe.NewFF1(c, 10)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// zeroCipher returns all-zero blocks: FF1's round values are then zero and
// FF1 is the identity, which forces the fixed-point paths. Tests only.
type zeroCipher struct{}

func (zeroCipher) EncryptBlocks(dst, src []byte) error { clear(dst); return nil }

// brandPrefixes gives IIN prefixes per brand for generated test PANs.
var brandPrefixes = map[card.Brand][]string{
	card.BrandUnknown:    {"1", "7", "9", "2205"},
	card.BrandVisa:       {"4"},
	card.BrandMastercard: {"51", "55", "2221", "2720"},
	card.BrandAmex:       {"34", "37"},
	card.BrandDiscover:   {"6011", "644", "649", "65"},
	card.BrandJCB:        {"3528", "3589"},
	card.BrandDiners:     {"300", "305", "36", "38"},
	card.BrandUnionPay:   {"62"},
	card.BrandMaestro:    {"50", "56", "6304", "67"},
	card.BrandMir:        {"2200", "2204"},
}

// allBrands lists brandPrefixes' keys in a fixed order.
func allBrands() []card.Brand { return append([]card.Brand{card.BrandUnknown}, card.Brands()...) }

// genPAN returns a Luhn-valid PAN of n digits of brand b (luhnOK) or, with
// luhnOK false, one that fails the Luhn check.
func genPAN(t testing.TB, rng *rand.Rand, b card.Brand, n int, luhnOK bool) card.PAN {
	t.Helper()
	prefixes := brandPrefixes[b]
	buf := []byte(prefixes[rng.IntN(len(prefixes))])
	for len(buf) < n-1 {
		buf = append(buf, byte('0'+rng.IntN(10)))
	}
	cd, err := card.LuhnCheckDigit(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !luhnOK {
		cd = '0' + (cd-'0'+1+byte(rng.IntN(9)))%10
	}
	buf = append(buf, cd)
	p, err := card.ParseBytes(buf, card.ParseOptions{AllowNonLuhnUnionPay: !luhnOK})
	if err != nil {
		t.Fatalf("generated PAN %s: %v", maskDigits(string(buf)), err)
	}
	if p.Brand() != b {
		t.Fatalf("generated PAN %s has brand %v, want %v", p, p.Brand(), b)
	}
	return p
}

// maskDigits masks a digit string (PAN or token) for failure messages.
func maskDigits(s string) string { return card.MaskDigits(s) }

// shape is one combination of the scheme parameters that shape tokens.
type shape struct {
	mode  Mode
	lead  int
	trail int
	luhn  LuhnRule
}

func (s shape) String() string {
	return s.mode.String() + "/lead" + string(rune('0'+s.lead)) + "/trail" + string(rune('0'+s.trail)) + "/luhn-" + s.luhn.String()
}

func (s shape) def(lengths ...int) Definition {
	return Definition{
		Name: "test-scheme", Mode: s.mode, KeepLeading: s.lead, KeepTrailing: s.trail,
		Luhn: s.luhn, KeyName: "test-key", Lengths: lengths,
	}
}

// allShapes is every mode x keep_leading x keep_trailing x luhn rule.
func allShapes() []shape {
	var out []shape
	for _, m := range []Mode{ModeVaulted, ModeFF1} {
		for _, l := range []int{0, 6, 8} {
			for _, tr := range []int{0, 4} {
				for _, r := range []LuhnRule{LuhnFail, LuhnPass, LuhnAny} {
					out = append(out, shape{m, l, tr, r})
				}
			}
		}
	}
	return out
}

// expectRefused is the model of Validate's length rules: FF1 needs at least
// six free digits (10^6 values); vaulted needs a token that can differ.
func (s shape) expectRefused(n int) bool {
	kept := s.lead + s.trail
	if s.mode == ModeFF1 {
		free := n - kept
		if s.luhn != LuhnAny {
			free--
		}
		return free < 6
	}
	return n-kept < 1 || (n-kept == 1 && s.luhn == LuhnPass)
}

// checkTokenShape asserts the format properties shared by both modes.
func checkTokenShape(t *testing.T, s shape, p card.PAN, tok string) {
	t.Helper()
	n := p.Len()
	if len(tok) != n {
		t.Fatalf("%v pan %v: token length %d, want %d", s, p, len(tok), n)
	}
	for i := 0; i < n; i++ {
		if tok[i] < '0' || tok[i] > '9' {
			t.Fatalf("%v pan %v: token byte %d is not a digit", s, p, i)
		}
		kept := i < s.lead || i >= n-s.trail
		if kept && tok[i] != p.Digit(i) {
			t.Fatalf("%v pan %v: kept digit %d changed", s, p, i)
		}
	}
	switch s.luhn {
	case LuhnFail:
		if card.Luhn(tok) {
			t.Fatalf("%v pan %v: token passes Luhn under rule fail", s, p)
		}
	case LuhnPass:
		if !card.Luhn(tok) {
			t.Fatalf("%v pan %v: token fails Luhn under rule pass", s, p)
		}
	}
}
