package rawlimits

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// Rate is what a timed probe measured: operations completed, the time they
// took and their latency distribution. A plain value.
type Rate struct {
	Goroutines int
	Ops        int64
	Elapsed    time.Duration
	PerSec     float64
	Latency    latency.Summary
}

// timed runs op from goroutines goroutines, each with its own latency
// recorder, for d (or until ctx ends), and merges what they measured. op gets
// the goroutine's index and its own call number. The first error stops every
// goroutine and is returned, wrapped in ErrProbe: a raw limit measured with
// failures would not be one.
func timed(ctx context.Context, d time.Duration, goroutines int, op func(ctx context.Context, g int, n int64) error) (Rate, error) {
	if goroutines < 1 || d <= 0 {
		return Rate{}, fmt.Errorf("%w: %d goroutines for %v", ErrInvalidOptions, goroutines, d)
	}
	recs := make([]*latency.Recorder, goroutines)
	for i := range recs {
		recs[i] = latency.New()
	}
	eg, ectx := errgroup.WithContext(ctx)
	start := time.Now()
	end := start.Add(d)
	for g := range goroutines {
		eg.Go(func() error {
			rec := recs[g]
			for n := int64(0); ; n++ {
				t0 := time.Now()
				if !t0.Before(end) || ectx.Err() != nil {
					return nil
				}
				if err := op(ectx, g, n); err != nil {
					return err
				}
				rec.Record(time.Since(t0))
			}
		})
	}
	err := eg.Wait()
	elapsed := time.Since(start)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return Rate{}, fmt.Errorf("%w: %w", ErrProbe, err)
	}
	merged := latency.Merged(recs...)
	r := Rate{Goroutines: goroutines, Ops: merged.Count(), Elapsed: elapsed, Latency: merged.Summary()}
	if s := elapsed.Seconds(); s > 0 {
		r.PerSec = float64(r.Ops) / s
	}
	return r, nil
}
