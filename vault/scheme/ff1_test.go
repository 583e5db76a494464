package scheme

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
	"github.com/panvault/panvault/vault/card"
)

func mustFF1Tokenizer(t testing.TB, d Definition, keyVersion uint32, f *fpe.FF1) *FF1Tokenizer {
	t.Helper()
	tk, err := NewFF1Tokenizer(mustScheme(t, d), keyVersion, f)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// ff1Def is an FF1 definition allowing 16 and 19 digits, where every shape
// has at least 10^6 free values... except 6+4 under pass/fail at 16, so
// lengths default to {17, 19} for those. Pass lengths to override.
func ff1Def(name string, lead, trail int, r LuhnRule, lengths ...int) Definition {
	if lengths == nil {
		lengths = []int{17, 19}
	}
	return Definition{Name: name, Mode: ModeFF1, KeepLeading: lead, KeepTrailing: trail, Luhn: r, KeyName: "fpe", Lengths: lengths}
}

// TestFF1FormatFrozen pins tokens made with a fixed software key. FF1 tokens
// are not stored anywhere: a change to the tweak layout, the check-digit rule
// or the digit layout would make every issued token undecryptable. If this
// test fails, the token format changed; that needs a new tweak version, not a
// new expected value.
func TestFF1FormatFrozen(t *testing.T) {
	f := newAESFF1(t, testKey)
	tests := []struct {
		def  Definition
		kv   uint32
		pan  string
		want string
	}{
		{ff1Def("frozen", 6, 4, LuhnFail), 1, "4111111111111111110", "4111118384919471110"},
		{ff1Def("frozen", 6, 4, LuhnPass), 1, "4111111111111111110", "4111114653661051110"},
		{ff1Def("frozen", 6, 4, LuhnAny, 16), 1, "4111111111111111", "4111113338451111"},
		{ff1Def("frozen", 0, 0, LuhnFail, 16), 1, "5555555555554444", "5194424473529628"},
		{ff1Def("frozen", 8, 0, LuhnPass), 3, "6205500000000000004", "6205500084471693216"},
	}
	for _, tt := range tests {
		tk := mustFF1Tokenizer(t, tt.def, tt.kv, f)
		got, err := tk.Tokenize(mustPAN(t, tt.pan))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%d+%d %v kv%d: token changed: got %s want %s", tt.def.KeepLeading, tt.def.KeepTrailing, tt.def.Luhn, tt.kv, got, tt.want)
		}
	}
}

// TestFF1TweakBinding checks that the scheme name, the key version and the
// kept digits all change the token, and that a token detokenized under the
// wrong scheme or version does not give back the PAN.
func TestFF1TweakBinding(t *testing.T) {
	f := newAESFF1(t, testKey)
	p := mustPAN(t, "4111111111111111110")
	base := mustFF1Tokenizer(t, ff1Def("alpha", 6, 4, LuhnAny), 1, f)
	tok, err := base.Tokenize(p)
	if err != nil {
		t.Fatal(err)
	}
	others := map[string]*FF1Tokenizer{
		"other name":        mustFF1Tokenizer(t, ff1Def("beta", 6, 4, LuhnAny), 1, f),
		"other key version": mustFF1Tokenizer(t, ff1Def("alpha", 6, 4, LuhnAny), 2, f),
		"other key":         mustFF1Tokenizer(t, ff1Def("alpha", 6, 4, LuhnAny), 1, newAESFF1(t, []byte("another-test-key-of-32-bytes!!!!"))),
	}
	for name, o := range others {
		tok2, err := o.Tokenize(p)
		if err != nil {
			t.Fatal(err)
		}
		if tok2 == tok {
			t.Errorf("%s: same token", name)
		}
		back, err := o.Detokenize(tok)
		if err == nil && back.Equal(p) {
			t.Errorf("%s: detokenized another scheme's token to its PAN", name)
		}
	}
	// Kept digits are in the tweak: two PANs with the same middle digits but
	// different BINs get different middles.
	q := mustPAN(t, "5500001111111111116")
	tq, err := base.Tokenize(q)
	if err != nil {
		t.Fatal(err)
	}
	if tq[6:15] == tok[6:15] {
		t.Error("middle digits do not depend on the kept digits")
	}
	// Changing a kept digit of a token changes what it decrypts to.
	forged := "5" + tok[1:]
	if back, err := base.Detokenize(forged); err == nil && back.Reveal()[6:15] == p.Reveal()[6:15] {
		t.Error("forged kept digit decrypts to the original middle digits")
	}
}

// TestFF1FixedPoint forces FF1 to be the identity (an all-zero block cipher):
// under luhn pass and any every token would equal its PAN and Tokenize must
// refuse; under luhn fail tokens still differ and round-trip.
func TestFF1FixedPoint(t *testing.T) {
	idFF1, err := fpe.NewFF1(zeroCipher{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPAN(t, "4111111111111111")
	for _, r := range []LuhnRule{LuhnPass, LuhnAny} {
		tk := mustFF1Tokenizer(t, ff1Def("fp", 0, 4, r, 16), 1, idFF1)
		if _, err := tk.Tokenize(p); !errors.Is(err, ErrFixedPoint) {
			t.Errorf("luhn %v: Tokenize err = %v, want ErrFixedPoint", r, err)
		}
		res, err := tk.TokenizeBatch([]card.PAN{p})
		if err != nil || !errors.Is(res[0].Err, ErrFixedPoint) || res[0].Token != "" {
			t.Errorf("luhn %v: batch item err = %v", r, res[0].Err)
		}
		// The PAN itself, offered as a token, is not one.
		if _, err := tk.Detokenize(p.Reveal()); !errors.Is(err, ErrNotToken) {
			t.Errorf("luhn %v: PAN as token: %v", r, err)
		}
	}
	tk := mustFF1Tokenizer(t, ff1Def("fp", 0, 4, LuhnFail, 16), 1, idFF1)
	tok, err := tk.Tokenize(p)
	if err != nil || tok == p.Reveal() {
		t.Fatalf("luhn fail: %v (equal=%v)", err, tok == p.Reveal())
	}
	if back, err := tk.Detokenize(tok); err != nil || !back.Equal(p) {
		t.Errorf("luhn fail round trip: %v", err)
	}
}

// TestFF1NonCanonicalFailDigit: under luhn fail, only the check digit
// Tokenize chooses is accepted; the eight other failing digits are not tokens.
func TestFF1NonCanonicalFailDigit(t *testing.T) {
	tk := mustFF1Tokenizer(t, ff1Def("nc", 6, 4, LuhnFail), 1, newAESFF1(t, testKey))
	p := mustPAN(t, "4111111111111111110")
	tok, err := tk.Tokenize(p)
	if err != nil {
		t.Fatal(err)
	}
	const check = 19 - 4 - 1
	accepted := 0
	for d := byte('0'); d <= '9'; d++ {
		b := []byte(tok)
		b[check] = d
		back, err := tk.Detokenize(string(b))
		switch {
		case err == nil:
			accepted++
			if string(b) != tok || !back.Equal(p) {
				t.Errorf("digit %c accepted", d)
			}
		case card.Luhn(b):
			if !errors.Is(err, ErrTokenFormat) {
				t.Errorf("passing digit %c: %v", d, err)
			}
		case !errors.Is(err, ErrNotToken):
			t.Errorf("digit %c: %v", d, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d check digits accepted, want 1", accepted)
	}
	res, err := tk.DetokenizeBatch([]string{tok, tok[:check] + string('0'+(tok[check]-'0'+1)%10) + tok[check+1:]})
	if err != nil || res[0].Err != nil || !res[0].PAN.Equal(p) || res[1].Err == nil {
		t.Errorf("batch: %v, %v, %v", err, res[0].Err, res[1].Err)
	}
}

// TestFF1DetokenizeGarbage: under luhn any every digit string of an allowed
// length has the right shape; most decrypt to numbers that fail the Luhn
// check, which are not tokens, and any that succeed must round-trip.
func TestFF1DetokenizeGarbage(t *testing.T) {
	tk := mustFF1Tokenizer(t, ff1Def("g", 6, 4, LuhnAny, 16), 1, newAESFF1(t, testKey))
	rng := rand.New(rand.NewPCG(11, 12))
	notToken, ok := 0, 0
	for range 400 {
		b := []byte("411111")
		for len(b) < 16 {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		p, err := tk.Detokenize(string(b))
		switch {
		case errors.Is(err, ErrNotToken):
			notToken++
			if strings.Contains(err.Error(), string(b[6:12])) {
				t.Fatal("error echoes digits")
			}
		case err == nil:
			ok++
			tok, err := tk.Tokenize(p)
			if err != nil || tok != string(b) {
				t.Fatalf("decrypted PAN does not tokenize back: %v", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if notToken < 300 || ok < 10 { // about 90% / 10%
		t.Errorf("not-token %d, ok %d", notToken, ok)
	}
	for _, bad := range []string{"", "4111x11111111111", "411111111111111", "41111111111111111101"} {
		var re *card.RuleError
		if _, err := tk.Detokenize(bad); !errors.As(err, &re) || !errors.Is(err, ErrTokenFormat) {
			t.Errorf("malformed token: %v", err)
		}
	}
}

// TestFF1BatchOneCallSetPerLength counts block cipher calls: a batch of many
// PANs of one length costs what one PAN costs, and each extra length adds one
// more FF1 batch.
func TestFF1BatchOneCallSetPerLength(t *testing.T) {
	aes, err := fpetest.NewAESCipher(testKey)
	if err != nil {
		t.Fatal(err)
	}
	cc := &fpetest.CountingCipher{Inner: aes}
	f, err := fpe.NewFF1(cc, 10)
	if err != nil {
		t.Fatal(err)
	}
	tk := mustFF1Tokenizer(t, ff1Def("calls", 6, 4, LuhnFail), 1, f)
	rng := rand.New(rand.NewPCG(13, 14))
	pans19 := make([]card.PAN, 100)
	for i := range pans19 {
		pans19[i] = genPAN(t, rng, card.BrandVisa, 19, true)
	}
	// Warm the per-FF1 cache so that counts are stable.
	if _, err := tk.TokenizeBatch(pans19[:1]); err != nil {
		t.Fatal(err)
	}
	cc.Reset()
	if _, err := tk.Tokenize(pans19[0]); err != nil {
		t.Fatal(err)
	}
	one := cc.Calls()
	cc.Reset()
	if _, err := tk.TokenizeBatch(pans19); err != nil {
		t.Fatal(err)
	}
	if got := cc.Calls(); got != one {
		t.Errorf("batch of 100 same-length PANs: %d calls, one PAN: %d", got, one)
	}
	mixed := append([]card.PAN{genPAN(t, rng, card.BrandMastercard, 17, true)}, pans19...)
	if _, err := tk.TokenizeBatch(mixed[:1]); err != nil { // warm length 17
		t.Fatal(err)
	}
	cc.Reset()
	if _, err := tk.TokenizeBatch(mixed); err != nil {
		t.Fatal(err)
	}
	if got := cc.Calls(); got != 2*one {
		t.Errorf("batch over two lengths: %d calls, want %d", got, 2*one)
	}
}

// TestFF1CipherFailure injects a block cipher failure: every entry point
// returns an error wrapping fpe.ErrCipher and no token.
func TestFF1CipherFailure(t *testing.T) {
	aes, err := fpetest.NewAESCipher(testKey)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fpe.NewFF1(&fpetest.CountingCipher{Inner: aes, FailAt: 1}, 10)
	if err != nil {
		t.Fatal(err)
	}
	tk := mustFF1Tokenizer(t, ff1Def("cf", 6, 4, LuhnAny, 16), 1, f)
	p := mustPAN(t, "4111111111111111")
	if tok, err := tk.Tokenize(p); !errors.Is(err, fpe.ErrCipher) || tok != "" {
		t.Errorf("Tokenize: %v", err)
	}
	if _, err := tk.Detokenize("4111110000001111"); !errors.Is(err, fpe.ErrCipher) {
		t.Errorf("Detokenize: %v", err)
	}
	if res, err := tk.TokenizeBatch([]card.PAN{p}); !errors.Is(err, fpe.ErrCipher) || res != nil {
		t.Errorf("TokenizeBatch: %v", err)
	}
	if res, err := tk.DetokenizeBatch([]string{"4111110000001111"}); !errors.Is(err, fpe.ErrCipher) || res != nil {
		t.Errorf("DetokenizeBatch: %v", err)
	}
}

func TestFF1BatchItemErrors(t *testing.T) {
	tk := mustFF1Tokenizer(t, Definition{Name: "b", Mode: ModeFF1, Luhn: LuhnPass, KeyName: "k", Lengths: []int{16}}, 1, newAESFF1(t, testKey))
	pans := []card.PAN{mustPAN(t, "4111111111111111"), mustPAN(t, "378282246310005"), {}, mustPAN(t, "6200000000000006"), mustPAN(t, "5555555555554444")}
	res, err := tk.TokenizeBatch(pans)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[4].Err != nil || !errors.Is(res[1].Err, ErrLengthNotAllowed) ||
		!errors.Is(res[2].Err, card.ErrEmpty) || !errors.Is(res[3].Err, card.ErrLuhn) {
		t.Fatalf("item errors: %v %v %v %v %v", res[0].Err, res[1].Err, res[2].Err, res[3].Err, res[4].Err)
	}
	back, err := tk.DetokenizeBatch([]string{res[4].Token, "12", res[0].Token, ""})
	if err != nil {
		t.Fatal(err)
	}
	if !back[0].PAN.Equal(pans[4]) || !back[2].PAN.Equal(pans[0]) || back[1].Err == nil || back[3].Err == nil {
		t.Errorf("detokenize batch items: %v %v %v %v", back[0].Err, back[1].Err, back[2].Err, back[3].Err)
	}
	if res, err := tk.TokenizeBatch(nil); err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v %v", res, err)
	}
}

func TestNewFF1TokenizerRefusals(t *testing.T) {
	f := newAESFF1(t, testKey)
	ff := mustScheme(t, ff1Def("ok", 0, 0, LuhnAny))
	if _, err := NewFF1Tokenizer(nil, 1, f); !errors.Is(err, ErrConfig) {
		t.Errorf("nil scheme: %v", err)
	}
	if _, err := NewFF1Tokenizer(ff, 1, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil ff1: %v", err)
	}
	v := mustScheme(t, Definition{Name: "v", Mode: ModeVaulted, KeyName: "k"})
	if _, err := NewFF1Tokenizer(v, 1, f); !errors.Is(err, ErrWrongMode) {
		t.Errorf("vaulted scheme: %v", err)
	}
	aes, _ := fpetest.NewAESCipher(testKey)
	f36, err := fpe.NewFF1(aes, 36)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewFF1Tokenizer(ff, 1, f36); !errors.Is(err, ErrConfig) {
		t.Errorf("radix 36: %v", err)
	}
	fShort, err := fpe.NewFF1WithMaxTweak(aes, 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewFF1Tokenizer(ff, 1, fShort); !errors.Is(err, ErrConfig) {
		t.Errorf("short tweak limit: %v", err)
	}
	tk, err := NewFF1Tokenizer(ff, 42, f)
	if err != nil || tk.KeyVersion() != 42 || tk.Scheme() != ff {
		t.Errorf("accessors: %v", err)
	}
}

// TestTweakLayout checks the documented tweak encoding directly.
func TestTweakLayout(t *testing.T) {
	d := ff1Def("tw", 6, 4, LuhnFail, 17)
	s := mustScheme(t, Definition{Name: "tw", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Lengths: []int{16}})
	prefix := tweakPrefix(s.def, 0x01020304)
	l := s.layoutFor(16)
	tw := appendTweak(nil, &prefix, l, []byte("4111119999991231"))
	id := schemeID(s.def)
	want := append(append([]byte{}, id[:]...), 1, 2, 3, 4, 16, 0x41, 0x11, 0x11, 0x12, 0x31)
	if string(tw) != string(want) || len(tw) != tweakLen(l) {
		t.Errorf("tweak %x, want %x", tw, want)
	}
	// 8+4 kept at 19 digits gives the longest tweak.
	s2 := mustScheme(t, Definition{Name: "tw", Mode: ModeVaulted, KeepLeading: 8, KeepTrailing: 4, KeyName: "k", Lengths: []int{19}})
	if tl := tweakLen(s2.layoutFor(19)); tl != maxTweakLength {
		t.Errorf("max tweak length %d, want %d", tl, maxTweakLength)
	}
	// Without kept digits the tweak is the fixed part only.
	s3 := mustScheme(t, Definition{Name: "tw", Mode: ModeVaulted, KeyName: "k", Lengths: []int{13}})
	if tw := appendTweak(nil, &prefix, s3.layoutFor(13), []byte("4111111111111")); len(tw) != tweakFixedLen || tw[12] != 13 {
		t.Errorf("tweak without kept digits: %x", tw)
	}
	// Schemes differing only in name or shape have different ids.
	if schemeID(d) == schemeID(ff1Def("tx", 6, 4, LuhnFail)) || schemeID(d) == schemeID(ff1Def("tw", 6, 4, LuhnPass)) {
		t.Error("scheme id ignores name or luhn rule")
	}
}

// TestFF1FailDigitSpread: under luhn fail the check digit is spread over the
// nine failing values (offset 1..9 from the passing digit), not always +1.
func TestFF1FailDigitSpread(t *testing.T) {
	tk := mustFF1Tokenizer(t, ff1Def("spread", 6, 4, LuhnFail), 1, newAESFF1(t, testKey))
	rng := rand.New(rand.NewPCG(15, 16))
	var offs [10]int
	for range 1800 {
		p := genPAN(t, rng, card.BrandVisa, 19, true)
		tok, err := tk.Tokenize(p)
		if err != nil {
			t.Fatal(err)
		}
		b := []byte(tok)
		valid, _ := card.LuhnDigitAt(b, 14)
		offs[(10+int(tok[14])-int(valid))%10]++
	}
	if offs[0] != 0 {
		t.Fatalf("%d tokens pass Luhn", offs[0])
	}
	if x := chiSquare(offs[1:]); x > 43 {
		t.Errorf("offsets %v not spread (chi-square %.1f)", offs[1:], x)
	}
}
