package fpe

import (
	"fmt"
	"sync/atomic"
)

// pCacheTweaks: CIPH(P) is cached per plan for tweak lengths 0..31. P holds
// only public parameters (radix, lengths), so the cached value reveals
// nothing about any input.
const pCacheTweaks = 32

type pCacheEntry struct {
	v atomic.Pointer[[BlockSize]byte]
}

func (p *plan) cachedP(t int) (*[BlockSize]byte, bool) {
	if t >= pCacheTweaks {
		return nil, false
	}
	v := p.pc[t].v.Load()
	return v, v != nil
}

func (p *plan) storeP(t int, v [BlockSize]byte) {
	if t < pCacheTweaks {
		p.pc[t].v.Store(&v)
	}
}

// encrypt runs one BlockCipher call over the first nblocks blocks of w.in,
// through the call's pass if it has one.
func (f *FF1) encrypt(w *work, nblocks int) error {
	dst, src := w.out[:nblocks*BlockSize], w.in[:nblocks*BlockSize]
	var err error
	if w.pass != nil {
		err = w.pass.EncryptBlocks(dst, src)
	} else {
		err = f.c.EncryptBlocks(dst, src)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCipher, err)
	}
	return nil
}

// prefix computes, for every tweak group, the CBC-MAC chaining value after
// P and the leading blocks of Q that hold only tweak and padding, and stores
// in w.gtx the last block of Q with its fixed bytes, XORed with that value.
// A round then only XORs [i] and NUM(B) into w.gtx and encrypts one block.
//
// All groups advance in lockstep, one BlockCipher call per step, so the cost
// is the longest group's chain, not the sum over groups.
func (f *FF1) prefix(w *work, p *plan) error {
	steps := 0
	for g, tw := range w.gtw {
		w.gst[g] = [BlockSize]byte{}
		w.gpos[g] = 0
		w.gend[g] = 1 + p.fixedQBlocks(len(tw))
		if c, ok := p.cachedP(len(tw)); ok {
			w.gst[g] = *c
			w.gpos[g] = 1
		}
		steps = max(steps, w.gend[g]-w.gpos[g])
	}
	for range steps {
		nb := 0
		for g, tw := range w.gtw {
			j := w.gpos[g]
			if j >= w.gend[g] {
				continue
			}
			var blk [BlockSize]byte
			if j == 0 {
				blk = p.pBlock(len(tw))
			} else {
				blk = qBlock(tw, j-1)
			}
			dst := w.in[nb*BlockSize : (nb+1)*BlockSize]
			for k := range blk {
				dst[k] = blk[k] ^ w.gst[g][k]
			}
			nb++
		}
		if err := f.encrypt(w, nb); err != nil {
			return err
		}
		nb = 0
		for g, tw := range w.gtw {
			j := w.gpos[g]
			if j >= w.gend[g] {
				continue
			}
			copy(w.gst[g][:], w.out[nb*BlockSize:])
			if j == 0 {
				p.storeP(len(tw), w.gst[g])
			}
			w.gpos[g]++
			nb++
		}
	}
	for g, tw := range w.gtw {
		// The last block of Q is block index gend-1 of Q (gend counts P).
		last := qBlock(tw, w.gend[g]-1)
		for k := range last {
			w.gtx[g][k] = last[k] ^ w.gst[g][k]
		}
	}
	return nil
}

// qBlock returns block j of T || [0]^pad || [0] || [0]^b, which is Q with
// the round number and NUM(B) left as zeros.
func qBlock(tweak []byte, j int) (blk [BlockSize]byte) {
	if off := j * BlockSize; off < len(tweak) {
		copy(blk[:], tweak[off:])
	}
	return blk
}
