package scheme

import (
	"math/rand/v2"
	"testing"

	"github.com/panvault/panvault/vault/card"
)

// Benchmarks use crypto/rand (vaulted) and FF1 over in-process crypto/aes;
// an HSM-backed FF1 adds its per-call cost (see keys/fpe).

func BenchmarkVaultedToken(b *testing.B) {
	s := mustScheme(b, Definition{Name: "bench", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k"})
	p := mustPAN(b, "4111111111111111")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.NewRandomToken(p, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVaultedTokenParallel(b *testing.B) {
	s := mustScheme(b, Definition{Name: "bench", Mode: ModeVaulted, KeepLeading: 6, KeepTrailing: 4, KeyName: "k"})
	p := mustPAN(b, "4111111111111111")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.NewRandomToken(p, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ff1BenchShapes: the smallest allowed domain at 16 digits, and a wide one.
var ff1BenchShapes = []struct {
	name string
	def  Definition
	pan  string
}{
	{"16d-6+4-any", ff1Def("bench", 6, 4, LuhnAny, 16), "4111111111111111"},
	{"16d-0+4-fail", ff1Def("bench", 0, 4, LuhnFail, 16), "4111111111111111"},
	{"19d-6+4-pass", ff1Def("bench", 6, 4, LuhnPass, 19), "6205500000000000004"},
}

func BenchmarkFF1Tokenize(b *testing.B) {
	f := newAESFF1(b, testKey)
	for _, bs := range ff1BenchShapes {
		b.Run(bs.name, func(b *testing.B) {
			tk := mustFF1Tokenizer(b, bs.def, 1, f)
			p := mustPAN(b, bs.pan)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tk.Tokenize(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFF1Detokenize(b *testing.B) {
	f := newAESFF1(b, testKey)
	for _, bs := range ff1BenchShapes {
		b.Run(bs.name, func(b *testing.B) {
			tk := mustFF1Tokenizer(b, bs.def, 1, f)
			tok, err := tk.Tokenize(mustPAN(b, bs.pan))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tk.Detokenize(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFF1TokenizeBatch reports ns per PAN for a batch of 256 16-digit
// PANs with distinct BINs and last fours (distinct tweaks).
func BenchmarkFF1TokenizeBatch(b *testing.B) {
	f := newAESFF1(b, testKey)
	tk := mustFF1Tokenizer(b, ff1Def("bench", 6, 4, LuhnAny, 16), 1, f)
	rng := rand.New(rand.NewPCG(1, 1))
	pans := make([]card.PAN, 256)
	for i := range pans {
		pans[i] = genPAN(b, rng, card.BrandMastercard, 16, true)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.TokenizeBatch(pans); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pans)), "ns/pan")
}
