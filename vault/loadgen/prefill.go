package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// PrefillOptions describe a Prefill. Zero fields take the defaults of the
// same-named Options fields (Concurrency defaults to 16 here). A plain value.
type PrefillOptions struct {
	// Scheme receives the tokens; default "pan".
	Scheme string
	// Count is the number of PANs to tokenize. Required.
	Count int
	// Batch is the number of PANs per TokenizeBatch call; default 100.
	Batch int
	// Concurrency is the number of calls in flight; default 16.
	Concurrency int
	// Seed and First choose the PANs: indexes First..First+Count-1 of
	// NewPANs(Seed). Seed 0 picks a random seed.
	Seed  uint64
	First uint64
	// Timeout bounds each call; default 30s.
	Timeout time.Duration
	// Progress, if set, gets a line with the count stored so far every
	// ProgressInterval (default 10s).
	Progress         io.Writer
	ProgressInterval time.Duration
}

// PrefillResult says what a Prefill stored.
type PrefillResult struct {
	Seed    uint64
	Stored  int // PANs tokenized
	Elapsed time.Duration
}

// Prefill tokenizes Count PANs with TokenizeBatch, spreading calls over
// conns, to fill a vault before a measurement (the "5,000,000 tokens stored"
// workload). It stops at the first failed call or item: a prefill that
// silently stored less than asked would mislabel the measurement. Errors
// name the gRPC code, never a PAN.
func Prefill(ctx context.Context, conns []grpc.ClientConnInterface, o PrefillOptions) (PrefillResult, error) {
	if o.Scheme == "" {
		o.Scheme = DefaultScheme
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = randomSeed()
	}
	switch {
	case o.Count < 1:
		return PrefillResult{}, fmt.Errorf("%w: prefill count %d", ErrInvalidOptions, o.Count)
	case o.Batch < 1 || o.Batch > MaxBatch:
		return PrefillResult{}, fmt.Errorf("%w: batch %d outside 1..%d", ErrInvalidOptions, o.Batch, MaxBatch)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return PrefillResult{}, fmt.Errorf("%w: concurrency %d outside 1..%d", ErrInvalidOptions, o.Concurrency, MaxConcurrency)
	case o.Timeout < 0:
		return PrefillResult{}, fmt.Errorf("%w: negative timeout", ErrInvalidOptions)
	}
	start := time.Now()
	var done atomic.Int64
	if o.Progress != nil {
		every := o.ProgressInterval
		if every <= 0 {
			every = 10 * time.Second
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					n := done.Load()
					fmt.Fprintf(o.Progress, "prefill %s/%s tokens, %s/s\n", groupDigits(uint64(n)), groupDigits(uint64(o.Count)),
						groupDigits(uint64(float64(n)/time.Since(start).Seconds())))
				case <-stop:
					return
				}
			}
		}()
	}
	stored, err := tokenizeRange(ctx, conns, o, &done, nil)
	return PrefillResult{Seed: o.Seed, Stored: stored, Elapsed: time.Since(start)}, err
}

// tokenizeRange tokenizes PANs First..First+Count-1 of NewPANs(Seed) in
// batches, and calls keep (if not nil) with each PAN's offset in the range
// and its token. keep may be called from several goroutines, but never twice
// for one offset.
func tokenizeRange(ctx context.Context, conns []grpc.ClientConnInterface, o PrefillOptions, stored *atomic.Int64, keep func(off int, token string)) (int, error) {
	if len(conns) == 0 {
		return 0, ErrNoTargets
	}
	pans := NewPANs(o.Seed)
	clients := make([]pb.TokenServiceClient, len(conns))
	for i, c := range conns {
		clients[i] = pb.NewTokenServiceClient(c)
	}
	batches := (o.Count + o.Batch - 1) / o.Batch
	var next atomic.Int64
	if stored == nil {
		stored = new(atomic.Int64)
	}
	g, gctx := errgroup.WithContext(ctx)
	for w := range min(o.Concurrency, batches) {
		client := clients[w%len(clients)]
		g.Go(func() error {
			for {
				b := int(next.Add(1) - 1)
				if b >= batches {
					return nil
				}
				lo, hi := b*o.Batch, min((b+1)*o.Batch, o.Count)
				items := make([]*pb.TokenizeBatchItem, hi-lo)
				for i := range items {
					items[i] = &pb.TokenizeBatchItem{Pan: pans.PAN(o.First + uint64(lo+i))}
				}
				cctx, cancel := context.WithTimeout(gctx, o.Timeout)
				resp, err := client.TokenizeBatch(cctx, &pb.TokenizeBatchRequest{Scheme: o.Scheme, Items: items})
				cancel()
				if err != nil {
					return fmt.Errorf("tokenize batch: %s: %w", status.Code(err), err)
				}
				if len(resp.GetResults()) != len(items) {
					return fmt.Errorf("tokenize batch: %d results for %d items", len(resp.GetResults()), len(items))
				}
				for i, r := range resp.GetResults() {
					if e := r.GetError(); e != nil {
						return fmt.Errorf("tokenize batch item: %s (%s)", codes.Code(uint32(e.GetCode())), e.GetReason())
					}
					if keep != nil {
						keep(lo+i, r.GetSuccess().GetToken())
					}
				}
				stored.Add(int64(len(items)))
			}
		})
	}
	err := g.Wait()
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSetup, err)
	}
	return int(stored.Load()), err
}

// buildPool tokenizes o.PoolSize PANs for OpDetokenize. The pool uses the
// top of the generator's index space, which a run's own calls never reach.
func buildPool(ctx context.Context, conns []grpc.ClientConnInterface, o Options) ([]poolEntry, error) {
	pans := NewPANs(o.Seed)
	first := pans.Capacity() - uint64(o.PoolSize)
	pool := make([]poolEntry, o.PoolSize)
	_, err := tokenizeRange(ctx, conns, PrefillOptions{
		Scheme: o.Scheme, Count: o.PoolSize, Batch: DefaultBatch, Concurrency: min(o.Concurrency, 16),
		Seed: o.Seed, First: first, Timeout: 30 * time.Second,
	}, nil, func(off int, token string) {
		pool[off] = poolEntry{token: token, pan: pans.PAN(first + uint64(off))}
	})
	if err != nil {
		return nil, fmt.Errorf("detokenize pool: %w", err)
	}
	return pool, nil
}
