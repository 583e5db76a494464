package fpetest

import (
	"math/rand/v2"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
)

// Inputs returns size pseudo-random numeral strings of n numerals in radix,
// deterministic for a given seed (not card data).
func Inputs(seed uint64, radix, n, size int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	xs := make([][]byte, size)
	for i := range xs {
		xs[i] = make([]byte, n)
		for j := range xs[i] {
			xs[i][j] = byte(rng.IntN(radix))
		}
	}
	return xs
}

// BenchBatch measures f.EncryptBatch on batches of size inputs of n numerals
// with one shared tweak, and reports ns/item besides ns/op. Point f at any
// BlockCipher, e.g. an HSM-backed one:
//
//	func BenchmarkHSMBatch256(b *testing.B) { fpetest.BenchBatch(b, ff1OnHSM, 16, 256) }
func BenchBatch(b *testing.B, f *fpe.FF1, n, size int) {
	b.Helper()
	xs := Inputs(1, f.Radix(), n, size)
	tweaks := make([][]byte, size)
	for i := range tweaks {
		tweaks[i] = []byte("bench-tweak")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// In place: each batch encrypts the previous ciphertexts.
		if err := f.EncryptBatch(tweaks, xs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/item")
}

// BenchSingle measures f.Encrypt on one input of n numerals at a time.
func BenchSingle(b *testing.B, f *fpe.FF1, n int) {
	b.Helper()
	x := Inputs(2, f.Radix(), n, 1)[0]
	tweak := []byte("bench-tweak")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := f.Encrypt(tweak, x); err != nil {
			b.Fatal(err)
		}
	}
}
