package fpe_test

import (
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

func panBatch(n int) [][]byte {
	xs := make([][]byte, n)
	for i := range xs {
		xs[i] = toNumerals(testPAN)
		xs[i][15] = byte(i % 10)
		xs[i][14] = byte(i / 10 % 10)
	}
	return xs
}

// The cost model of the package doc: 10 calls per batch, plus one call per
// prefix step (CIPH(P) the first time a tweak length is seen, and one per
// tweak-only block of Q), shared by all items and all distinct tweaks.
func TestBatchCallCount(t *testing.T) {
	cases := []struct {
		name        string
		items       int
		tweaks      func(i int) []byte
		cold, warm  int64
		blocksRound int64 // blocks per round call
	}{
		{"4096 same empty tweak", 4096, func(int) []byte { return nil }, 11, 10, 4096},
		{"1 item", 1, func(int) []byte { return nil }, 11, 10, 1},
		// Mixed tweaks of up to 11 bytes: Q is a single block (b=4 for 16 digits).
		{"256 mixed short tweaks", 256, func(i int) []byte { return []byte{byte(i % 7), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}[:i%12] }, 11, 10, 256},
		// A 40-byte tweak: pad 3, Q = 48 bytes, two tweak-only blocks; its
		// CIPH(P) is not cached (t >= 32), so its chain is 3 steps every time.
		{"mixed with 40-byte tweak", 100, func(i int) []byte {
			if i%2 == 0 {
				return make([]byte, 40)
			}
			return []byte{byte(i)}
		}, 13, 13, 100},
		// A 20-byte tweak: pad 7, Q = 32 bytes, one tweak-only block.
		{"20-byte tweaks", 100, func(i int) []byte { return make([]byte, 20) }, 12, 11, 100},
		// 40 bytes is beyond the CIPH(P) cache (32): no warm saving.
		{"only 40-byte tweaks", 10, func(int) []byte { return make([]byte, 40) }, 13, 13, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc := &fpetest.CountingCipher{Inner: newAES(t, make([]byte, 16))}
			f := newFF1(t, cc, 10)
			tweaks := make([][]byte, c.items)
			for i := range tweaks {
				tweaks[i] = c.tweaks(i)
			}
			xs := panBatch(c.items)
			if err := f.EncryptBatch(tweaks, xs); err != nil {
				t.Fatal(err)
			}
			if got := cc.Calls(); got != c.cold {
				t.Fatalf("first batch: %d calls, want %d", got, c.cold)
			}
			cc.Reset()
			if err := f.DecryptBatch(tweaks, xs); err != nil {
				t.Fatal(err)
			}
			if got := cc.Calls(); got != c.warm {
				t.Fatalf("second batch: %d calls, want %d", got, c.warm)
			}
			// Each round encrypts exactly one block per item; the prefix
			// steps at most one per distinct tweak.
			if minBlocks := 10 * c.blocksRound; cc.Blocks() < minBlocks || cc.Blocks() > minBlocks+int64(c.warm-10)*int64(c.items) {
				t.Fatalf("blocks = %d, want 10 per item plus prefix", cc.Blocks())
			}
			for i, x := range xs {
				if string(x) != string(panBatch(c.items)[i]) {
					t.Fatalf("item %d does not round-trip", i)
				}
			}
		})
	}
}

// Inputs longer than the fast path use the same number of calls.
func TestBatchCallCountGeneral(t *testing.T) {
	cc := &fpetest.CountingCipher{Inner: newAES(t, make([]byte, 16))}
	f, err := fpe.NewFF1(cc, 2)
	if err != nil {
		t.Fatal(err)
	}
	xs := make([][]byte, 64)
	for i := range xs {
		xs[i] = make([]byte, 192)
		xs[i][i] = 1
	}
	if err := f.EncryptBatch(nil, xs); err != nil {
		t.Fatal(err)
	}
	if f.UsesFastPath(192) || cc.Calls() != 11 {
		t.Fatalf("radix 2 length 192: %d calls (fast path %v), want 11 on the general path", cc.Calls(), f.UsesFastPath(192))
	}
}
