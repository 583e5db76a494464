package fpe

import (
	"math/big"
)

// work is the scratch of one call. It comes from FF1.pool and is cleared
// before it goes back, so no numeral or round value outlives the call.
type work struct {
	in, out []byte // BlockCipher input and output, 16 bytes per block
	pass    Pass   // the run's pass (PassCipher only), nil outside run

	grp    []int32           // item -> tweak group
	gtw    [][]byte          // group -> tweak (aliases caller memory)
	gtx    [][BlockSize]byte // group -> last Q block template XOR chaining value
	gst    [][BlockSize]byte // group -> CBC-MAC state during the prefix
	gpos   []int             // group -> next prefix block index
	gend   []int             // group -> number of prefix blocks
	gidx   map[string]int32  // tweak -> group, for batches
	hi     []uint64          // fast path: gtx as two big-endian words
	lo     []uint64          //
	a, b   []uint64          // fast path: the Feistel halves
	ba     []*big.Int        // general path: the Feistel halves
	bb     []*big.Int        //
	y, t   big.Int           // general path scratch
	c, rem big.Int           // general path scratch (conversions)
	nbuf   []byte            // numerals of the string API
	tw1    [1][]byte         // single-item views, reset by putWork
	x1     [1][]byte         //
}

func (f *FF1) getWork() *work { return f.pool.Get().(*work) }

// closePass closes and forgets the run's pass.
func (w *work) closePass() {
	p := w.pass
	w.pass = nil
	p.Close()
}

func (f *FF1) putWork(w *work) {
	clear(w.in)
	clear(w.out)
	clear(w.a)
	clear(w.b)
	clear(w.nbuf)
	for i := range w.ba {
		wipe(w.ba[i])
		wipe(w.bb[i])
	}
	wipe(&w.y)
	wipe(&w.t)
	wipe(&w.c)
	wipe(&w.rem)
	clear(w.gtw) // drop references to caller memory
	clear(w.gidx)
	w.tw1[0], w.x1[0] = nil, nil
	f.pool.Put(w)
}

// grow returns s resized to n elements, reusing its array when possible.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

func (w *work) numerals(n int) []byte {
	w.nbuf = grow(w.nbuf, n)
	return w.nbuf
}

// setup sizes the buffers for n items and assigns items to tweak groups.
func (w *work) setup(tweaks [][]byte, n int) {
	w.in = grow(w.in, n*BlockSize)
	w.out = grow(w.out, n*BlockSize)
	w.grp = grow(w.grp, n)
	w.gtw = w.gtw[:0]
	switch {
	case tweaks == nil:
		w.gtw = append(w.gtw, nil)
		clear(w.grp)
	case n == 1:
		w.gtw = append(w.gtw, tweaks[0])
		w.grp[0] = 0
	default:
		if w.gidx == nil {
			w.gidx = make(map[string]int32)
		}
		for i, tw := range tweaks {
			// Most batches share one tweak: skip the map on a repeat.
			if i > 0 && string(tw) == string(tweaks[i-1]) {
				w.grp[i] = w.grp[i-1]
				continue
			}
			g, ok := w.gidx[string(tw)]
			if !ok {
				g = int32(len(w.gtw))
				w.gidx[string(tw)] = g
				w.gtw = append(w.gtw, tw)
			}
			w.grp[i] = g
		}
	}
	ng := len(w.gtw)
	w.gtx = grow(w.gtx, ng)
	w.gst = grow(w.gst, ng)
	w.gpos = grow(w.gpos, ng)
	w.gend = grow(w.gend, ng)
	if ng > n { // the prefix encrypts one block per group
		w.in = grow(w.in, ng*BlockSize)
		w.out = grow(w.out, ng*BlockSize)
	}
}

// wipe zeroes z's whole backing array (not only its current length, which
// may be shorter than what earlier values used) and sets z to 0.
func wipe(z *big.Int) {
	b := z.Bits()
	clear(b[:cap(b)])
	z.SetUint64(0)
}
