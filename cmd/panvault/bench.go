package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/panvault/panvault/vault/loadgen"
	"github.com/panvault/panvault/vault/loadgen/rawlimits"
)

// benchFlags are the flags of `panvault bench`.
type benchFlags struct {
	local      int
	dir        string
	op         string
	conc       int
	duration   time.Duration
	warmup     time.Duration
	batch      int
	scheme     string
	key        string
	seed       uint64
	poolSize   int
	stale      bool
	prefill    int
	prefillB   int
	prefillC   int
	profileDir string
	tune       clusterTuning

	raw      string
	rawDur   time.Duration
	matrix   bool
	out      string
	micro    string
	microCmd string
	only     string
	skip     string
	command  string
	notes    []string
}

func newBenchCmd(io *stdio, cf *clientFlags) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench [--local N] --op OP [--concurrency C] [--duration D] [--warmup W] [--batch B]",
		Short: "Measure a cluster's throughput and latency (load generator)",
		Long: `Drive a cluster over its public gRPC API and report ops/s, items/s, latency
percentiles (p50, p90, p99, p99.9, max from an HDR histogram) and failed calls
by gRPC code. Target: the cluster named by the PANVAULT_* variables (client
identity), or --local N to start a throwaway N-node cluster on SoftHSM in a
temporary directory (removed afterwards).

  --op tokenize        vaulted Tokenize, one PAN per call (scheme pan)
  --op tokenize-ff1    FF1 Tokenize (scheme pan-ff1)
  --op tokenize-batch  TokenizeBatch with --batch PANs (--scheme pan-ff1 for FF1)
  --op detokenize      Detokenize of a pool of tokens made first (not measured)
  --op sign            ECDSA P-256 Sign of 256-byte messages (key payments-p256)

Workers each keep one call in flight, spread over one connection per node.
The PANs are synthetic Luhn-valid test numbers; none is printed.

--raw [PROBES] measures the raw limits instead (write+fdatasync, SoftHSM,
gRPC round trip, hashicorp/raft on three nodes): "all" or a comma-separated
list of fsync, hsm, grpc, raft.

--matrix runs the whole benchmark of issue #6 (raw limits, then every cluster
workload on local 3-node clusters) and writes --out (BENCHMARKS.md), adding the
Go micro-benchmarks parsed from --micro (output of "go test -bench"). This is
what "make bench" runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			switch {
			case f.matrix:
				return runBenchMatrix(ctx, io, f)
			case f.raw != "":
				return runBenchRaw(ctx, io, cf, f)
			}
			return runBench(ctx, io, cf, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.local, "local", 0, "start a local cluster of N nodes in a temporary directory (default: the PANVAULT_* cluster)")
	fl.StringVar(&f.dir, "dir", "", "with --local: keep the cluster in DIR instead of a removed temporary directory; with --matrix or --raw: work directory (each workload's cluster is removed after it)")
	fl.StringVar(&f.op, "op", string(loadgen.OpTokenize), "workload: "+opNames())
	fl.IntVar(&f.conc, "concurrency", loadgen.DefaultConcurrency, "concurrent callers, each with one call in flight")
	fl.DurationVar(&f.duration, "duration", loadgen.DefaultDuration, "measured time (after the warmup)")
	fl.DurationVar(&f.warmup, "warmup", 2*time.Second, "load before measuring (not counted)")
	fl.IntVar(&f.batch, "batch", loadgen.DefaultBatch, "PANs per TokenizeBatch call (--op tokenize-batch)")
	fl.StringVar(&f.scheme, "scheme", "", `token scheme (default "pan", "pan-ff1" for tokenize-ff1)`)
	fl.StringVar(&f.key, "signing-key", loadgen.DefaultSigningKey, "signing key of --op sign")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the PAN sequence (0: random, reported)")
	fl.IntVar(&f.poolSize, "pool-size", loadgen.DefaultPoolSize, "tokens made before a detokenize run")
	fl.BoolVar(&f.stale, "stale", false, "detokenize with stale (local) reads instead of linearizable ones")
	fl.IntVar(&f.prefill, "prefill", 0, "tokenize this many PANs (TokenizeBatch) before measuring")
	fl.IntVar(&f.prefillB, "prefill-batch", 500, "PANs per TokenizeBatch call of the prefill")
	fl.IntVar(&f.prefillC, "prefill-concurrency", 16, "calls in flight during the prefill")
	fl.StringVar(&f.profileDir, "profile-dir", "", "with --local: write a CPU profile of every node during the measured window to DIR")
	fl.IntVar(&f.tune.maxBatch, "node-max-batch", 0, "with --local/--matrix: raft.max_batch_commands of the nodes (0: server default)")
	fl.IntVar(&f.tune.maxInflight, "node-max-inflight", 0, "with --local/--matrix: raft.max_inflight_batches of the nodes (0: server default)")
	fl.IntVar(&f.tune.hsmPool, "node-hsm-pool", 0, "with --local/--matrix: hsm.pool_size of the nodes (0: server default)")
	fl.DurationVar(&f.tune.stateCommit, "node-state-commit", 0, "with --local/--matrix: raft.state_commit_interval of the nodes (0: server default)")
	fl.StringVar(&f.raw, "raw", "", `measure raw limits instead: "all" or probes `+strings.Join(rawlimits.Probes(), ","))
	fl.DurationVar(&f.rawDur, "raw-duration", 0, "time of each raw measurement (default: each probe's own)")
	fl.BoolVar(&f.matrix, "matrix", false, "run the whole benchmark matrix and write --out")
	fl.StringVar(&f.out, "out", "BENCHMARKS.md", "with --matrix: the markdown file to write")
	fl.StringVar(&f.micro, "micro", "", "with --matrix: a file of `go test -bench` output to include")
	fl.StringVar(&f.microCmd, "micro-command", "", "with --matrix: the command that produced --micro, for the table")
	fl.StringVar(&f.only, "only", "", "with --matrix: comma-separated workload ids to run (default all)")
	fl.StringVar(&f.skip, "skip", "", "with --matrix: comma-separated workload ids to leave out")
	fl.StringVar(&f.command, "command", "panvault bench --matrix", "with --matrix: the command named in the report")
	fl.StringArrayVar(&f.notes, "note", nil, "with --matrix: a paragraph for the report (repeatable)")
	return cmd
}

func opNames() string {
	var s []string
	for _, o := range loadgen.Ops() {
		s = append(s, string(o))
	}
	return strings.Join(s, ", ")
}

// runBench measures one workload and prints its report.
func runBench(ctx context.Context, io *stdio, cf *clientFlags, f *benchFlags) error {
	op, err := loadgen.ParseOp(f.op)
	if err != nil {
		return &usageError{err}
	}
	opts := loadgen.Options{
		Op: op, Concurrency: f.conc, Duration: f.duration, Warmup: f.warmup, Batch: f.batch,
		Scheme: f.scheme, Key: f.key, Seed: f.seed, PoolSize: f.poolSize, StaleReads: f.stale,
		Progress: io.err,
	}
	if err := loadgen.Validate([]loadgen.Workload{{ID: "run", Options: opts}}, nil); err != nil {
		return &usageError{err}
	}
	if f.prefill < 0 {
		return &usageError{fmt.Errorf("--prefill must not be negative")}
	}
	if f.profileDir != "" && f.local == 0 {
		return &usageError{fmt.Errorf("--profile-dir needs --local (the nodes must serve pprof)")}
	}
	t, err := openTarget(ctx, io, cf, f.local, f.dir, f.profileDir != "", f.tune)
	if err != nil {
		return err
	}
	defer t.close()
	if f.prefill > 0 {
		pr, err := loadgen.Prefill(ctx, t.conns, loadgen.PrefillOptions{Scheme: loadgen.SchemeFor(opts.Op, opts.Scheme), Count: f.prefill,
			Batch: f.prefillB, Concurrency: f.prefillC, Progress: io.err})
		if err != nil {
			return fmt.Errorf("prefill: %w", err)
		}
		fmt.Fprintf(io.err, "prefilled %d tokens in %.1fs (%.0f/s)\n", pr.Stored, pr.Elapsed.Seconds(),
			float64(pr.Stored)/pr.Elapsed.Seconds())
	}
	stopProfile := func() error { return nil }
	if f.profileDir != "" {
		stopProfile = t.profile(ctx, f.profileDir, f.warmup, f.duration)
	}
	cpu := t.startCPU(opts.Warmup)
	rep, runErr := loadgen.Run(ctx, opts, t.conns)
	if err := stopProfile(); err != nil {
		fmt.Fprintf(io.err, "panvault: profile: %v\n", err)
	}
	if rep != nil {
		if rss, anon, err := t.maxRSS(); err == nil && rss > 0 {
			fmt.Fprintf(io.err, "largest node RSS: %.0f MiB (anonymous %.0f MiB)\n", float64(rss)/(1<<20), float64(anon)/(1<<20))
		}
		if c, err := cpu.stop(rep.Items); err == nil && c != nil {
			if v, ok := c[loadgen.MetricNodeCPU]; ok {
				fmt.Fprintf(io.err, "node CPU per item: %.1fµs (all nodes)\n", v*1e6)
			}
			fmt.Fprintf(io.err, "client CPU per item: %.1fµs\n", c[loadgen.MetricClientCPU]*1e6)
		}
		if cf.json() {
			if err := writeJSON(io.out, rep); err != nil {
				return err
			}
		} else if err := rep.WriteText(io.out); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if rep.Failed+rep.FailedItems+rep.Mismatches > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d calls failed, %d items refused, %d mismatches",
			rep.Failed, rep.FailedItems, rep.Mismatches)}
	}
	return nil
}

// runBenchRaw measures raw limits and prints them.
func runBenchRaw(ctx context.Context, io *stdio, cf *clientFlags, f *benchFlags) error {
	var probes []string
	if f.raw != "all" {
		for _, p := range strings.Split(f.raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				probes = append(probes, p)
			}
		}
	}
	lims, err := rawlimits.Measure(ctx, rawlimits.Options{Probes: probes, Dir: f.dir, Duration: f.rawDur, Log: io.err})
	if err != nil {
		return err
	}
	if cf.json() {
		return writeJSON(io.out, lims)
	}
	return loadgen.WriteRawText(io.out, lims)
}

// conns converts client connections to the interface loadgen takes.
func connIfaces(cs []*grpc.ClientConn) []grpc.ClientConnInterface {
	out := make([]grpc.ClientConnInterface, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}
