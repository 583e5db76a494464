package card

import (
	"errors"
	"testing"
)

// Well-known public test card numbers (network and PSP test ranges).
var luhnValid = []string{
	"4111111111111111", "4012888888881881", "4222222222222", "4000056655665556",
	"5555555555554444", "5105105105105100", "2223003122003222", "2221000000000009",
	"378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
	"3530111333300000", "3566002020360505", "30569309025904", "38520000023237",
	"36227206271667", "6200000000000005", "6205500000000000004", "6759649826438453",
	"2201382000000013", "4000000000000000006",
}

func TestLuhnKnownValid(t *testing.T) {
	for _, s := range luhnValid {
		if !refLuhn(s) {
			t.Fatalf("test vector %s is not Luhn-valid by the reference", maskForTest(s))
		}
		if !Luhn(s) || !Luhn([]byte(s)) {
			t.Errorf("Luhn(%s) = false, want true", maskForTest(s))
		}
	}
}

func TestLuhnRejects(t *testing.T) {
	for _, s := range []string{"", "0a", "4111111111111112", "4111 1111 1111 1111", "79927398710", "-0"} {
		if Luhn(s) {
			t.Errorf("Luhn(%q) = true, want false", maskForTest(s))
		}
	}
	// Every single-digit change of a valid PAN breaks the check.
	for _, s := range luhnValid {
		b := []byte(s)
		for i := range b {
			orig := b[i]
			for d := byte('0'); d <= '9'; d++ {
				if d == orig {
					continue
				}
				b[i] = d
				if Luhn(b) {
					t.Fatalf("changing position %d of %s still passes", i, maskForTest(s))
				}
			}
			b[i] = orig
		}
	}
	// "0" and "00" are Luhn-valid by the arithmetic; the function does not
	// judge length (Parse does).
	if !Luhn("0") || !Luhn("79927398713") {
		t.Error("Luhn of short valid strings should hold")
	}
}

func TestLuhnCheckDigit(t *testing.T) {
	for _, s := range luhnValid {
		got, err := LuhnCheckDigit(s[:len(s)-1])
		if err != nil {
			t.Fatalf("LuhnCheckDigit(%s): %v", maskForTest(s), err)
		}
		if got != s[len(s)-1] {
			t.Errorf("LuhnCheckDigit(%s) = %c, want %c", maskForTest(s), got, s[len(s)-1])
		}
	}
	if _, err := LuhnCheckDigit(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty payload: err = %v, want ErrEmpty", err)
	}
	if _, err := LuhnCheckDigit("41x1"); !errors.Is(err, ErrNotDigits) {
		t.Errorf("non-digit payload: err = %v, want ErrNotDigits", err)
	}
}

func TestLuhnDigitAt(t *testing.T) {
	for _, s := range luhnValid {
		for pos := range s {
			b := []byte(s)
			b[pos] = 'x' // ignored by LuhnDigitAt
			got, err := LuhnDigitAt(b, pos)
			if err != nil {
				t.Fatalf("LuhnDigitAt(%s, %d): %v", maskForTest(s), pos, err)
			}
			if got != s[pos] {
				t.Fatalf("LuhnDigitAt(%s, %d) = %c, want %c", maskForTest(s), pos, got, s[pos])
			}
			// Exactly one digit at pos passes.
			passes := 0
			for d := byte('0'); d <= '9'; d++ {
				b[pos] = d
				if refLuhn(string(b)) {
					passes++
				}
			}
			if passes != 1 {
				t.Fatalf("%d digits pass at position %d", passes, pos)
			}
		}
	}
	if _, err := LuhnDigitAt([]byte("1234"), 4); !errors.Is(err, ErrLength) {
		t.Errorf("pos out of range: err = %v", err)
	}
	if _, err := LuhnDigitAt([]byte("1234"), -1); !errors.Is(err, ErrLength) {
		t.Errorf("negative pos: err = %v", err)
	}
	if _, err := LuhnDigitAt([]byte("12a4"), 0); !errors.Is(err, ErrNotDigits) {
		t.Errorf("non-digit elsewhere: err = %v", err)
	}
}
