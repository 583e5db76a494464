package fpe

import (
	"fmt"
	"sync"
)

// DefaultMaxTweakLen is the tweak length limit of NewFF1, in bytes.
const DefaultMaxTweakLen = 256

// maxTweakLimit bounds NewFF1WithMaxTweak's maxTweakLen (SP 800-38G allows
// up to 2^32-1; a tweak is hashed block by block, so keep it sane).
const maxTweakLimit = 1 << 20

// rounds is FF1's number of Feistel rounds.
const rounds = 10

// FF1 is the FF1 mode of SP 800-38G Rev. 1 for one key and one radix.
//
// An FF1 is safe for concurrent use by multiple goroutines: after
// construction its configuration is read-only, per-call scratch comes from a
// sync.Pool, and the only shared mutable state (a cache of CIPH(P) values,
// which contain no input data) is published atomically.
type FF1 struct {
	c        BlockCipher
	pc       PassCipher // c, if it implements PassCipher; else nil
	radix    int
	maxTweak int
	minLen   int
	plans    []*plan // plans[n-minLen], read-only
	chunk    int     // digits per uint64 chunk in the general path
	chunkPow uint64  // radix^chunk
	pool     sync.Pool
}

// NewFF1 returns FF1 over c for the given radix (2..36), accepting tweaks of
// up to DefaultMaxTweakLen bytes.
func NewFF1(c BlockCipher, radix int) (*FF1, error) {
	return NewFF1WithMaxTweak(c, radix, DefaultMaxTweakLen)
}

// NewFF1WithMaxTweak is NewFF1 with a tweak length limit of maxTweakLen
// bytes (0 .. 1<<20).
func NewFF1WithMaxTweak(c BlockCipher, radix, maxTweakLen int) (*FF1, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil block cipher", ErrConfig)
	}
	if maxTweakLen < 0 || maxTweakLen > maxTweakLimit {
		return nil, fmt.Errorf("%w: max tweak length %d is outside 0..%d", ErrConfig, maxTweakLen, maxTweakLimit)
	}
	minLen, maxLen, err := LengthRange(radix)
	if err != nil {
		return nil, err
	}
	f := &FF1{c: c, radix: radix, maxTweak: maxTweakLen, minLen: minLen}
	f.pc, _ = c.(PassCipher)
	for n := minLen; n <= maxLen; n++ {
		p, err := newPlan(radix, n)
		if err != nil {
			return nil, err
		}
		f.plans = append(f.plans, p)
	}
	// Largest k with radix^k < 2^63, for chunked big.Int conversions.
	f.chunk, f.chunkPow = 0, 1
	for f.chunkPow <= (1<<63)/uint64(radix) {
		f.chunkPow *= uint64(radix)
		f.chunk++
	}
	f.pool.New = func() any { return new(work) }
	return f, nil
}

// Radix returns the radix f was built for.
func (f *FF1) Radix() int { return f.radix }

// MaxTweakLen returns the longest tweak f accepts, in bytes.
func (f *FF1) MaxTweakLen() int { return f.maxTweak }

// Encrypt encrypts the numeral string x in place. Each x[i] must be in
// [0, radix) and len(x) must satisfy CheckLength. On error x is unchanged.
func (f *FF1) Encrypt(tweak []byte, x []byte) error { return f.one(true, false, tweak, x) }

// Decrypt decrypts the numeral string x in place; it inverts Encrypt under
// the same tweak. On error x is unchanged.
func (f *FF1) Decrypt(tweak []byte, x []byte) error { return f.one(false, false, tweak, x) }

// EncryptString encrypts s, written in the first radix symbols of Alphabet.
func (f *FF1) EncryptString(tweak []byte, s string) (string, error) {
	return f.oneString(true, tweak, s)
}

// DecryptString decrypts s, written in the first radix symbols of Alphabet.
func (f *FF1) DecryptString(tweak []byte, s string) (string, error) {
	return f.oneString(false, tweak, s)
}

// EncryptBatch encrypts every xs[i] in place under tweaks[i]. All xs must
// have the same length; tweaks may differ (a nil tweaks slice means the empty
// tweak for every item). The whole batch costs 10 BlockCipher calls plus the
// shared prefix steps described in the package doc, whatever its size (one
// Pass, if the cipher is a PassCipher). On error no element of xs is changed.
func (f *FF1) EncryptBatch(tweaks [][]byte, xs [][]byte) error {
	return f.batch(true, false, tweaks, xs)
}

// DecryptBatch decrypts every xs[i] in place under tweaks[i]; see EncryptBatch.
func (f *FF1) DecryptBatch(tweaks [][]byte, xs [][]byte) error {
	return f.batch(false, false, tweaks, xs)
}

func (f *FF1) planFor(n int) (*plan, error) {
	if err := CheckLength(f.radix, n); err != nil {
		return nil, err
	}
	return f.plans[n-f.minLen], nil
}

func (f *FF1) checkTweak(tweak []byte) error {
	if len(tweak) > f.maxTweak {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTweak, len(tweak), f.maxTweak)
	}
	return nil
}

func (f *FF1) checkNumerals(x []byte) error {
	r := byte(f.radix)
	for i, d := range x {
		if d >= r {
			return fmt.Errorf("%w: numeral at position %d is not below radix %d", ErrNumeral, i, f.radix)
		}
	}
	return nil
}

func (f *FF1) one(enc, general bool, tweak, x []byte) error {
	if err := f.checkTweak(tweak); err != nil {
		return err
	}
	p, err := f.planFor(len(x))
	if err != nil {
		return err
	}
	if err := f.checkNumerals(x); err != nil {
		return err
	}
	w := f.getWork()
	defer f.putWork(w)
	w.tw1[0], w.x1[0] = tweak, x
	return f.run(w, p, enc, general, w.tw1[:], w.x1[:])
}

func (f *FF1) oneString(enc bool, tweak []byte, s string) (string, error) {
	if err := f.checkTweak(tweak); err != nil {
		return "", err
	}
	p, err := f.planFor(len(s))
	if err != nil {
		return "", err
	}
	w := f.getWork()
	defer f.putWork(w)
	x := w.numerals(len(s))
	for i := 0; i < len(s); i++ {
		d := symbolValue(s[i])
		if int(d) >= f.radix {
			return "", fmt.Errorf("%w: symbol at position %d is not in the radix-%d alphabet", ErrNumeral, i, f.radix)
		}
		x[i] = d
	}
	w.tw1[0], w.x1[0] = tweak, x
	if err := f.run(w, p, enc, false, w.tw1[:], w.x1[:]); err != nil {
		return "", err
	}
	for i, d := range x {
		x[i] = Alphabet[d]
	}
	return string(x), nil
}

// symbolValue maps a symbol of Alphabet to its numeral; anything else maps
// to 255 (never a valid numeral).
func symbolValue(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 10
	}
	return 255
}

func (f *FF1) batch(enc, general bool, tweaks [][]byte, xs [][]byte) error {
	if tweaks != nil && len(tweaks) != len(xs) {
		return fmt.Errorf("%w: %d tweaks for %d inputs", ErrBatch, len(tweaks), len(xs))
	}
	if len(xs) == 0 {
		return nil
	}
	n := len(xs[0])
	p, err := f.planFor(n)
	if err != nil {
		return err
	}
	for i, x := range xs {
		if len(x) != n {
			return fmt.Errorf("%w: input %d has length %d, input 0 has %d", ErrBatch, i, len(x), n)
		}
		if err := f.checkNumerals(x); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		if tweaks != nil {
			if err := f.checkTweak(tweaks[i]); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
		}
	}
	w := f.getWork()
	defer f.putWork(w)
	return f.run(w, p, enc, general, tweaks, xs)
}
