package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/panvault/panvault/vault/loadgen"
	"github.com/panvault/panvault/vault/loadgen/rawlimits"
)

// runBenchMatrix runs the benchmark of issue #6: raw limits first (nothing
// else running), then every workload of loadgen.DefaultMatrix on local
// 3-node clusters, and writes the markdown report.
func runBenchMatrix(ctx context.Context, io *stdio, f *benchFlags) error {
	started := time.Now()
	res := loadgen.Results{
		Date:    started,
		Command: f.command,
		Machine: fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
	}
	if f.micro != "" {
		fh, err := os.Open(f.micro)
		if err != nil {
			return &usageError{fmt.Errorf("--micro: %w", err)}
		}
		res.Micro, err = loadgen.ParseGoBench(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("--micro %s: %w", f.micro, err)
		}
		res.MicroCommand = f.microCmd
	}
	matrix, err := selectWorkloads(loadgen.DefaultMatrix(loadgen.MatrixTiming{Duration: f.duration, Warmup: f.warmup}), f.only, f.skip)
	if err != nil {
		return &usageError{err}
	}

	work := f.dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "panvault-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}

	fmt.Fprintf(io.err, "raw limits...\n")
	res.Raw, err = rawlimits.Measure(ctx, rawlimits.Options{Dir: work, Duration: f.rawDur, Log: io.err})
	if err != nil {
		return fmt.Errorf("raw limits: %w", err)
	}
	var names []string
	for _, r := range res.Raw {
		names = append(names, r.Name)
	}
	if err := loadgen.Validate(matrix, names); err != nil {
		return err
	}

	pool := &clusterPool{io: io, dir: work, pprof: f.profileDir != "", tune: f.tune}
	defer pool.close()
	var cpu *cpuMeter
	res.Workloads = loadgen.RunMatrix(ctx, matrix, loadgen.MatrixOptions{
		Connect: pool.connect,
		Before: func(_ context.Context, w loadgen.Workload) error {
			cpu = pool.current.startCPU(w.Options.Warmup)
			return nil
		},
		Extra: func(_ context.Context, _ loadgen.Workload, r *loadgen.Report) (map[loadgen.Metric]float64, error) {
			out, err := cpu.stop(r.Items)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = map[loadgen.Metric]float64{}
			}
			rss, anon, err := pool.current.maxRSS()
			if err != nil {
				return nil, err
			}
			out[loadgen.MetricMaxRSS], out[loadgen.MetricMaxAnonRSS] = float64(rss), float64(anon)
			return out, nil
		},
		PrefillBatch:       f.prefillB,
		PrefillConcurrency: f.prefillC,
		Progress:           io.err,
	})
	if err := pool.close(); err != nil {
		fmt.Fprintf(io.err, "panvault: stopping the local cluster: %v\n", err)
	}
	res.Notes = append(res.Notes, matrixNotes(res, time.Since(started))...)
	if left := leftOut(matrix); left != "" {
		res.Notes = append(res.Notes, "Not in this run: "+left+".")
	}
	res.Notes = append(res.Notes, f.notes...)

	out, err := os.Create(f.out)
	if err != nil {
		return err
	}
	if err := loadgen.WriteMarkdown(out, res); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	fmt.Fprintf(io.err, "wrote %s in %.0fs\n", f.out, time.Since(started).Seconds())
	for _, w := range res.Workloads {
		if w.Err != nil {
			return &exitError{code: 1, err: fmt.Errorf("workload %s: %w", w.Workload.ID, w.Err)}
		}
	}
	return nil
}

// selectWorkloads applies --only and --skip.
func selectWorkloads(all []loadgen.Workload, only, skip string) ([]loadgen.Workload, error) {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	ids := map[string]bool{}
	for _, w := range all {
		ids[w.ID] = true
	}
	onlyIDs, skipIDs := split(only), split(skip)
	for _, id := range append(slices.Clone(onlyIDs), skipIDs...) {
		if !ids[id] {
			return nil, fmt.Errorf("unknown workload %q", id)
		}
	}
	var out []loadgen.Workload
	for _, w := range all {
		if (len(onlyIDs) == 0 || slices.Contains(onlyIDs, w.ID)) && !slices.Contains(skipIDs, w.ID) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workload selected")
	}
	return out, nil
}

// clusterPool gives every workload of the matrix a fresh local cluster
// (about two seconds to start): what one workload stored, the heap it grew
// and the state commits it left pending would otherwise weigh on the next
// (measured: node CPU per item of the workloads after tokenize-batch rose by
// 30-45% on a shared cluster), and a prefilled workload must hold exactly
// its prefill. One cluster runs at a time; its data directory is removed
// when the next starts. Not safe for concurrent use (RunMatrix runs
// workloads one after the other).
type clusterPool struct {
	io      *stdio
	dir     string
	pprof   bool
	tune    clusterTuning
	n       int
	current *benchTarget
	curDir  string
}

func (p *clusterPool) connect(ctx context.Context, w loadgen.Workload) ([]grpc.ClientConnInterface, func() error, error) {
	if err := p.close(); err != nil {
		return nil, nil, err
	}
	p.n++
	dir := filepath.Join(p.dir, fmt.Sprintf("cluster%d", p.n))
	t, err := openTarget(ctx, p.io, nil, w.Nodes, dir, p.pprof, p.tune)
	if err != nil {
		return nil, nil, err
	}
	p.current, p.curDir = t, dir
	return t.conns, p.close, nil
}

// close stops the current cluster and removes its directory.
func (p *clusterPool) close() error {
	if p.current == nil {
		return nil
	}
	err := errors.Join(p.current.close(), os.RemoveAll(p.curDir))
	p.current = nil
	return err
}

// leftOut names the workloads of the default matrix that are not in m.
func leftOut(m []loadgen.Workload) string {
	var out []string
	for _, w := range loadgen.DefaultMatrix(loadgen.MatrixTiming{}) {
		if !slices.ContainsFunc(m, func(x loadgen.Workload) bool { return x.ID == w.ID }) {
			out = append(out, w.Title)
		}
	}
	return strings.Join(out, "; ")
}

// matrixNotes are the paragraphs under the report's heading.
func matrixNotes(res loadgen.Results, took time.Duration) []string {
	notes := []string{
		fmt.Sprintf("Whole run: %s. Every cluster is three `panvault server` processes on this one machine "+
			"(SoftHSM token each, mutual TLS 1.3 between clients and nodes and between nodes, raft-boltdb and bbolt "+
			"with fsync), plus the load generator: all of them share the same CPUs. "+
			"The machine may be shared with other work, so absolute figures are noisy; the ratios to raw limits "+
			"measured in the same run are the comparable part.", took.Round(time.Second)),
	}
	return notes
}
