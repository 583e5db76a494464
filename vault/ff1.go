package vault

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// FF1 coalescing limits. A coalescer has one worker: it takes whatever calls
// are queued when it is free (single items and batch requests), up to
// maxCoalesce items, and runs them as one batch, paying the HSM's fixed
// per-batch cost (about ten calls per PAN length, whatever the batch size)
// once instead of once per call. One worker is enough (a batch of 100 costs
// about what a batch of 1 does) and, on a small machine, several workers
// each grabbing a single call defeat the gathering (measured: 2.9 calls per
// batch with one worker, 1.03 with two, at 16 concurrent callers on 2
// cores). Batch requests go through it too: 64 concurrent requests of 100
// PANs cost 3.0 µs of node CPU per PAN merged, 7.1 µs each on its own.
const (
	maxCoalesce     = MaxBatchItems * 2
	coalesceQueue   = 4096
	coalesceWorkers = 1
)

// Lingering: when cycles keep seeing more than one call (several callers
// are active), a batch waits up to coalesceLinger for twice as many calls as
// the previous batch held (at most lingerBatch). A single sequential caller
// makes exactly one call per cycle, so an idle or sequential client waits
// only in a probe: every probeEvery-th cycle lingers probeLinger to find
// callers whose calls happen not to overlap. Why: on a busy 2-core machine the worker is free again after every
// call, so batches held one or two PANs and each paid the whole HSM cost
// (about ten ECB calls); measured with 64 clients, node CPU per FF1
// tokenization fell from 94 to 57 µs and the rate rose from 16.0k to 22.1k/s
// (docs/performance.md).
const (
	coalesceLinger = 500 * time.Microsecond
	lingerBatch    = 32
	lingerItems    = MaxBatchItems
	probeEvery     = 32
	probeLinger    = 100 * time.Microsecond
)

// ff1Key names one FF1 engine: a scheme under one key version. The key's
// name is not part of it because an FF1 scheme never changes key
// (change-scheme-key refuses FF1 schemes, schemekey.go); if that ever
// changes, the key name must join this key.
type ff1Key struct {
	scheme  string
	version uint32
}

// ff1Engine is the FF1 tokenizer of one scheme and key version, with the
// coalescers that batch concurrent single requests.
type ff1Engine struct {
	tok *scheme.FF1Tokenizer
	enc *coalescer[card.PAN, string]
	dec *coalescer[string, card.PAN]
}

// ff1Registry builds FF1 engines on first use over the HSM's block cipher
// and keeps them for the node's life. Safe for concurrent use.
type ff1Registry struct {
	n       *Node
	mu      sync.RWMutex // read: the lookup of every request; write: building an engine
	m       map[ff1Key]*ff1Engine
	stopped bool

	// Coalescer counters: batches run and single requests they carried.
	batches, items atomic.Uint64
}

func newFF1Registry(n *Node) *ff1Registry {
	return &ff1Registry{n: n, m: make(map[ff1Key]*ff1Engine)}
}

// engine returns the engine of e's key version for use (0: the latest;
// FF1 tokens do not carry their version, see docs/vault-design.md).
func (r *ff1Registry) engine(ctx context.Context, e *schemeEntry, version uint32, use keyUse) (*ff1Engine, error) {
	kv, err := r.n.keyring.resolve(ctx, e.rec.GetKey(), version, vaultpb.KeyPurpose_KEY_PURPOSE_FPE, use)
	if err != nil {
		return nil, err
	}
	k := ff1Key{scheme: e.name(), version: kv.ref.Version}
	r.mu.RLock()
	eng := r.m[k]
	r.mu.RUnlock()
	if eng != nil {
		return eng, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if eng := r.m[k]; eng != nil {
		return eng, nil
	}
	if r.stopped {
		return nil, ErrClosed
	}
	// The block cipher waits for HSM sessions under the node's context, not
	// a request's: the FF1 caches values derived from it for its lifetime.
	bc, err := r.n.hsm.BlockCipher(r.n.ctx, kv.ref)
	if err != nil {
		return nil, err
	}
	f, err := fpe.NewFF1(bc, 10)
	if err != nil {
		return nil, err
	}
	tok, err := scheme.NewFF1Tokenizer(e.s, kv.ref.Version, f)
	if err != nil {
		return nil, err
	}
	eng = &ff1Engine{tok: tok}
	eng.enc = newCoalescer(r, func(pans []card.PAN) ([]string, []error, error) {
		rs, err := tok.TokenizeBatch(pans)
		if err != nil {
			return nil, nil, err
		}
		out, errs := make([]string, len(rs)), make([]error, len(rs))
		for i, x := range rs {
			out[i], errs[i] = x.Token, x.Err
		}
		return out, errs, nil
	})
	eng.dec = newCoalescer(r, func(toks []string) ([]card.PAN, []error, error) {
		rs, err := tok.DetokenizeBatch(toks)
		if err != nil {
			return nil, nil, err
		}
		out, errs := make([]card.PAN, len(rs)), make([]error, len(rs))
		for i, x := range rs {
			out[i], errs[i] = x.PAN, x.Err
			rs[i].PAN.Wipe() // out holds the one copy, wiped where it is read
		}
		return out, errs, nil
	})
	eng.dec.discard = func(pans []card.PAN) {
		for i := range pans {
			pans[i].Wipe()
		}
	}
	r.m[k] = eng
	return eng, nil
}

// stop refuses new engines. Called after the node's context is cancelled,
// which ends every coalescer worker; taking the lock waits for an engine
// being built, so no worker starts after Close waits for them.
func (r *ff1Registry) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// tokenizeFF1 tokenizes items: a single item through the coalescer (so
// concurrent single requests share HSM batches), several as one batch.
func (n *Node) tokenizeFF1(ctx context.Context, e *schemeEntry, items []*tokItem) []tokResult {
	res := make([]tokResult, len(items))
	eng, err := n.ff1.engine(ctx, e, 0, useEncrypt)
	if err != nil {
		for i := range res {
			res[i].err = err
		}
		return res
	}
	version := eng.tok.KeyVersion()
	set := func(i int, tok string, err error) {
		if err != nil {
			res[i].err = err
			return
		}
		res[i].resp = tokenResponse(e, items[i].pan, tok, version, false, 0)
	}
	if len(items) == 1 {
		tok, err := eng.enc.do(ctx, items[0].pan)
		set(0, tok, err)
		return res
	}
	pans := make([]card.PAN, len(items))
	for i, it := range items {
		pans[i] = it.pan
	}
	// Through the coalescer too: concurrent batch requests share HSM
	// calls (each FF1 round of each PAN length is one ECB call).
	toks, errs, err := eng.enc.doMany(ctx, pans)
	for i := range items {
		if err != nil {
			set(i, "", err)
		} else {
			set(i, toks[i], errs[i])
		}
	}
	return res
}

// detokenizeFF1 detokenizes tokens[idx], made by key version version (0:
// the latest), into res.
func (n *Node) detokenizeFF1(ctx context.Context, e *schemeEntry, tokens []string, idx []int, masked bool, version uint32, res []detResult) {
	eng, err := n.ff1.engine(ctx, e, version, useDecrypt)
	if err != nil {
		for _, i := range idx {
			res[i].err = err
		}
		return
	}
	version = eng.tok.KeyVersion()
	batch := make([]string, len(idx))
	for j, i := range idx {
		batch[j] = tokens[i]
	}
	// doMany, also for one token: the PANs are wiped in the slice the
	// coalescer filled (a PAN is an array value: wiping a copy would leave
	// the slice in clear).
	pans, errs, err := eng.dec.doMany(ctx, batch)
	for j, i := range idx {
		switch {
		case err != nil:
			res[i].err = err
		case errs[j] != nil:
			res[i].err = errs[j]
		default:
			res[i].resp = detokenizeResponse(e, pans[j], version, 0, masked)
			pans[j].Wipe()
		}
	}
}

// coalescer turns concurrent calls into batches. A job is one call: a single
// item, or the items of one batch request. Its worker takes the first queued
// job, then everything else already queued (up to maxCoalesce items),
// lingers when several callers are active (see coalesceLinger), runs one
// batch and answers each job. Safe for concurrent use.
type coalescer[In, Out any] struct {
	n        *Node
	r        *ff1Registry
	q        chan *job[In, Out]
	run      func([]In) ([]Out, []error, error)
	linger   time.Duration // coalesceLinger (tests change it)
	arrivals atomic.Uint64 // jobs queued so far
	// discard, when set, is applied to the results of a job whose caller
	// left before they came (detokenize: wipes the PANs nobody will).
	discard func([]Out)
}

// A job's state: pending until the worker answers it or its caller leaves,
// whichever comes first (the other side then knows who owns the results).
const (
	jobPending int32 = iota
	jobAnswered
	jobAbandoned
)

type job[In, Out any] struct {
	in    []In
	out   []Out
	errs  []error
	err   error
	done  chan struct{}
	state atomic.Int32
}

func newCoalescer[In, Out any](r *ff1Registry, run func([]In) ([]Out, []error, error)) *coalescer[In, Out] {
	return newLingeringCoalescer(r, run, coalesceLinger)
}

func newLingeringCoalescer[In, Out any](r *ff1Registry, run func([]In) ([]Out, []error, error), linger time.Duration) *coalescer[In, Out] {
	c := &coalescer[In, Out]{n: r.n, r: r, q: make(chan *job[In, Out], coalesceQueue), run: run, linger: linger}
	for range coalesceWorkers {
		r.n.wg.Add(1)
		go c.work()
	}
	return c
}

// do queues in and waits for its result. The queue is bounded: when it is
// full, do waits for room until ctx ends.
func (c *coalescer[In, Out]) do(ctx context.Context, in In) (Out, error) {
	outs, errs, err := c.doMany(ctx, []In{in})
	if err != nil {
		var zero Out
		return zero, err
	}
	return outs[0], errs[0]
}

// doMany queues the items of one call as one job (at most maxCoalesce) and
// waits for their results, index-aligned; err fails them all.
func (c *coalescer[In, Out]) doMany(ctx context.Context, ins []In) ([]Out, []error, error) {
	if len(ins) == 0 || len(ins) > maxCoalesce {
		return nil, nil, fmt.Errorf("ff1 coalescer: %d items in one call", len(ins))
	}
	j := &job[In, Out]{in: ins, done: make(chan struct{})}
	c.arrivals.Add(1)
	select {
	case c.q <- j:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-c.n.ctx.Done():
		return nil, nil, ErrClosed
	}
	select {
	case <-j.done:
		return j.out, j.errs, j.err
	case <-ctx.Done():
		return j.leave(ctx.Err())
	case <-c.n.ctx.Done():
		return j.leave(ErrClosed)
	}
}

// leave gives up waiting for j: from now on its results are the worker's
// to discard. If the worker answered first, the results are returned after
// all (they are the caller's, and complete).
func (j *job[In, Out]) leave(err error) ([]Out, []error, error) {
	if j.state.CompareAndSwap(jobPending, jobAbandoned) {
		return nil, nil, err
	}
	<-j.done
	return j.out, j.errs, j.err
}

func (c *coalescer[In, Out]) work() {
	defer c.n.wg.Done()
	batch := make([]*job[In, Out], 0, 64)
	ins := make([]In, 0, maxCoalesce)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	last := 1        // jobs in the previous batch
	var conc float64 // moving average of the jobs per cycle beyond one
	lastArrivals := c.arrivals.Load()
	var cycle uint64
	var carry *job[In, Out] // taken from the queue, did not fit the last batch
	for {
		batch, ins = batch[:0], ins[:0]
		items := 0
		add := func(j *job[In, Out]) bool {
			if items > 0 && items+len(j.in) > maxCoalesce {
				carry = j
				return false
			}
			batch = append(batch, j)
			items += len(j.in)
			return true
		}
		if carry != nil {
			j := carry
			carry = nil
			add(j)
		} else {
			select {
			case j := <-c.q:
				add(j)
			case <-c.n.ctx.Done():
				return
			}
		}
	gather:
		for carry == nil && items < maxCoalesce {
			select {
			case j := <-c.q:
				add(j)
			default:
				break gather
			}
		}
		// A single sequential caller makes exactly one call per cycle, so
		// it never lingers. Under concurrency the target doubles from the
		// previous batch, up to what arrives within the linger time.
		// While no concurrency shows, every probeEvery-th cycle waits
		// briefly anyway: callers whose calls never overlap in the queue
		// are found when one arrives during the probe.
		cycle++
		wait := c.linger
		if conc < 0.1 {
			wait = 0
			if cycle%probeEvery == 0 {
				wait = min(c.linger, probeLinger)
			}
		}
		if target := min(2*last, lingerBatch); wait > 0 && carry == nil && len(batch) < target && items < lingerItems {
			linger.Reset(wait)
		wait:
			for carry == nil && len(batch) < target && items < lingerItems {
				select {
				case j := <-c.q:
					add(j)
				case <-linger.C:
					break wait
				case <-c.n.ctx.Done():
					break wait
				}
			}
			linger.Stop()
		}
		arrivals := c.arrivals.Load()
		conc = 0.875*conc + 0.125*float64(max(int64(arrivals-lastArrivals)-1, 0))
		lastArrivals, last = arrivals, len(batch)
		for _, j := range batch {
			ins = append(ins, j.in...)
		}
		c.r.batches.Add(1)
		c.r.items.Add(uint64(len(ins)))
		outs, errs, err := c.safeRun(ins)
		off := 0
		for _, j := range batch {
			n := len(j.in)
			if err != nil {
				j.err = err
			} else {
				j.out, j.errs = outs[off:off+n:off+n], errs[off:off+n:off+n]
			}
			off += n
			if !j.state.CompareAndSwap(jobPending, jobAnswered) && c.discard != nil && j.out != nil {
				c.discard(j.out) // the caller left
			}
			close(j.done)
		}
		clear(ins) // drop PANs held by the scratch slice
	}
}

// safeRun runs one batch, turning a panic into an error for every job so
// that no caller waits forever (the panic value is not kept: it could
// hold input).
func (c *coalescer[In, Out]) safeRun(ins []In) (outs []Out, errs []error, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.n.log.Error("ff1 batch panicked", "items", len(ins))
			outs, errs, err = nil, nil, fmt.Errorf("ff1 batch failed")
		}
	}()
	outs, errs, err = c.run(ins)
	if err == nil && (len(outs) != len(ins) || len(errs) != len(ins)) {
		err = fmt.Errorf("ff1 batch returned %d results for %d items", len(outs), len(ins))
	}
	return outs, errs, err
}
