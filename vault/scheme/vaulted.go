package scheme

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/panvault/panvault/vault/card"
)

// maxTokenAttempts bounds how often NewRandomToken redraws a token that
// equals its PAN. Validate leaves every PAN at least nine equally likely
// tokens of which at most one equals the PAN, so with a working random source
// exhausting the bound has probability below 10^-60.
const maxTokenAttempts = 64

// maxRandomBytes bounds the random bytes one NewRandomToken call may consume;
// rejection sampling discards under 2% of bytes, so only a broken source
// reaches it.
const maxRandomBytes = 4096

// digitSource turns random bytes into uniform digits by rejection sampling:
// a byte b is used only if b < 256 - 256%m, so b%m is exactly uniform on [0, m).
type digitSource struct {
	r    io.Reader
	buf  [64]byte
	pos  int
	n    int
	used int
}

func (s *digitSource) next(m byte) (byte, error) {
	limit := byte(256 - 256%int(m))
	for {
		if s.pos == s.n {
			if s.used >= maxRandomBytes {
				return 0, fmt.Errorf("%w: %d random bytes gave no usable digit", ErrRandomness, s.used)
			}
			if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
				return 0, fmt.Errorf("%w: %w", ErrRandomness, err)
			}
			s.pos, s.n = 0, len(s.buf)
			s.used += len(s.buf)
		}
		b := s.buf[s.pos]
		s.buf[s.pos] = 0
		s.pos++
		if b < limit {
			return b % m, nil
		}
	}
}

func (s *digitSource) wipe() { clear(s.buf[:]) }

// NewRandomToken draws a random token for p under a vaulted scheme: the kept
// leading and trailing digits are copied, every other digit is uniform from r
// (crypto/rand.Reader when r is nil) by rejection sampling, and under luhn
// pass or fail the check position (the last free digit) is set to satisfy the
// rule: the unique passing digit, or one of the nine failing digits chosen
// uniformly. The result is uniform over all tokens with the kept digits that
// satisfy the rule, except that a token equal to p is redrawn: a token never
// equals its PAN.
//
// Uniqueness within the scheme is the caller's business (the vault redraws on
// a collision). Errors: ErrWrongMode, ErrLengthNotAllowed, a *card.RuleError
// from CheckPAN, ErrRandomness.
func (s *Scheme) NewRandomToken(p card.PAN, r io.Reader) (string, error) {
	if s.def.Mode != ModeVaulted {
		return "", fmt.Errorf("%w: random tokens need a vaulted scheme, %q is %s", ErrWrongMode, s.def.Name, s.def.Mode)
	}
	if err := s.CheckPAN(p); err != nil {
		return "", err
	}
	if r == nil {
		r = rand.Reader
	}
	l := s.layoutFor(p.Len())
	src := digitSource{r: r}
	defer src.wipe()
	var tok [card.MaxLength]byte
	defer clear(tok[:])
	t := tok[:l.n]
	for i := 0; i < l.lead; i++ {
		t[i] = p.Digit(i)
	}
	for i := l.freeEnd; i < l.n; i++ {
		t[i] = p.Digit(i)
	}
	for range maxTokenAttempts {
		for i := l.lead; i < l.valueEnd; i++ {
			d, err := src.next(10)
			if err != nil {
				return "", err
			}
			t[i] = '0' + d
		}
		if l.check >= 0 {
			valid, err := card.LuhnDigitAt(t, l.check)
			if err != nil {
				return "", err
			}
			t[l.check] = valid
			if s.def.Luhn == LuhnFail {
				off, err := src.next(9)
				if err != nil {
					return "", err
				}
				t[l.check] = '0' + (valid-'0'+1+off)%10
			}
		}
		if !p.EqualDigits(t) {
			return string(t), nil
		}
	}
	return "", fmt.Errorf("%w: %d draws all equalled the pan", ErrRandomness, maxTokenAttempts)
}
