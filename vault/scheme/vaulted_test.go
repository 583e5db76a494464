package scheme

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/panvault/panvault/vault/card"
)

func mustScheme(t testing.TB, d Definition) *Scheme {
	t.Helper()
	s, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPAN(t testing.TB, s string) card.PAN {
	t.Helper()
	p, err := card.Parse(s, card.ParseOptions{AllowNonLuhnUnionPay: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// chiSquare returns the chi-square statistic of counts against a uniform
// distribution.
func chiSquare(counts []int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	exp := float64(total) / float64(len(counts))
	x := 0.0
	for _, c := range counts {
		d := float64(c) - exp
		x += d * d / exp
	}
	return x
}

// TestRandomTokenUniform draws many tokens from a seeded source and checks
// each free position's digits, and the luhn-fail check digit's offset from the
// passing digit, against uniform with a chi-square bound (p < 1e-6 for 9
// degrees of freedom is about 45; the seed is fixed, so this is reproducible).
func TestRandomTokenUniform(t *testing.T) {
	s := mustScheme(t, Definition{Name: "u", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Luhn: LuhnFail})
	p := mustPAN(t, "4111111111111111")
	r := rand.NewChaCha8([32]byte{42})
	const draws = 20000
	var pos [16][10]int
	var offs [10]int
	for range draws {
		tok, err := s.NewRandomToken(p, r)
		if err != nil {
			t.Fatal(err)
		}
		for i := 6; i < 11; i++ { // random positions; 11 is the check position
			pos[i][tok[i]-'0']++
		}
		b := []byte(tok)
		valid, _ := card.LuhnDigitAt(b, 11)
		offs[(10+int(tok[11])-int(valid))%10]++
	}
	for i := 6; i < 11; i++ {
		if x := chiSquare(pos[i][:]); x > 45 {
			t.Errorf("position %d: chi-square %.1f, digits %v", i, x, pos[i])
		}
	}
	if offs[0] != 0 {
		t.Fatalf("%d tokens used the passing check digit under rule fail", offs[0])
	}
	if x := chiSquare(offs[1:]); x > 43 { // 8 degrees of freedom
		t.Errorf("fail digit offsets not uniform: chi-square %.1f, %v", x, offs[1:])
	}
}

// TestRandomTokenRejectionSampling feeds bytes that must be discarded
// (250-255) and checks they never become digits: no modulo bias.
func TestRandomTokenRejectionSampling(t *testing.T) {
	s := mustScheme(t, Definition{Name: "r", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Luhn: LuhnAny})
	p := mustPAN(t, "4111111111111111")
	// 250..255 would map to 0..5 under a plain modulo.
	src := []byte{250, 251, 252, 253, 254, 255, 17, 255, 28, 39, 250, 49, 7}
	src = append(src, make([]byte, 64)...)
	tok, err := s.NewRandomToken(p, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok[6:12], "789970"; got != want {
		t.Errorf("free digits %s, want %s (discarded bytes must be skipped)", got, want)
	}
	// Under luhn fail, the offset draw uses 252-255 as the discard range.
	sf := mustScheme(t, Definition{Name: "r", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Luhn: LuhnFail})
	src = []byte{0, 0, 0, 0, 0, 252, 255, 13}
	src = append(src, make([]byte, 64)...)
	tok, err = sf.NewRandomToken(p, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(tok)
	valid, _ := card.LuhnDigitAt(b, 11)
	if off := (10 + int(tok[11]) - int(valid)) % 10; tok[6:11] != "00000" || off != 1+13%9 {
		t.Errorf("fail offset %d, want %d", off, 1+13%9)
	}
}

// constReader repeats one byte forever.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestRandomTokenNeverEqualsPAN(t *testing.T) {
	p := mustPAN(t, "4111111111111111")
	// A source that reproduces the PAN's free digits first: the token is redrawn.
	s := mustScheme(t, Definition{Name: "e", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k", Luhn: LuhnAny})
	src := append(bytes.Repeat([]byte{1}, 6), bytes.Repeat([]byte{2}, 64)...)
	tok, err := s.NewRandomToken(p, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "4111112222221111" {
		t.Errorf("token %s, want the second draw", maskDigits(tok))
	}
	// A source that only ever reproduces the PAN: bounded retries, then an error.
	_, err = s.NewRandomToken(p, constReader(1))
	if !errors.Is(err, ErrRandomness) {
		t.Fatalf("constant source: err = %v, want ErrRandomness", err)
	}
	// Luhn pass with two free digits: at most one in ten draws equals the PAN.
	sp := mustScheme(t, Definition{Name: "e", Mode: ModeVaulted, KeepLeading: 8, KeepTrailing: 4, KeyName: "k", Luhn: LuhnPass, Lengths: []int{14}})
	p14 := mustPAN(t, "36227206271667")
	r := rand.NewChaCha8([32]byte{9})
	seen := map[string]bool{}
	for range 500 {
		tok, err := sp.NewRandomToken(p14, r)
		if err != nil {
			t.Fatal(err)
		}
		if tok == p14.Reveal() || !card.Luhn(tok) {
			t.Fatal("token equals PAN or fails Luhn under pass")
		}
		seen[tok] = true
	}
	if len(seen) != 9 { // ten passing tokens, minus the PAN itself
		t.Errorf("saw %d distinct tokens, want all 9", len(seen))
	}
}

func TestRandomTokenSourceFailures(t *testing.T) {
	s := mustScheme(t, Definition{Name: "f", Mode: ModeVaulted, KeyName: "k"})
	p := mustPAN(t, "4111111111111111")
	boom := errors.New("boom")
	if _, err := s.NewRandomToken(p, iotest.ErrReader(boom)); !errors.Is(err, ErrRandomness) || !errors.Is(err, boom) {
		t.Errorf("failing reader: %v", err)
	}
	if _, err := s.NewRandomToken(p, bytes.NewReader([]byte{1, 2, 3})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short reader: %v", err)
	}
	// Only bytes that rejection sampling discards: bounded, then an error.
	if _, err := s.NewRandomToken(p, constReader(255)); !errors.Is(err, ErrRandomness) {
		t.Errorf("all-discarded source: %v", err)
	}
}

func TestRandomTokenRefusals(t *testing.T) {
	s := mustScheme(t, Definition{Name: "v", Mode: ModeVaulted, KeyName: "k", Lengths: []int{16}})
	if _, err := s.NewRandomToken(mustPAN(t, "378282246310005"), nil); !errors.Is(err, ErrLengthNotAllowed) {
		t.Errorf("length: %v", err)
	}
	if _, err := s.NewRandomToken(mustPAN(t, "6200000000000006"), nil); !errors.Is(err, card.ErrLuhn) {
		t.Errorf("non-Luhn UnionPay: %v", err)
	}
	if _, err := s.NewRandomToken(card.PAN{}, nil); !errors.Is(err, card.ErrEmpty) {
		t.Errorf("zero PAN: %v", err)
	}
	ff := mustScheme(t, Definition{Name: "x", Mode: ModeFF1, KeyName: "k", Luhn: LuhnAny})
	if _, err := ff.NewRandomToken(mustPAN(t, "4111111111111111"), nil); !errors.Is(err, ErrWrongMode) {
		t.Errorf("ff1 scheme: %v", err)
	}
	// nil reader means crypto/rand: two draws differ (probability of a clash 10^-9).
	a, err1 := s.NewRandomToken(mustPAN(t, "4111111111111111"), nil)
	b, err2 := s.NewRandomToken(mustPAN(t, "4111111111111111"), nil)
	if err1 != nil || err2 != nil || a == b {
		t.Errorf("crypto/rand draws: %v %v equal=%v", err1, err2, a == b)
	}
}
