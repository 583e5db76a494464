package fpe

import (
	"encoding/binary"
	"math/big"
	"math/bits"
)

// run encrypts (enc) or decrypts every xs[i] in place under tweaks[i] (nil
// tweaks: empty tweak for all). Inputs are validated by the caller and all
// have length p.n. xs is written only after every BlockCipher call
// succeeded. general forces the math/big path (tests compare the paths).
//
// With a PassCipher, every call of the run (prefix and rounds) goes through
// one pass, closed before run returns, whatever the outcome.
func (f *FF1) run(w *work, p *plan, enc, general bool, tweaks [][]byte, xs [][]byte) error {
	if f.pc != nil {
		w.pass = f.pc.OpenPass()
		defer w.closePass()
	}
	w.setup(tweaks, len(xs))
	if err := f.prefix(w, p); err != nil {
		return err
	}
	if p.fast && !general {
		return f.runFast(w, p, enc, xs)
	}
	return f.runBig(w, p, enc, xs)
}

// runFast is the uint64 path: radix^v <= 2^63, so b <= 8, d is 8 or 12, and
// a + (y mod m) < 2^64. No allocation and no big.Int.
func (f *FF1) runFast(w *work, p *plan, enc bool, xs [][]byte) error {
	n := len(xs)
	w.a = grow(w.a, n)
	w.b = grow(w.b, n)
	r := uint64(f.radix)
	for i, x := range xs {
		w.a[i] = numUint(x[:p.u], r)
		w.b[i] = numUint(x[p.u:], r)
	}
	ng := len(w.gtw)
	w.hi = grow(w.hi, ng)
	w.lo = grow(w.lo, ng)
	for g := range ng {
		w.hi[g] = binary.BigEndian.Uint64(w.gtx[g][0:8])
		w.lo[g] = binary.BigEndian.Uint64(w.gtx[g][8:16])
	}
	in, out := w.in[:n*BlockSize], w.out[:n*BlockSize]
	a, b, grp, hi, lo := w.a[:n], w.b[:n], w.grp[:n], w.hi, w.lo
	for k := range rounds {
		i := k
		if !enc {
			i = rounds - 1 - k
		}
		m := p.modV
		if i%2 == 0 {
			m = p.modU
		}
		// [i] sits just before the b bytes of NUM(B) in the last block.
		var rhi, rlo uint64
		if p.b == 8 {
			rhi = uint64(i)
		} else {
			rlo = uint64(i) << (8 * p.b)
		}
		// Encryption hashes B, decryption A: the half that is not updated.
		src := b
		if !enc {
			src = a
		}
		for j, g := range grp {
			blk := in[j*BlockSize : j*BlockSize+BlockSize]
			binary.BigEndian.PutUint64(blk[0:8], hi[g]^rhi)
			binary.BigEndian.PutUint64(blk[8:16], lo[g]^rlo^src[j])
		}
		if err := f.encrypt(w, n); err != nil {
			return err
		}
		for j := range grp {
			blk := out[j*BlockSize : j*BlockSize+BlockSize]
			var y uint64
			if p.d == 8 {
				y = binary.BigEndian.Uint64(blk[0:8]) % m
			} else {
				y = bits.Rem64(uint64(binary.BigEndian.Uint32(blk[0:4])), binary.BigEndian.Uint64(blk[4:12]), m)
			}
			if enc {
				c := a[j] + y
				if c >= m {
					c -= m
				}
				a[j], b[j] = b[j], c
			} else {
				c := b[j] - y
				if b[j] < y {
					c += m
				}
				b[j], a[j] = a[j], c
			}
		}
	}
	for i, x := range xs {
		strUint(x[:p.u], a[i], r)
		strUint(x[p.u:], b[i], r)
	}
	return nil
}

// numUint is NUM_radix(x) for values below 2^64.
func numUint(x []byte, r uint64) uint64 {
	var v uint64
	for _, d := range x {
		v = v*r + uint64(d)
	}
	return v
}

// strUint is STR^len(x)_radix(v).
func strUint(x []byte, v, r uint64) {
	if r == 10 { // constant divisor: a multiply instead of a DIV per digit
		for i := len(x) - 1; i >= 0; i-- {
			x[i] = byte(v % 10)
			v /= 10
		}
		return
	}
	for i := len(x) - 1; i >= 0; i-- {
		x[i] = byte(v % r)
		v /= r
	}
}

// runBig is the general path on math/big, written to follow SP 800-38G
// Algorithm 7 and 8 step by step.
func (f *FF1) runBig(w *work, p *plan, enc bool, xs [][]byte) error {
	n := len(xs)
	for len(w.ba) < n {
		w.ba = append(w.ba, new(big.Int))
		w.bb = append(w.bb, new(big.Int))
	}
	a, b := w.ba[:n], w.bb[:n]
	for i, x := range xs {
		f.numBig(w, a[i], x[:p.u])
		f.numBig(w, b[i], x[p.u:])
	}
	in, out := w.in[:n*BlockSize], w.out[:n*BlockSize]
	y, t := &w.y, &w.t
	var num [12]byte
	for k := range rounds {
		i := k
		if !enc {
			i = rounds - 1 - k
		}
		m := p.bigV
		if i%2 == 0 {
			m = p.bigU
		}
		src := b
		if !enc {
			src = a
		}
		// Q's last block: fixed part (XORed with the chaining value) in gtx;
		// add [i]^1 and [NUM(B)]^b.
		for j, g := range w.grp[:n] {
			blk := in[j*BlockSize : j*BlockSize+BlockSize]
			copy(blk, w.gtx[g][:])
			blk[BlockSize-1-p.b] ^= byte(i)
			src[j].FillBytes(num[:p.b])
			for q := range p.b {
				blk[BlockSize-p.b+q] ^= num[q]
			}
		}
		if err := f.encrypt(w, n); err != nil {
			return err
		}
		for j := range n {
			// d <= 16: S is the first d bytes of R.
			y.SetBytes(out[j*BlockSize : j*BlockSize+p.d])
			if enc {
				t.Add(a[j], y)
				a[j].Mod(t, m) // a[j] becomes C
				a[j], b[j] = b[j], a[j]
			} else {
				t.Sub(b[j], y)
				b[j].Mod(t, m) // Euclidean: in [0, m)
				a[j], b[j] = b[j], a[j]
			}
		}
	}
	clear(num[:])
	for i, x := range xs {
		f.strBig(w, x[:p.u], a[i])
		f.strBig(w, x[p.u:], b[i])
	}
	return nil
}

// numBig sets z to NUM_radix(x), a chunk of digits per big.Int operation.
func (f *FF1) numBig(w *work, z *big.Int, x []byte) {
	z.SetUint64(0)
	r := uint64(f.radix)
	c := &w.c
	for len(x) > 0 {
		k := min(f.chunk, len(x))
		pw := uint64(1)
		for range k {
			pw *= r
		}
		z.Mul(z, c.SetUint64(pw))
		z.Add(z, c.SetUint64(numUint(x[:k], r)))
		x = x[k:]
	}
}

// strBig writes STR^len(x)_radix(z) into x; z must be below radix^len(x).
// z is left zero.
func (f *FF1) strBig(w *work, x []byte, z *big.Int) {
	r := uint64(f.radix)
	c, rem := &w.c, &w.rem
	for len(x) > 0 {
		k := min(f.chunk, len(x))
		pw := uint64(1)
		for range k {
			pw *= r
		}
		z.QuoRem(z, c.SetUint64(pw), rem)
		strUint(x[len(x)-k:], rem.Uint64(), r)
		x = x[:len(x)-k]
	}
}
