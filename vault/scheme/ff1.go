package scheme

import (
	"errors"
	"fmt"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/vault/card"
)

// FF1Tokenizer makes and reverses the tokens of one FF1 scheme under one key
// version. It is immutable after NewFF1Tokenizer and safe for concurrent use
// (the *fpe.FF1 it wraps is).
//
// A token keeps the scheme's leading and trailing digits. Under luhn any the
// free digits are FF1-encrypted as one numeral string. Under luhn pass or fail
// the last free digit is the check position: FF1 encrypts the free digits
// before it, then that position is set so the token passes the Luhn check
// (pass) or fails it (fail: the passing digit plus 1 + (sum of the encrypted
// digits mod 9), mod 10, which spreads tokens over the nine failing digits and
// depends only on the token's other digits). Detokenize inverts FF1 and sets
// the PAN's digit at that position to its Luhn check value, which is exact
// because such schemes accept only Luhn-valid PANs (Validate refuses
// allow_non_luhn_unionpay there).
//
// The FF1 tweak binds the scheme, the key version, the PAN length and the kept
// digits (layout in tweak.go), so a token only detokenizes under the scheme,
// key version and kept digits that made it.
type FF1Tokenizer struct {
	s          *Scheme
	f          *fpe.FF1
	keyVersion uint32
	prefix     [schemeIDLen + 4]byte
}

// NewFF1Tokenizer returns a tokenizer for the FF1 scheme s using f, an FF1
// over the scheme's key version keyVersion (radix 10). Errors: ErrWrongMode,
// ErrConfig.
func NewFF1Tokenizer(s *Scheme, keyVersion uint32, f *fpe.FF1) (*FF1Tokenizer, error) {
	if s == nil || f == nil {
		return nil, fmt.Errorf("%w: nil scheme or ff1", ErrConfig)
	}
	if s.def.Mode != ModeFF1 {
		return nil, fmt.Errorf("%w: scheme %q is %s, not ff1", ErrWrongMode, s.def.Name, s.def.Mode)
	}
	if f.Radix() != 10 {
		return nil, fmt.Errorf("%w: ff1 radix is %d, want 10", ErrConfig, f.Radix())
	}
	if f.MaxTweakLen() < maxTweakLength {
		return nil, fmt.Errorf("%w: ff1 accepts tweaks of %d bytes, need %d", ErrConfig, f.MaxTweakLen(), maxTweakLength)
	}
	for _, l := range s.layouts {
		if l == nil {
			continue
		}
		if err := fpe.CheckLength(10, l.valueEnd-l.lead); err != nil {
			return nil, fmt.Errorf("%w: length %d: %w", ErrConfig, l.n, err)
		}
	}
	return &FF1Tokenizer{s: s, f: f, keyVersion: keyVersion, prefix: tweakPrefix(s.def, keyVersion)}, nil
}

// Scheme returns the tokenizer's scheme.
func (t *FF1Tokenizer) Scheme() *Scheme { return t.s }

// KeyVersion returns the key version the tokenizer's tweaks bind.
func (t *FF1Tokenizer) KeyVersion() uint32 { return t.keyVersion }

// Tokenize returns p's token. Errors: those of Scheme.CheckPAN, ErrFixedPoint
// (luhn pass or any only; FF1 mapped the PAN to itself), or an fpe error
// (wrapping fpe.ErrCipher when the block cipher fails).
func (t *FF1Tokenizer) Tokenize(p card.PAN) (string, error) {
	if err := t.s.CheckPAN(p); err != nil {
		return "", err
	}
	l := t.s.layoutFor(p.Len())
	var tb, xb [card.MaxLength]byte
	defer clear(tb[:])
	defer clear(xb[:])
	tok := p.AppendDigits(tb[:0])
	x := toNumerals(xb[:0], tok[l.lead:l.valueEnd])
	var twb [maxTweakLength]byte
	tw := appendTweak(twb[:0], &t.prefix, l, tok)
	if err := t.f.Encrypt(tw, x); err != nil {
		return "", fmt.Errorf("ff1 tokenize: %w", err)
	}
	t.finishToken(l, tok, x)
	if p.EqualDigits(tok) {
		return "", ErrFixedPoint
	}
	return string(tok), nil
}

// Detokenize returns the PAN of tok. Errors: a *card.RuleError from
// Scheme.CheckToken (field "token"), ErrNotToken when tok has the right shape
// but this scheme and key version cannot have produced it, or an fpe error.
//
// FF1 has no integrity check: ErrNotToken is returned only where the format
// reveals it (a non-canonical luhn-fail digit, a result that is not a valid
// PAN, a token equal to its PAN). A token made under another key version (or
// key) usually decrypts to a wrong but valid-looking PAN, so the caller must
// use the key version the token was made with; a vaultless token cannot
// carry it.
func (t *FF1Tokenizer) Detokenize(tok string) (card.PAN, error) {
	if err := t.s.CheckToken(tok, ""); err != nil {
		return card.PAN{}, err
	}
	l := t.s.layoutFor(len(tok))
	var tb, xb [card.MaxLength]byte
	defer clear(tb[:])
	defer clear(xb[:])
	b := append(tb[:0], tok...)
	x := toNumerals(xb[:0], b[l.lead:l.valueEnd])
	if err := t.checkCanonical(l, b, x); err != nil {
		return card.PAN{}, err
	}
	var twb [maxTweakLength]byte
	tw := appendTweak(twb[:0], &t.prefix, l, b)
	if err := t.f.Decrypt(tw, x); err != nil {
		return card.PAN{}, fmt.Errorf("ff1 detokenize: %w", err)
	}
	return t.finishPAN(l, b, x, tok)
}

// finishToken writes the encrypted numerals x into tok and sets the check
// position for the scheme's Luhn rule.
func (t *FF1Tokenizer) finishToken(l *layout, tok, x []byte) {
	for i, d := range x {
		tok[l.lead+i] = '0' + d
	}
	if l.check < 0 {
		return
	}
	valid, _ := card.LuhnDigitAt(tok, l.check) // tok is all digits
	if t.s.def.Luhn == LuhnPass {
		tok[l.check] = valid
	} else {
		tok[l.check] = failDigit(valid, x)
	}
}

// failDigit is the check-position digit of a luhn-fail token: never the
// passing digit, spread over the other nine by the encrypted digits x.
func failDigit(valid byte, x []byte) byte {
	sum := 0
	for _, d := range x {
		sum += int(d)
	}
	return '0' + (valid-'0'+1+byte(sum%9))%10
}

// checkCanonical rejects a luhn-fail token whose check digit is one of the
// eight failing digits Tokenize would not have chosen; without this nine
// strings would detokenize to the same PAN. x holds the token's value digits.
func (t *FF1Tokenizer) checkCanonical(l *layout, tok, x []byte) error {
	if l.check < 0 || t.s.def.Luhn != LuhnFail {
		return nil
	}
	valid, _ := card.LuhnDigitAt(tok, l.check)
	if tok[l.check] != failDigit(valid, x) {
		return fmt.Errorf("%w: check digit does not match the scheme", ErrNotToken)
	}
	return nil
}

// finishPAN writes the decrypted numerals x into b (the token's digits),
// recomputes the check digit, and validates the result as a PAN of the scheme.
func (t *FF1Tokenizer) finishPAN(l *layout, b, x []byte, tok string) (card.PAN, error) {
	for i, d := range x {
		b[l.lead+i] = '0' + d
	}
	if l.check >= 0 {
		b[l.check], _ = card.LuhnDigitAt(b, l.check)
	}
	p, err := card.ParseBytes(b, t.s.parse)
	if err != nil {
		var re *card.RuleError
		rule := "invalid"
		if errors.As(err, &re) {
			rule = re.Rule
		}
		return card.PAN{}, fmt.Errorf("%w: decrypts to a number that is not a pan of this scheme (rule %s)", ErrNotToken, rule)
	}
	if string(b) == tok {
		// Tokenize refuses fixed points, so no token equals its PAN.
		return card.PAN{}, fmt.Errorf("%w: decrypts to itself", ErrNotToken)
	}
	return p, nil
}

// toNumerals appends the numeral values of ASCII digits src to dst.
func toNumerals(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, c-'0')
	}
	return dst
}
