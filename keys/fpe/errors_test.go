package fpe_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// A realistic PAN-like input; no error may echo any run of its digits.
const testPAN = "4929381754026183"

func assertNoDigits(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for i := 0; i+4 <= len(testPAN); i++ {
		if strings.Contains(msg, testPAN[i:i+4]) {
			t.Fatalf("error message echoes input digits (message withheld)")
		}
	}
}

func TestErrors(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 16)), 10)
	pan := toNumerals(testPAN)

	cases := []struct {
		name string
		err  error
		want error
	}{
		{"short string", func() error { _, err := f.EncryptString(nil, testPAN[:5]); return err }(), fpe.ErrLength},
		{"long numerals", f.Encrypt(nil, make([]byte, 57)), fpe.ErrLength},
		{"empty", f.Decrypt(nil, nil), fpe.ErrLength},
		{"bad symbol", func() error { _, err := f.EncryptString(nil, testPAN[:10]+"a"+testPAN[11:]); return err }(), fpe.ErrNumeral},
		{"upper case", func() error {
			g := newFF1(t, newAES(t, make([]byte, 16)), 36)
			_, err := g.EncryptString(nil, "4929381754A26183")
			return err
		}(), fpe.ErrNumeral},
		{"bad numeral", func() error { x := append([]byte(nil), pan...); x[7] = 10; return f.Encrypt(nil, x) }(), fpe.ErrNumeral},
		{"long tweak", f.Encrypt(make([]byte, fpe.DefaultMaxTweakLen+1), append([]byte(nil), pan...)), fpe.ErrTweak},
		{"batch count", f.EncryptBatch([][]byte{nil}, [][]byte{pan, pan}), fpe.ErrBatch},
		{"batch mixed lengths", f.EncryptBatch(nil, [][]byte{append([]byte(nil), pan...), pan[:15]}), fpe.ErrBatch},
		{"batch bad numeral", func() error {
			x := append([]byte(nil), pan...)
			x[3] = 200
			return f.DecryptBatch(nil, [][]byte{append([]byte(nil), pan...), x})
		}(), fpe.ErrNumeral},
		{"batch long tweak", f.EncryptBatch([][]byte{nil, make([]byte, 300)}, [][]byte{append([]byte(nil), pan...), append([]byte(nil), pan...)}), fpe.ErrTweak},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
			continue
		}
		assertNoDigits(t, c.err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := fpe.NewFF1(nil, 10); !errors.Is(err, fpe.ErrConfig) {
		t.Errorf("nil cipher: got %v", err)
	}
	c := newAES(t, make([]byte, 16))
	for _, m := range []int{-1, 1<<20 + 1} {
		if _, err := fpe.NewFF1WithMaxTweak(c, 10, m); !errors.Is(err, fpe.ErrConfig) {
			t.Errorf("max tweak %d: got %v", m, err)
		}
	}
	f, err := fpe.NewFF1WithMaxTweak(c, 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	if f.Radix() != 10 || f.MaxTweakLen() != 4 {
		t.Fatalf("Radix/MaxTweakLen = %d/%d", f.Radix(), f.MaxTweakLen())
	}
	if err := f.Encrypt(make([]byte, 5), toNumerals(testPAN)); !errors.Is(err, fpe.ErrTweak) {
		t.Errorf("tweak over configured max: got %v", err)
	}
	if err := f.Encrypt(make([]byte, 4), toNumerals(testPAN)); err != nil {
		t.Errorf("tweak at configured max: %v", err)
	}
}

// A failing BlockCipher (an HSM going away) surfaces as ErrCipher wrapping
// the cipher's error, at every call of the computation, and leaves the
// inputs untouched.
func TestCipherFailurePropagates(t *testing.T) {
	aesc := newAES(t, make([]byte, 32))
	counter := &fpetest.CountingCipher{Inner: aesc}
	f := newFF1(t, counter, 10)
	// Long tweak: several prefix steps before the rounds.
	tweak := make([]byte, 40)
	if err := f.Encrypt(tweak, toNumerals(testPAN)); err != nil {
		t.Fatal(err)
	}
	total := counter.Calls()
	if total < 12 {
		t.Fatalf("expected prefix steps plus 10 rounds, got %d calls", total)
	}
	for failAt := int64(1); failAt <= total; failAt++ {
		for _, enc := range []bool{true, false} {
			fc := &fpetest.CountingCipher{Inner: aesc, FailAt: failAt}
			g := newFF1(t, fc, 10)
			xs := [][]byte{toNumerals(testPAN), toNumerals(testPAN)}
			var err error
			if enc {
				err = g.EncryptBatch([][]byte{tweak, nil}, xs)
			} else {
				err = g.DecryptBatch([][]byte{tweak, nil}, xs)
			}
			if !errors.Is(err, fpe.ErrCipher) || !errors.Is(err, fpetest.ErrInjected) {
				t.Fatalf("fail at call %d: got %v", failAt, err)
			}
			for _, x := range xs {
				if string(x) != string(toNumerals(testPAN)) {
					t.Fatalf("fail at call %d: input modified", failAt)
				}
			}
			x := toNumerals(testPAN)
			if _, err := g.EncryptString(tweak, testPAN); !errors.Is(err, fpe.ErrCipher) {
				t.Fatalf("string, fail at call %d: got %v", failAt, err)
			}
			if err := g.Decrypt(tweak, x); !errors.Is(err, fpe.ErrCipher) || string(x) != string(toNumerals(testPAN)) {
				t.Fatalf("numerals, fail at call %d: got %v or input modified", failAt, err)
			}
		}
	}
}
