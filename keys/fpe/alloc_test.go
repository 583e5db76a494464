//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

package fpe_test

import (
	"testing"
)

// The uint64 path allocates nothing per call (and so nothing per round):
// scratch comes from the pool, halves are uint64, the reduction is math/bits.
func TestFastPathDoesNotAllocate(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 32)), 10)
	x := toNumerals(testPAN)
	tweak := []byte("tweak")
	if err := f.Encrypt(tweak, x); err != nil { // warm the pool and the P cache
		t.Fatal(err)
	}
	if !f.UsesFastPath(len(x)) {
		t.Fatal("16 digits must take the fast path")
	}
	for name, fn := range map[string]func(){
		"Encrypt": func() { _ = f.Encrypt(tweak, x) },
		"Decrypt": func() { _ = f.Decrypt(tweak, x) },
	} {
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, n)
		}
	}
	xs := panBatch(64)
	if err := f.EncryptBatch(nil, xs); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { _ = f.EncryptBatch(nil, xs) }); n != 0 {
		t.Errorf("EncryptBatch with one tweak: %.1f allocations per call, want 0", n)
	}
}
