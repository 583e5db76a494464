package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// worker is one goroutine's state. Everything but live is owned by the
// worker goroutine until Run has waited for it; live is read by the
// progress reporter.
type worker struct {
	c        caller
	rec      *latency.Recorder
	ops      uint64
	items    uint64
	failed   map[codes.Code]uint64
	itemErrs map[int32]uint64
	mismatch uint64

	live struct {
		calls  atomic.Uint64 // calls finished, warmup included
		errors atomic.Uint64 // of which failed or mismatched
	}
}

// window is the schedule of a run.
type window struct {
	start, measure, end time.Time
}

// Run drives the workload o against conns (one connection per node is the
// intended use; workers are spread over them round-robin) and returns what it
// measured. Setup (the detokenize token pool) happens before the warmup and
// is not measured. Calls that start during the warmup are not counted; calls
// that start before the end are completed and counted, and the rates divide
// by the time from the end of the warmup until the last call finished.
//
// Only successful calls enter the latency histogram; failed calls are
// counted by gRPC code, and items a batch reply refused by their own code.
// When ctx ends early Run returns what it measured so far, marked
// Interrupted, together with ctx's error.
func Run(ctx context.Context, o Options, conns []grpc.ClientConnInterface) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(conns) == 0 {
		return nil, ErrNoTargets
	}
	if o.Seed == 0 {
		o.Seed = randomSeed()
	}
	pans := NewPANs(o.Seed)
	var pool []poolEntry
	if o.Op == OpDetokenize {
		if pool, err = buildPool(ctx, conns, o); err != nil {
			return nil, err
		}
	}
	workers := make([]*worker, o.Concurrency)
	for i := range workers {
		workers[i] = &worker{
			c:        newCaller(o, conns[i%len(conns)], i, pans, pool),
			rec:      latency.New(),
			failed:   make(map[codes.Code]uint64),
			itemErrs: make(map[int32]uint64),
		}
	}

	now := time.Now()
	win := window{start: now, measure: now.Add(o.Warmup), end: now.Add(o.Warmup + o.Duration)}
	stopProgress := startProgress(o, win, workers)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(ctx, win, o.Timeout) })
	}
	wg.Wait()
	finished := time.Now()
	stopProgress()

	r := newReport(o, len(conns), workers, finished.Sub(win.measure))
	if ended(ctx) {
		r.Interrupted = true
		if ctx.Err() == nil {
			return r, context.DeadlineExceeded
		}
		return r, ctx.Err()
	}
	return r, nil
}

// loop sends calls until the window ends or ctx is done.
func (w *worker) loop(ctx context.Context, win window, timeout time.Duration) {
	for n := uint64(0); ; n++ {
		start := time.Now()
		if !start.Before(win.end) || ended(ctx) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := w.c.call(cctx, n)
		cancel()
		lat := time.Since(start)
		if ended(ctx) {
			// Interrupted by the caller: this outcome says nothing about
			// the server.
			return
		}
		w.live.calls.Add(1)
		if err != nil || res.mismatch {
			w.live.errors.Add(1)
		}
		if start.Before(win.measure) {
			continue
		}
		switch {
		case err != nil:
			w.failed[status.Code(err)]++
		case res.mismatch:
			w.mismatch++
		default:
			w.rec.Record(lat)
			w.ops++
			w.items += uint64(res.items)
			for _, c := range res.itemErrs {
				w.itemErrs[c]++
			}
		}
	}
}

// ended reports whether ctx is done or past its deadline. A deadline can
// pass a little before ctx.Err() says so (its timer has not fired yet), and a
// call made then fails at once with DeadlineExceeded: that is the caller's
// deadline, not the server's failure.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// newReport merges the workers' results. Call it only after every worker has
// returned.
func newReport(o Options, targets int, workers []*worker, elapsed time.Duration) *Report {
	r := &Report{
		Op: o.Op, Concurrency: o.Concurrency, Batch: o.Batch, Targets: targets, Seed: o.Seed,
		Warmup: o.Warmup, Duration: o.Duration, Elapsed: max(elapsed, 0),
		Errors: map[string]uint64{}, ItemErrors: map[string]uint64{},
	}
	if o.Op == OpSign {
		r.Key = o.Key
	} else {
		r.Scheme = o.Scheme
	}
	recs := make([]*latency.Recorder, len(workers))
	for i, w := range workers {
		recs[i] = w.rec
		r.Ops += w.ops
		r.Items += w.items
		r.Mismatches += w.mismatch
		for c, n := range w.failed {
			r.Errors[c.String()] += n
			r.Failed += n
		}
		for c, n := range w.itemErrs {
			r.ItemErrors[itemCodeName(c)] += n
			r.FailedItems += n
		}
	}
	merged := latency.Merged(recs...)
	r.Latency = merged.Summary()
	r.Clamped = uint64(merged.Clamped())
	if s := r.Elapsed.Seconds(); s > 0 {
		r.OpsPerSec = float64(r.Ops) / s
		r.ItemsPerSec = float64(r.Items) / s
	}
	return r
}

// itemCodeName names the code of a refused batch item.
func itemCodeName(c int32) string {
	if c == missingResult {
		return "NoResult"
	}
	if c < 0 {
		return fmt.Sprintf("Code(%d)", c)
	}
	return codes.Code(uint32(c)).String()
}

// randomSeed returns a non-zero seed.
func randomSeed() uint64 {
	for {
		if s := rand.Uint64(); s != 0 {
			return s
		}
	}
}
