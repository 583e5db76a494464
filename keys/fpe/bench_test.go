package fpe_test

import (
	"strconv"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

func benchFF1(b *testing.B, radix int) *fpe.FF1 {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	return newFF1(b, newAES(b, key), radix)
}

// BenchmarkFF1PAN16: a 16-digit PAN, AES-256 in process (crypto/aes).
func BenchmarkFF1PAN16(b *testing.B) {
	f := benchFF1(b, 10)
	b.Run("single", func(b *testing.B) { fpetest.BenchSingle(b, f, 16) })
	b.Run("string", func(b *testing.B) {
		tweak := []byte("bench-tweak")
		s := testPAN
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if s, err = f.EncryptString(tweak, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, size := range []int{16, 256, 4096} {
		b.Run("batch"+strconv.Itoa(size), func(b *testing.B) { fpetest.BenchBatch(b, f, 16, size) })
	}
	b.Run("general-single", func(b *testing.B) {
		x := toNumerals(testPAN)
		tweak := []byte("bench-tweak")
		b.ReportAllocs()
		for b.Loop() {
			if err := f.EncryptGeneral(tweak, x); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general-batch256", func(b *testing.B) {
		xs := fpetest.Inputs(3, 10, 16, 256)
		b.ReportAllocs()
		for b.Loop() {
			if err := f.EncryptBatchGeneral(nil, xs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/item")
	})
}

// BenchmarkFF1Radix36: a 24-symbol radix-36 value (uint64 path) and a
// 36-symbol one (math/big path).
func BenchmarkFF1Radix36(b *testing.B) {
	f := benchFF1(b, 36)
	b.Run("24-single", func(b *testing.B) { fpetest.BenchSingle(b, f, 24) })
	b.Run("36-single", func(b *testing.B) { fpetest.BenchSingle(b, f, 36) })
	b.Run("36-batch256", func(b *testing.B) { fpetest.BenchBatch(b, f, 36, 256) })
}
