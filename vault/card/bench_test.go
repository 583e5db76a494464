package card

import "testing"

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("4111111111111111", ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMasked(b *testing.B) {
	p, err := Parse("4111111111111111", ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Masked()
	}
}
