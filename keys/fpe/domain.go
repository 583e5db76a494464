package fpe

import (
	"fmt"
	"math/big"
)

// Alphabet lists the symbols of the string API: radix r uses the first r.
const Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

const (
	// MinRadix and MaxRadix bound the supported radices.
	MinRadix = 2
	MaxRadix = len(Alphabet)
	// minDomain is SP 800-38G Rev. 1's floor on radix^minlen.
	minDomain = 1000000
	// maxDomainBits: n <= 2*floor(log_radix(2^maxDomainBits)).
	maxDomainBits = 96
)

// lengthBounds holds, per radix, the smallest and largest accepted length.
// It is computed exactly with integers (no floating-point logarithms).
var lengthBounds = computeLengthBounds()

type bounds struct{ min, max int }

func computeLengthBounds() [MaxRadix + 1]bounds {
	var t [MaxRadix + 1]bounds
	limit := new(big.Int).Lsh(big.NewInt(1), maxDomainBits)
	for r := MinRadix; r <= MaxRadix; r++ {
		// min: smallest n with r^n >= 1e6.
		n, p := 0, 1
		for p < minDomain {
			p *= r
			n++
		}
		t[r].min = n
		// max: 2*k with k the largest integer such that r^k <= 2^96.
		k, pk, br := 0, big.NewInt(1), big.NewInt(int64(r))
		for {
			next := new(big.Int).Mul(pk, br)
			if next.Cmp(limit) > 0 {
				break
			}
			pk = next
			k++
		}
		t[r].max = 2 * k
	}
	return t
}

// CheckLength reports whether FF1 accepts inputs of n numerals in this radix:
// radix in 2..36, radix^n >= 1,000,000 (SP 800-38G Rev. 1) and
// n <= 2*floor(log_radix(2^96)). The error wraps ErrRadix or ErrLength.
func CheckLength(radix, n int) error {
	if radix < MinRadix || radix > MaxRadix {
		return errRadix(radix)
	}
	b := lengthBounds[radix]
	if n < b.min {
		return fmt.Errorf("%w: length %d is below the minimum %d for radix %d (radix^length must be at least 1000000)", ErrLength, n, b.min, radix)
	}
	if n > b.max {
		return fmt.Errorf("%w: length %d is above the maximum %d for radix %d (2*floor(log_radix(2^96)))", ErrLength, n, b.max, radix)
	}
	return nil
}

// LengthRange returns the smallest and largest length CheckLength accepts for
// radix, or an error wrapping ErrRadix.
func LengthRange(radix int) (minLen, maxLen int, err error) {
	if radix < MinRadix || radix > MaxRadix {
		return 0, 0, errRadix(radix)
	}
	b := lengthBounds[radix]
	return b.min, b.max, nil
}

// plan holds the per-length constants of FF1 (SP 800-38G steps 1-5).
// Plans are built once by NewFF1 and never modified, so they are shared by
// concurrent calls.
type plan struct {
	n, u, v int
	b, d    int // bytes of NUM(B); bytes of S used
	// fast: radix^v <= 2^63, so both halves and every sum fit in uint64.
	fast       bool
	modU, modV uint64   // radix^u, radix^v when fast
	bigU, bigV *big.Int // radix^u, radix^v (read-only)
	// pHead is P without its last four bytes ([t]^4), which vary per tweak.
	pHead [12]byte
	// pc caches CIPH(P) for tweak lengths below len(pc); see prefix.go.
	pc [pCacheTweaks]pCacheEntry
}

func newPlan(radix, n int) (*plan, error) {
	if err := CheckLength(radix, n); err != nil {
		return nil, err
	}
	p := &plan{n: n, u: n / 2, v: n - n/2}
	r := big.NewInt(int64(radix))
	p.bigU = new(big.Int).Exp(r, big.NewInt(int64(p.u)), nil)
	p.bigV = new(big.Int).Exp(r, big.NewInt(int64(p.v)), nil)
	// b = ceil(ceil(v*log2(radix))/8); ceil(log2(N)) is the bit length of N-1.
	vm1 := new(big.Int).Sub(p.bigV, big.NewInt(1))
	p.b = (vm1.BitLen() + 7) / 8
	p.d = 4*((p.b+3)/4) + 4
	// The length rule keeps radix^v <= 2^96, so b <= 12 and d <= 16: the
	// varying part of Q ([i] || NUM(B), b+1 bytes) fits in one block and S is
	// the first d bytes of R. The round code relies on both.
	if p.b > 12 || p.d > BlockSize {
		return nil, fmt.Errorf("%w: internal: length %d gives b=%d", ErrLength, n, p.b)
	}
	if p.bigV.Cmp(new(big.Int).Lsh(big.NewInt(1), 63)) <= 0 {
		p.fast = true
		p.modU = p.bigU.Uint64()
		p.modV = p.bigV.Uint64()
	}
	p.pHead = [12]byte{1, 2, 1, byte(radix >> 16), byte(radix >> 8), byte(radix), 10, byte(p.u), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	return p, nil
}

// pBlock returns P for a tweak of t bytes.
func (p *plan) pBlock(t int) (blk [BlockSize]byte) {
	copy(blk[:], p.pHead[:])
	blk[12], blk[13], blk[14], blk[15] = byte(t>>24), byte(t>>16), byte(t>>8), byte(t)
	return blk
}

// fixedQBlocks returns, for a tweak of t bytes, the number of leading blocks
// of Q = T || [0]^pad || [i] || [NUM(B)]^b that hold only tweak and padding
// (the same in every round). Q's last block, which also carries [i] and
// NUM(B), follows them.
func (p *plan) fixedQBlocks(t int) int {
	pad := ((-t-p.b-1)%BlockSize + BlockSize) % BlockSize
	qLen := t + pad + 1 + p.b
	return qLen/BlockSize - 1
}

func errRadix(radix int) error {
	return fmt.Errorf("%w: radix %d is outside %d..%d", ErrRadix, radix, MinRadix, MaxRadix)
}
