package scheme

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/panvault/panvault/vault/card"
)

// pansPerCase is how many PANs each (shape, length, brand) case tokenizes.
const pansPerCase = 3

// TestValidateMatchesDomainModel checks that Validate refuses exactly the
// (shape, length) combinations the domain rule says, one length at a time and
// with all lengths at once (then the error must name exactly the failing ones).
func TestValidateMatchesDomainModel(t *testing.T) {
	lengthRE := regexp.MustCompile(`length (\d+):`)
	for _, s := range allShapes() {
		var wantBad []string
		for n := card.MinLength; n <= card.MaxLength; n++ {
			err := s.def(n).Validate()
			want := s.expectRefused(n)
			if want {
				wantBad = append(wantBad, strconv.Itoa(n))
			}
			if (err != nil) != want {
				t.Errorf("%v length %d: Validate = %v, model says refused=%v", s, n, err, want)
				continue
			}
			if err == nil {
				continue
			}
			sentinel := ErrNoFreeDigits
			if s.mode == ModeFF1 {
				sentinel = ErrFF1Domain
			}
			if !errors.Is(err, sentinel) {
				t.Errorf("%v length %d: error %v does not wrap %v", s, n, err, sentinel)
			}
		}
		err := s.def().Validate() // all lengths
		var gotBad []string
		if err != nil {
			for _, m := range lengthRE.FindAllStringSubmatch(err.Error(), -1) {
				gotBad = append(gotBad, m[1])
			}
		}
		if !slices.Equal(gotBad, wantBad) {
			t.Errorf("%v all lengths: error names lengths %v, want %v", s, gotBad, wantBad)
		}
	}
}

// TestTokenProperties runs every accepted shape x length 12-19 x brand:
// token length equals PAN length, kept digits kept, the Luhn rule holds, the
// token passes CheckToken, FF1 is deterministic and round-trips, and the token
// differs from the PAN (vaulted: always; FF1: guaranteed under luhn fail, and
// a fixed point under pass/any would surface as ErrFixedPoint, failing the test).
func TestTokenProperties(t *testing.T) {
	f := newAESFF1(t, testKey)
	rng := rand.New(rand.NewPCG(1, 2))
	random := rand.NewChaCha8([32]byte{3})
	cases := 0
	for _, s := range allShapes() {
		for n := card.MinLength; n <= card.MaxLength; n++ {
			if s.expectRefused(n) {
				continue
			}
			sch, err := New(s.def(n))
			if err != nil {
				t.Fatalf("%v length %d: %v", s, n, err)
			}
			var tk *FF1Tokenizer
			if s.mode == ModeFF1 {
				if tk, err = NewFF1Tokenizer(sch, 1, f); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range allBrands() {
				for range pansPerCase {
					p := genPAN(t, rng, b, n, true)
					cases++
					if s.mode == ModeVaulted {
						tok, err := sch.NewRandomToken(p, random)
						if err != nil {
							t.Fatalf("%v pan %v: %v", s, p, err)
						}
						checkTokenShape(t, s, p, tok)
						if p.EqualDigits([]byte(tok)) {
							t.Fatalf("%v pan %v: vaulted token equals the PAN", s, p)
						}
						if err := sch.CheckToken(tok, ""); err != nil {
							t.Fatalf("%v pan %v: CheckToken: %v", s, p, err)
						}
						continue
					}
					tok, err := tk.Tokenize(p)
					if err != nil {
						t.Fatalf("%v pan %v: Tokenize: %v", s, p, err)
					}
					checkTokenShape(t, s, p, tok)
					if p.EqualDigits([]byte(tok)) {
						t.Fatalf("%v pan %v: FF1 token equals the PAN", s, p)
					}
					if again, _ := tk.Tokenize(p); again != tok {
						t.Fatalf("%v pan %v: FF1 not deterministic", s, p)
					}
					back, err := tk.Detokenize(tok)
					if err != nil {
						t.Fatalf("%v pan %v: Detokenize: %v", s, p, err)
					}
					if !back.Equal(p) || back.Brand() != b {
						t.Fatalf("%v pan %v: round trip gave %v", s, p, back)
					}
				}
			}
		}
	}
	if cases < 5000 {
		t.Fatalf("only %d cases ran", cases)
	}
}

// TestNonLuhnUnionPayProperties covers UnionPay PANs that fail the Luhn check
// under every shape that may carry them (vaulted, and FF1 with luhn any).
func TestNonLuhnUnionPayProperties(t *testing.T) {
	f := newAESFF1(t, testKey)
	rng := rand.New(rand.NewPCG(5, 6))
	random := rand.NewChaCha8([32]byte{7})
	for _, s := range allShapes() {
		for n := card.MinLength; n <= card.MaxLength; n++ {
			if s.expectRefused(n) {
				continue
			}
			d := s.def(n)
			d.AllowNonLuhnUnionPay = true
			sch, err := New(d)
			if s.mode == ModeFF1 && s.luhn != LuhnAny {
				if err == nil {
					t.Fatalf("%v: FF1 with luhn %v accepted allow_non_luhn_unionpay", s, s.luhn)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%v length %d: %v", s, n, err)
			}
			for range pansPerCase {
				p := genPAN(t, rng, card.BrandUnionPay, n, false)
				if s.mode == ModeVaulted {
					tok, err := sch.NewRandomToken(p, random)
					if err != nil {
						t.Fatalf("%v pan %v: %v", s, p, err)
					}
					checkTokenShape(t, s, p, tok)
					if p.EqualDigits([]byte(tok)) {
						t.Fatalf("%v pan %v: token equals PAN", s, p)
					}
					continue
				}
				tk, err := NewFF1Tokenizer(sch, 1, f)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := tk.Tokenize(p)
				if err != nil {
					t.Fatalf("%v pan %v: %v", s, p, err)
				}
				checkTokenShape(t, s, p, tok)
				back, err := tk.Detokenize(tok)
				if err != nil || !back.Equal(p) || back.LuhnValid() {
					t.Fatalf("%v pan %v: round trip gave %v, %v", s, p, back, err)
				}
			}
		}
	}
}

// TestBatchMatchesSingle checks, for every accepted FF1 shape over all its
// lengths at once, that TokenizeBatch equals Tokenize item by item (in input
// order, lengths interleaved) and that DetokenizeBatch inverts it.
func TestBatchMatchesSingle(t *testing.T) {
	f := newAESFF1(t, testKey)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range allShapes() {
		if s.mode != ModeFF1 {
			continue
		}
		var lengths []int
		for n := card.MinLength; n <= card.MaxLength; n++ {
			if !s.expectRefused(n) {
				lengths = append(lengths, n)
			}
		}
		sch, err := New(s.def(lengths...))
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		tk, err := NewFF1Tokenizer(sch, 7, f)
		if err != nil {
			t.Fatal(err)
		}
		var pans []card.PAN
		for i := range 40 {
			pans = append(pans, genPAN(t, rng, allBrands()[i%10], lengths[i%len(lengths)], true))
		}
		res, err := tk.TokenizeBatch(pans)
		if err != nil {
			t.Fatal(err)
		}
		toks := make([]string, len(pans))
		for i, p := range pans {
			one, err := tk.Tokenize(p)
			if err != nil || res[i].Err != nil || res[i].Token != one {
				t.Fatalf("%v item %d (%v): batch %v/%v, single %v", s, i, p, res[i].Err, res[i].Token == one, err)
			}
			toks[i] = one
		}
		back, err := tk.DetokenizeBatch(toks)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pans {
			if back[i].Err != nil || !back[i].PAN.Equal(p) {
				t.Fatalf("%v item %d (%v): batch detokenize gave %v, %v", s, i, p, back[i].PAN, back[i].Err)
			}
		}
	}
}
