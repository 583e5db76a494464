package loadgen

import (
	"math/bits"

	"github.com/panvault/panvault/vault/card"
)

// panShape is one (IIN prefix, length) the generator draws PANs from.
// Prefixes of one length never overlap, so PANs of different shapes differ.
type panShape struct {
	prefix string
	length int
	brand  card.Brand
}

// panShapes spread the load over every brand the vault classifies, Visa and
// Mastercard more often, as in real traffic. Lengths are 14..19, which every
// dev scheme accepts (pan-ff1 of devcluster refuses 12 digits).
var panShapes = []panShape{
	{"41", 16, card.BrandVisa},
	{"45", 16, card.BrandVisa},
	{"47", 16, card.BrandVisa},
	{"49", 19, card.BrandVisa},
	{"52", 16, card.BrandMastercard},
	{"55", 16, card.BrandMastercard},
	{"23", 16, card.BrandMastercard}, // 2-series
	{"37", 15, card.BrandAmex},
	{"6011", 16, card.BrandDiscover},
	{"353", 16, card.BrandJCB},
	{"36", 14, card.BrandDiners},
	{"62", 16, card.BrandUnionPay},
	{"62", 19, card.BrandUnionPay},
	{"67", 16, card.BrandMaestro},
	{"2201", 16, card.BrandMir},
}

// panStream is one shape with its per-seed parameters: payload digits
// k = length - len(prefix) - 1, and the affine map j -> (j*mul + off) mod 10^k,
// a bijection on [0, 10^k) because mul is coprime to 10.
type panStream struct {
	panShape
	k        int
	mod      uint64 // 10^k
	mul, off uint64
}

// PANs generates Luhn-valid test card numbers across brands. PAN(i) is a
// pure function of the seed and i: the same seed gives the same sequence,
// and distinct i below Capacity give distinct PANs. Index i picks the shape
// i mod len(shapes) and the value j = i / len(shapes) inside it, mixed by
// an affine bijection so that consecutive indexes differ in their leading
// (BIN) and trailing digits alike, which keeps the token space of schemes
// that keep 6+4 digits evenly used.
//
// The numbers are synthetic test data, yet they are PANs to the vault:
// never log them. PANs is immutable and safe for concurrent use.
type PANs struct {
	streams []panStream
	cap     uint64
}

// NewPANs returns the generator for seed.
func NewPANs(seed uint64) *PANs {
	g := &PANs{streams: make([]panStream, len(panShapes))}
	minMod := uint64(0)
	for i, s := range panShapes {
		k := s.length - len(s.prefix) - 1
		mod := pow10(k)
		st := panStream{panShape: s, k: k, mod: mod}
		// Golden-ratio step: consecutive j land far apart (a Weyl sequence).
		st.mul = uint64(float64(mod) * 0.6180339887498949)
		for st.mul%2 == 0 || st.mul%5 == 0 {
			st.mul++
		}
		st.off = splitmix64(seed^uint64(i+1)*0x9e3779b97f4a7c15) % mod
		g.streams[i] = st
		if minMod == 0 || mod < minMod {
			minMod = mod
		}
	}
	g.cap = minMod * uint64(len(panShapes))
	return g
}

// Capacity is the number of indexes that give distinct PANs: every i in
// [0, Capacity) maps to a different PAN.
func (g *PANs) Capacity() uint64 { return g.cap }

// Append appends PAN number i (ASCII digits) to dst.
func (g *PANs) Append(dst []byte, i uint64) []byte {
	n := uint64(len(g.streams))
	st := &g.streams[i%n]
	j := i / n
	hi, lo := bits.Mul64(j%st.mod, st.mul)
	v := bits.Rem64(hi, lo, st.mod)
	v += st.off
	if v >= st.mod {
		v -= st.mod
	}
	start := len(dst)
	dst = append(dst, st.prefix...)
	var digits [20]byte
	for d := st.k - 1; d >= 0; d-- {
		digits[d] = byte('0' + v%10)
		v /= 10
	}
	dst = append(dst, digits[:st.k]...)
	// The payload is non-empty ASCII digits by construction.
	check, _ := card.LuhnCheckDigit(dst[start:])
	return append(dst, check)
}

// PAN returns PAN number i as a string.
func (g *PANs) PAN(i uint64) string {
	var buf [20]byte
	return string(g.Append(buf[:0], i))
}

func pow10(k int) uint64 {
	p := uint64(1)
	for range k {
		p *= 10
	}
	return p
}

// splitmix64 is a bijective 64-bit mixer (Steele, Lea, Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
