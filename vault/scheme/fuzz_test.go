package scheme

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/panvault/panvault/vault/card"
)

// fuzzScheme is one accepted shape over every length it allows.
type fuzzScheme struct {
	shape shape
	s     *Scheme
	tk    *FF1Tokenizer // FF1 shapes only
}

// fuzzSchemes builds every shape (FF1 and vaulted, plain and with non-Luhn
// UnionPay where allowed) with all the lengths Validate accepts for it.
func fuzzSchemes(t testing.TB) []fuzzScheme {
	f := newAESFF1(t, testKey)
	var out []fuzzScheme
	for _, sh := range allShapes() {
		var lengths []int
		for n := card.MinLength; n <= card.MaxLength; n++ {
			if !sh.expectRefused(n) {
				lengths = append(lengths, n)
			}
		}
		if len(lengths) == 0 {
			continue
		}
		for _, up := range []bool{false, true} {
			d := sh.def(lengths...)
			d.AllowNonLuhnUnionPay = up
			if up && sh.mode == ModeFF1 && sh.luhn != LuhnAny {
				continue
			}
			fs := fuzzScheme{shape: sh, s: mustScheme(t, d)}
			if sh.mode == ModeFF1 {
				tk, err := NewFF1Tokenizer(fs.s, 1, f)
				if err != nil {
					t.Fatal(err)
				}
				fs.tk = tk
			}
			out = append(out, fs)
		}
	}
	return out
}

func seedPANs() []string {
	return []string{"4111111111111111", "4012888888881881", "4222222222222", "5555555555554444",
		"2223003122003222", "378282246310005", "6011111111111117", "3530111333300000",
		"30569309025904", "6200000000000005", "6200000000000006", "6205500000000000004",
		"6759649826438453", "2201382000000013", "4000000000000000006", "123456789012"}
}

// FuzzSchemeCheckToken compares CheckToken with a model of the token shape
// rules and checks that errors never echo the input.
func FuzzSchemeCheckToken(f *testing.F) {
	schemes := fuzzSchemes(f)
	for i, s := range seedPANs() {
		f.Add(s, uint8(i))
	}
	f.Add("４１１１１１１１１１１１１１１１", uint8(0))
	f.Add("", uint8(1))
	f.Fuzz(func(t *testing.T, tok string, which uint8) {
		fs := schemes[int(which)%len(schemes)]
		err := fs.s.CheckToken(tok, "")
		allDigits := tok != "" && strings.Trim(tok, "0123456789") == ""
		want := allDigits && fs.s.AllowsLength(len(tok))
		if want && fs.shape.luhn == LuhnFail && card.Luhn(tok) || want && fs.shape.luhn == LuhnPass && !card.Luhn(tok) {
			want = false
		}
		if (err == nil) != want {
			t.Fatalf("%v: CheckToken(%s) = %v, model says ok=%v", fs.shape, maskDigits(tok), err, want)
		}
		if err != nil {
			var re *card.RuleError
			if !errors.As(err, &re) || !errors.Is(err, ErrTokenFormat) {
				t.Fatalf("error %v is not a token-format RuleError", err)
			}
			if len(tok) >= 5 && strings.Contains(err.Error(), tok) {
				t.Fatal("error echoes the token")
			}
		}
	})
}

// FuzzSchemeFF1RoundTrip tokenizes any PAN the scheme accepts and checks the
// token's format and that detokenizing gives the PAN back.
func FuzzSchemeFF1RoundTrip(f *testing.F) {
	var ff1 []fuzzScheme
	for _, fs := range fuzzSchemes(f) {
		if fs.tk != nil {
			ff1 = append(ff1, fs)
		}
	}
	for i, s := range seedPANs() {
		f.Add(s, uint8(i))
		f.Add(s, uint8(i+7))
	}
	f.Fuzz(func(t *testing.T, pan string, which uint8) {
		fs := ff1[int(which)%len(ff1)]
		p, err := fs.s.ParsePAN(pan, "")
		if err != nil {
			return
		}
		tok, err := fs.tk.Tokenize(p)
		if errors.Is(err, ErrFixedPoint) && fs.shape.luhn != LuhnFail {
			return // probability 10^-free; correct refusal
		}
		if err != nil {
			t.Fatalf("%v: Tokenize(%v): %v", fs.shape, p, err)
		}
		checkTokenShape(t, fs.shape, p, tok)
		if p.EqualDigits([]byte(tok)) {
			t.Fatalf("%v: token equals PAN %v", fs.shape, p)
		}
		back, err := fs.tk.Detokenize(tok)
		if err != nil || !back.Equal(p) {
			t.Fatalf("%v: round trip of %v gave %v, %v", fs.shape, p, back, err)
		}
	})
}

// FuzzSchemeDetokenize feeds arbitrary strings to Detokenize: no panic, only
// documented errors, and anything accepted tokenizes back to the same string.
func FuzzSchemeDetokenize(f *testing.F) {
	var ff1 []fuzzScheme
	for _, fs := range fuzzSchemes(f) {
		if fs.tk != nil {
			ff1 = append(ff1, fs)
		}
	}
	for i, s := range seedPANs() {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, tok string, which uint8) {
		fs := ff1[int(which)%len(ff1)]
		p, err := fs.tk.Detokenize(tok)
		if err != nil {
			if !errors.Is(err, ErrTokenFormat) && !errors.Is(err, ErrNotToken) {
				t.Fatalf("%v: unexpected error %v", fs.shape, err)
			}
			return
		}
		again, err := fs.tk.Tokenize(p)
		if err != nil || again != tok {
			t.Fatalf("%v: accepted token %s does not come back from its PAN: %v", fs.shape, maskDigits(tok), err)
		}
	})
}

// FuzzSchemeRandomToken draws vaulted tokens from fuzzer-chosen random bytes:
// whatever the bytes, a token has the scheme's format and differs from the
// PAN, or the call fails with ErrRandomness.
func FuzzSchemeRandomToken(f *testing.F) {
	var vaulted []fuzzScheme
	for _, fs := range fuzzSchemes(f) {
		if fs.tk == nil {
			vaulted = append(vaulted, fs)
		}
	}
	for i, s := range seedPANs() {
		f.Add(s, uint8(i), []byte{byte(i), 250, 255, 3, 9})
	}
	f.Fuzz(func(t *testing.T, pan string, which uint8, random []byte) {
		fs := vaulted[int(which)%len(vaulted)]
		p, err := fs.s.ParsePAN(pan, "")
		if err != nil {
			return
		}
		tok, err := fs.s.NewRandomToken(p, bytes.NewReader(bytes.Repeat(random, 200)))
		if err != nil {
			if !errors.Is(err, ErrRandomness) {
				t.Fatalf("%v: %v", fs.shape, err)
			}
			return
		}
		checkTokenShape(t, fs.shape, p, tok)
		if p.EqualDigits([]byte(tok)) {
			t.Fatalf("%v: token equals PAN %v", fs.shape, p)
		}
	})
}
