package fpe_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
)

func randNumerals(rng *rand.Rand, radix, n int) []byte {
	x := make([]byte, n)
	for i := range x {
		x[i] = byte(rng.IntN(radix))
	}
	return x
}

func randTweak(rng *rand.Rand) []byte {
	// Lengths around block boundaries matter: the fixed part of Q grows a
	// block at a time.
	lengths := []int{0, 0, 1, 7, 10, 11, 12, 15, 16, 17, 31, 32, 33, 47, 100, 256}
	tw := make([]byte, lengths[rng.IntN(len(lengths))])
	for i := range tw {
		tw[i] = byte(rng.Uint32())
	}
	return tw
}

// For every radix and every accepted length (lengths sampled for the long
// radix-2 range): the uint64 and math/big paths agree, decryption inverts
// encryption, and encryption is not the identity.
func TestFastAndGeneralAgreeAndInvert(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{make([]byte, 16), make([]byte, 24), make([]byte, 32)}
	for _, k := range keys {
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
	}
	iters := 3
	if testing.Short() {
		iters = 1
	}
	fastSeen, generalSeen := 0, 0
	for radix := fpe.MinRadix; radix <= fpe.MaxRadix; radix++ {
		f := newFF1(t, newAES(t, keys[radix%3]), radix)
		lo, hi, _ := fpe.LengthRange(radix)
		for n := lo; n <= hi; n++ {
			if f.UsesFastPath(n) {
				fastSeen++
			} else {
				generalSeen++
			}
			for range iters {
				tw := randTweak(rng)
				pt := randNumerals(rng, radix, n)
				fast := bytes.Clone(pt)
				gen := bytes.Clone(pt)
				if err := f.Encrypt(tw, fast); err != nil {
					t.Fatalf("radix %d n %d: %v", radix, n, err)
				}
				if err := f.EncryptGeneral(tw, gen); err != nil {
					t.Fatalf("radix %d n %d: %v", radix, n, err)
				}
				if !bytes.Equal(fast, gen) {
					t.Fatalf("radix %d n %d tweak %d bytes: paths disagree on encrypt", radix, n, len(tw))
				}
				if bytes.Equal(fast, pt) && n > 8 {
					t.Fatalf("radix %d n %d: encryption returned its input", radix, n)
				}
				dg := bytes.Clone(fast)
				if err := f.Decrypt(tw, fast); err != nil {
					t.Fatal(err)
				}
				if err := f.DecryptGeneral(tw, dg); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fast, pt) || !bytes.Equal(dg, pt) {
					t.Fatalf("radix %d n %d: decrypt does not invert encrypt", radix, n)
				}
			}
		}
	}
	if fastSeen == 0 || generalSeen == 0 {
		t.Fatalf("both paths must be exercised: fast %d general %d", fastSeen, generalSeen)
	}
}

func TestFastPathCoversPANs(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 16)), 10)
	for n := 6; n <= 36; n++ {
		if !f.UsesFastPath(n) {
			t.Errorf("radix 10 length %d takes the general path", n)
		}
	}
	if f.UsesFastPath(37) {
		t.Errorf("radix 10 length 37 (10^19 > 2^63) must take the general path")
	}
}

// A batch with mixed tweaks (and tweak lengths) gives exactly what one call
// per item gives, in both directions and on both paths.
func TestBatchMatchesSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ radix, n, items int }{
		{10, 16, 300}, {10, 19, 64}, {10, 6, 50}, {36, 19, 40}, {10, 40, 30}, {2, 150, 20}, {36, 36, 20},
	} {
		key := make([]byte, 16)
		key[0] = byte(tc.radix)
		f := newFF1(t, newAES(t, key), tc.radix)
		tweaks := make([][]byte, tc.items)
		pts := make([][]byte, tc.items)
		for i := range pts {
			pts[i] = randNumerals(rng, tc.radix, tc.n)
			if i%3 != 0 { // repeats, so groups hold several items
				tweaks[i] = randTweak(rng)
			}
		}
		want := make([][]byte, tc.items)
		for i := range pts {
			want[i] = bytes.Clone(pts[i])
			if err := f.Encrypt(tweaks[i], want[i]); err != nil {
				t.Fatal(err)
			}
		}
		for name, enc := range map[string]func([][]byte, [][]byte) error{
			"fast": f.EncryptBatch, "general": f.EncryptBatchGeneral,
		} {
			got := cloneAll(pts)
			if err := enc(tweaks, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%+v %s: item %d differs from single encryption", tc, name, i)
				}
			}
		}
		for name, dec := range map[string]func([][]byte, [][]byte) error{
			"fast": f.DecryptBatch, "general": f.DecryptBatchGeneral,
		} {
			got := cloneAll(want)
			if err := dec(tweaks, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if !bytes.Equal(got[i], pts[i]) {
					t.Fatalf("%+v %s: item %d does not decrypt", tc, name, i)
				}
			}
		}
	}
}

func cloneAll(xs [][]byte) [][]byte {
	out := make([][]byte, len(xs))
	for i, x := range xs {
		out[i] = bytes.Clone(x)
	}
	return out
}

// nil tweaks and a slice of empty tweaks mean the same.
func TestBatchNilTweaks(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 16)), 10)
	a := [][]byte{toNumerals(testPAN), toNumerals("0000000000000000")}
	b := cloneAll(a)
	if err := f.EncryptBatch(nil, a); err != nil {
		t.Fatal(err)
	}
	if err := f.EncryptBatch([][]byte{{}, nil}, b); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("item %d: nil tweaks differ from empty tweaks", i)
		}
	}
	if err := f.EncryptBatch(nil, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// Distinct tweaks give distinct ciphertexts (with overwhelming probability);
// the tweak is really bound into every round.
func TestTweakMatters(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 16)), 10)
	seen := map[string]bool{}
	for _, tw := range [][]byte{nil, {0}, {1}, {0, 0}, make([]byte, 16), make([]byte, 17), make([]byte, 32)} {
		x := toNumerals(testPAN)
		if err := f.Encrypt(tw, x); err != nil {
			t.Fatal(err)
		}
		if seen[string(x)] {
			t.Fatalf("tweak of %d bytes collides with another tweak", len(tw))
		}
		seen[string(x)] = true
	}
}
