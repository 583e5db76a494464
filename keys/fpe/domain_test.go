package fpe_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
)

func TestCheckLengthKnownBounds(t *testing.T) {
	// radix: {min, max}. 10^6 = 1e6; 36^4 > 1e6 > 36^3; 2^20 > 1e6 > 2^19.
	// max = 2*floor(log_radix(2^96)): 10^28 <= 2^96 < 10^29, 36^18 <= 2^96 < 36^19.
	known := map[int][2]int{10: {6, 56}, 36: {4, 36}, 2: {20, 192}, 16: {5, 48}}
	for radix, b := range known {
		if err := fpe.CheckLength(radix, b[0]); err != nil {
			t.Errorf("radix %d length %d: %v", radix, b[0], err)
		}
		if err := fpe.CheckLength(radix, b[1]); err != nil {
			t.Errorf("radix %d length %d: %v", radix, b[1], err)
		}
		if err := fpe.CheckLength(radix, b[0]-1); !errors.Is(err, fpe.ErrLength) {
			t.Errorf("radix %d length %d: got %v, want ErrLength", radix, b[0]-1, err)
		}
		if err := fpe.CheckLength(radix, b[1]+1); !errors.Is(err, fpe.ErrLength) {
			t.Errorf("radix %d length %d: got %v, want ErrLength", radix, b[1]+1, err)
		}
	}
}

// For every radix the bounds satisfy their definitions, checked with big.Int.
func TestCheckLengthDefinition(t *testing.T) {
	limit := new(big.Int).Lsh(big.NewInt(1), 96)
	million := big.NewInt(1000000)
	pow := func(r, n int) *big.Int { return new(big.Int).Exp(big.NewInt(int64(r)), big.NewInt(int64(n)), nil) }
	for radix := fpe.MinRadix; radix <= fpe.MaxRadix; radix++ {
		lo, hi, err := fpe.LengthRange(radix)
		if err != nil {
			t.Fatal(err)
		}
		if pow(radix, lo).Cmp(million) < 0 || pow(radix, lo-1).Cmp(million) >= 0 {
			t.Errorf("radix %d: min length %d wrong", radix, lo)
		}
		if hi%2 != 0 || pow(radix, hi/2).Cmp(limit) > 0 || pow(radix, hi/2+1).Cmp(limit) <= 0 {
			t.Errorf("radix %d: max length %d wrong", radix, hi)
		}
		for n := lo - 2; n <= hi+2; n++ {
			err := fpe.CheckLength(radix, n)
			if ok := n >= lo && n <= hi; ok != (err == nil) {
				t.Errorf("radix %d length %d: err %v", radix, n, err)
			}
		}
	}
}

func TestCheckLengthRadix(t *testing.T) {
	for _, r := range []int{-1, 0, 1, 37, 256, 1 << 16} {
		if err := fpe.CheckLength(r, 20); !errors.Is(err, fpe.ErrRadix) {
			t.Errorf("radix %d: got %v, want ErrRadix", r, err)
		}
		if _, err := fpe.NewFF1(newAES(t, make([]byte, 16)), r); !errors.Is(err, fpe.ErrRadix) {
			t.Errorf("NewFF1 radix %d: got %v, want ErrRadix", r, err)
		}
	}
}
