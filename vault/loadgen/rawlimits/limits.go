package rawlimits

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/vault/loadgen"
)

// Probe names, for Options.Probes and `panvault bench --raw <probe>`.
const (
	ProbeFsync = "fsync"
	ProbeHSM   = "hsm"
	ProbeGRPC  = "grpc"
	ProbeRaft  = "raft"
)

// Probes lists every probe in the order Measure runs them.
func Probes() []string { return []string{ProbeFsync, ProbeHSM, ProbeGRPC, ProbeRaft} }

// Options configure Measure. Zero fields take each probe's defaults.
type Options struct {
	// Probes selects probes by name; empty means all.
	Probes []string
	// Dir holds the fsync probe's file and the Raft logs: put it on the disk
	// the vault's data live on. Default: os.TempDir().
	Dir string
	// Duration overrides the time of every single measurement.
	Duration time.Duration
	// HSMEnv is the process's SoftHSM environment (default softhsm.Temp()).
	HSMEnv *softhsm.Env
	// Log, if set, gets one line per probe as it finishes.
	Log io.Writer
}

// Measure runs the selected probes one after the other (never at the same
// time: they would measure each other) and returns their figures as named
// raw limits for loadgen's matrix.
func Measure(ctx context.Context, o Options) ([]loadgen.RawLimit, error) {
	probes := o.Probes
	if len(probes) == 0 {
		probes = Probes()
	}
	for _, p := range probes {
		if !slices.Contains(Probes(), p) {
			return nil, fmt.Errorf("%w: unknown probe %q (want one of %v)", ErrInvalidOptions, p, Probes())
		}
	}
	var out []loadgen.RawLimit
	for _, p := range Probes() {
		if !slices.Contains(probes, p) {
			continue
		}
		start := time.Now()
		var lims []loadgen.RawLimit
		switch p {
		case ProbeFsync:
			r, err := FsyncLatency(ctx, FsyncOptions{Dir: o.Dir, Duration: o.Duration})
			if err != nil {
				return out, err
			}
			lims = FsyncLimits(r)
		case ProbeHSM:
			ops, err := HSMRates(ctx, HSMOptions{Env: o.HSMEnv, Duration: o.Duration})
			if err != nil {
				return out, err
			}
			lims = HSMLimits(ops)
		case ProbeGRPC:
			rates, err := GRPCRoundTrip(ctx, GRPCOptions{Duration: o.Duration})
			if err != nil {
				return out, err
			}
			lims = GRPCLimits(rates)
		case ProbeRaft:
			res, err := RaftApply(ctx, RaftOptions{Dir: o.Dir, Duration: o.Duration})
			if err != nil {
				return out, err
			}
			lims = RaftLimits(res)
		}
		out = append(out, lims...)
		if o.Log != nil {
			fmt.Fprintf(o.Log, "raw %s: %d figures in %.1fs\n", p, len(lims), time.Since(start).Seconds())
		}
	}
	return out, nil
}

func command(probe string) string { return "panvault bench --raw " + probe }

// FsyncLimits names an fsync measurement: fsync.p50 and fsync.mean.
func FsyncLimits(r FsyncResult) []loadgen.RawLimit {
	what := fmt.Sprintf("append %d B + fdatasync, %d iterations", r.Size, r.Iterations)
	return []loadgen.RawLimit{
		{Name: loadgen.RawFsyncP50, Value: r.Latency.P50.Seconds(), Detail: what + ", p50", Command: command(ProbeFsync)},
		{Name: "fsync.mean", Value: r.Latency.Mean.Seconds(), Detail: what + ", mean", Command: command(ProbeFsync)},
	}
}

// HSMLimits names HSM rates: hsm.<op>.1 and hsm.<op>.par (per second) and
// hsm.<op>.1.p50 (seconds).
func HSMLimits(ops []HSMOp) []loadgen.RawLimit {
	var out []loadgen.RawLimit
	for _, op := range ops {
		out = append(out,
			loadgen.RawLimit{Name: "hsm." + op.Name + ".1", Value: op.Single.PerSec,
				Detail: "SoftHSM via package keys, 1 goroutine", Command: command(ProbeHSM)},
			loadgen.RawLimit{Name: "hsm." + op.Name + ".1.p50", Value: op.Single.Latency.P50.Seconds(),
				Detail: "SoftHSM via package keys, 1 goroutine, p50", Command: command(ProbeHSM)},
			loadgen.RawLimit{Name: "hsm." + op.Name + ".par", Value: op.Parallel.PerSec,
				Detail: fmt.Sprintf("SoftHSM via package keys, %d goroutines", op.Parallel.Goroutines), Command: command(ProbeHSM)})
	}
	return out
}

// GRPCLimits names gRPC round trips: grpc.c<N> (calls/s) and grpc.c<N>.p50.
func GRPCLimits(rates []Rate) []loadgen.RawLimit {
	var out []loadgen.RawLimit
	for _, r := range rates {
		name := fmt.Sprintf("grpc.c%d", r.Goroutines)
		what := fmt.Sprintf("health Check over mTLS 1.3 loopback, %d caller(s) on one connection", r.Goroutines)
		out = append(out,
			loadgen.RawLimit{Name: name, Value: r.PerSec, Detail: what, Command: command(ProbeGRPC)},
			loadgen.RawLimit{Name: name + ".p50", Value: r.Latency.P50.Seconds(), Detail: what + ", p50", Command: command(ProbeGRPC)})
	}
	return out
}

// RaftLimits names Raft runs: raft.single.c<N> (one command per entry) or
// raft.batch<P>.c<N> (P per entry), in commands/s, and the same names with
// .p50 for the latency of one Apply.
func RaftLimits(rs []RaftResult) []loadgen.RawLimit {
	var out []loadgen.RawLimit
	for _, r := range rs {
		name := fmt.Sprintf("raft.single.c%d", r.Concurrency)
		if r.PerEntry > 1 {
			name = fmt.Sprintf("raft.batch%d.c%d", r.PerEntry, r.Concurrency)
		}
		link := "TCP"
		if r.TLS {
			link = "mTLS"
		}
		what := fmt.Sprintf("hashicorp/raft, 3 nodes over %s loopback, raft-boltdb (fsync), in-memory FSM, %d caller(s), %d command(s) per entry",
			link, r.Concurrency, r.PerEntry)
		out = append(out,
			loadgen.RawLimit{Name: name, Value: r.CommandsPerSec, Detail: what + ", commands/s", Command: command(ProbeRaft)},
			loadgen.RawLimit{Name: name + ".p50", Value: r.Rate.Latency.P50.Seconds(), Detail: what + ", p50 per Apply", Command: command(ProbeRaft)})
	}
	return out
}
