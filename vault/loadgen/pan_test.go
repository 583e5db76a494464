package loadgen

import (
	"testing"

	"github.com/panvault/panvault/vault/card"
)

func TestPANsAreValidAndUnique(t *testing.T) {
	g := NewPANs(42)
	const n = 200_000
	seen := make(map[string]uint64, n)
	brands := map[card.Brand]int{}
	lengths := map[int]bool{}
	for i := uint64(0); i < n; i++ {
		p := g.PAN(i)
		if !card.Luhn(p) {
			t.Fatalf("index %d: generated number fails Luhn (masked %s)", i, masked(p))
		}
		if _, err := card.Parse(p, card.ParseOptions{}); err != nil {
			t.Fatalf("index %d: card.Parse refuses generated number: %v", i, err)
		}
		if j, dup := seen[p]; dup {
			t.Fatalf("indexes %d and %d give the same PAN (masked %s)", j, i, masked(p))
		}
		seen[p] = i
		b := card.DetectBrand(p)
		if b == card.BrandUnknown {
			t.Fatalf("index %d: brand unknown (masked %s)", i, masked(p))
		}
		brands[b]++
		lengths[len(p)] = true
	}
	for _, b := range card.Brands() {
		if b != card.BrandUnknown && brands[b] == 0 {
			t.Errorf("brand %s never generated", b)
		}
	}
	if len(lengths) < 3 {
		t.Errorf("only lengths %v generated", lengths)
	}
}

// Indexes far apart (a detokenize pool lives at the top of the space) stay
// distinct from low ones and valid.
func TestPANsHighIndexes(t *testing.T) {
	g := NewPANs(7)
	low := map[string]bool{}
	for i := uint64(0); i < 10000; i++ {
		low[g.PAN(i)] = true
	}
	top := g.Capacity() - 10000
	for i := top; i < g.Capacity(); i++ {
		p := g.PAN(i)
		if !card.Luhn(p) || low[p] {
			t.Fatalf("index %d: invalid or repeated (masked %s)", i, masked(p))
		}
	}
	if g.Capacity() < 1e12 {
		t.Errorf("capacity %d, want at least 10^12", g.Capacity())
	}
}

func TestPANsDeterministicPerSeed(t *testing.T) {
	a, b, c := NewPANs(1), NewPANs(1), NewPANs(2)
	differ := 0
	for i := uint64(0); i < 1000; i++ {
		if a.PAN(i) != b.PAN(i) {
			t.Fatalf("index %d differs for one seed", i)
		}
		if a.PAN(i) != c.PAN(i) {
			differ++
		}
	}
	if differ < 990 {
		t.Errorf("seeds 1 and 2 share %d of 1000 PANs", 1000-differ)
	}
	buf := a.Append([]byte("x"), 5)
	if string(buf[1:]) != a.PAN(5) || buf[0] != 'x' {
		t.Errorf("Append does not append PAN(5)")
	}
}

// The call streams of different workers never share a PAN index.
func TestStreamsDisjoint(t *testing.T) {
	const workers, batch, calls = 7, 3, 50
	seen := map[uint64]bool{}
	for w := uint64(0); w < workers; w++ {
		st := stream{worker: w, workers: workers, batch: batch}
		for n := uint64(0); n < calls; n++ {
			for b := uint64(0); b < batch; b++ {
				i := st.first(n) + b
				if seen[i] {
					t.Fatalf("index %d used twice (worker %d call %d)", i, w, n)
				}
				seen[i] = true
			}
		}
	}
	if len(seen) != workers*batch*calls {
		t.Fatalf("%d indexes, want %d", len(seen), workers*batch*calls)
	}
}

// Consecutive indexes of one shape spread over the BIN: a vaulted scheme
// keeping 6+4 digits must not see thousands of PANs share one BIN.
func TestPANsSpreadBINs(t *testing.T) {
	g := NewPANs(3)
	bins := map[string]int{}
	n := len(panShapes) * 1000
	for i := range n {
		bins[g.PAN(uint64(i))[:6]]++
	}
	for bin, c := range bins {
		if c > 20 {
			t.Fatalf("BIN %s used %d times in %d PANs", bin, c, n)
		}
	}
}

func masked(p string) string { return card.MaskDigits(p) }
