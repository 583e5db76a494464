package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
)

// MatrixOptions tell RunMatrix how to reach a cluster and what to measure
// besides the Report. Connect is required.
type MatrixOptions struct {
	// Connect returns connections (one per node) to the cluster workload w
	// runs against, and a release function called when w is done. The driver
	// chooses whether workloads share one cluster or get fresh ones (the
	// prefilled workload should not follow others that stored tokens of
	// their own, and vice versa).
	Connect func(ctx context.Context, w Workload) (conns []grpc.ClientConnInterface, release func() error, err error)
	// Before, if set, is called just before each workload's Run (after its
	// prefill), for example to start measuring the nodes' CPU time.
	Before func(ctx context.Context, w Workload) error
	// Extra, if set, is called after each measured workload with its
	// report, before release, for metrics Run cannot see (MetricMaxRSS and
	// MetricNodeCPU from the node processes).
	Extra func(ctx context.Context, w Workload, r *Report) (map[Metric]float64, error)
	// PrefillBatch and PrefillConcurrency tune Prefill (defaults 500 and 16).
	PrefillBatch, PrefillConcurrency int
	// Progress receives each workload's progress line and a line per
	// workload started; nil means none.
	Progress io.Writer
}

// RunMatrix runs the workloads in order and returns one result per workload.
// A workload that fails (cannot connect, prefill or run) records its error
// and the matrix goes on; only the end of ctx stops it early, and then the
// remaining workloads are returned with ctx's error.
func RunMatrix(ctx context.Context, matrix []Workload, o MatrixOptions) []WorkloadResult {
	out := make([]WorkloadResult, 0, len(matrix))
	for _, w := range matrix {
		if ctx.Err() != nil {
			out = append(out, WorkloadResult{Workload: w, Err: ctx.Err()})
			continue
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "workload %s: %s\n", w.ID, w.Title)
		}
		out = append(out, runWorkload(ctx, w, o))
	}
	return out
}

func runWorkload(ctx context.Context, w Workload, o MatrixOptions) (res WorkloadResult) {
	res.Workload = w
	if o.Connect == nil {
		res.Err = fmt.Errorf("%w: no Connect function", ErrMatrix)
		return res
	}
	conns, release, err := o.Connect(ctx, w)
	if err != nil {
		res.Err = fmt.Errorf("connect: %w", err)
		return res
	}
	if release != nil {
		defer func() {
			if rerr := release(); rerr != nil {
				res.Err = errors.Join(res.Err, fmt.Errorf("release: %w", rerr))
			}
		}()
	}
	if w.Prefill > 0 {
		batch, conc := o.PrefillBatch, o.PrefillConcurrency
		if batch == 0 {
			batch = 500
		}
		if _, err := Prefill(ctx, conns, PrefillOptions{Scheme: w.Options.Scheme, Count: w.Prefill, Batch: batch, Concurrency: conc,
			Progress: o.Progress}); err != nil {
			res.Err = fmt.Errorf("prefill %d: %w", w.Prefill, err)
			return res
		}
	}
	opts := w.Options
	opts.Progress = o.Progress
	if o.Before != nil {
		if err := o.Before(ctx, w); err != nil {
			res.Err = fmt.Errorf("before: %w", err)
			return res
		}
	}
	res.Report, res.Err = Run(ctx, opts, conns)
	if o.Extra != nil && res.Report != nil {
		extra, err := o.Extra(ctx, w, res.Report)
		if err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("extra metrics: %w", err))
		}
		res.Extra = extra
	}
	return res
}
