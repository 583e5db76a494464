package loadgen

import (
	"fmt"
	"strings"
	"time"
)

// Metric names a measured quantity. Values are in base units: per second for
// rates, seconds for latencies, bytes for memory.
type Metric string

// Metrics of a workload result.
const (
	MetricOpsPerSec   Metric = "ops/s"
	MetricItemsPerSec Metric = "items/s"
	MetricP50         Metric = "p50"
	MetricP99         Metric = "p99"
	// MetricMaxRSS is the largest resident set size of any node at the end
	// of the workload. Run cannot see it; the driver measures it (for
	// example from /proc/<pid>/status of devcluster's node processes) and
	// passes it in WorkloadResult.Extra.
	MetricMaxRSS Metric = "rss"
	// MetricMaxAnonRSS is the largest anonymous resident set (heap,
	// stacks) of any node: MetricMaxRSS without memory-mapped files, whose
	// pages the kernel can drop at any time.
	MetricMaxAnonRSS Metric = "rss-anon"
	// MetricNodeCPU is the CPU time all node processes used per item
	// during the measured window (seconds): on a machine shared with other
	// work it shows the cost of an item when the rate cannot. Measured by
	// the driver, like MetricMaxRSS.
	MetricNodeCPU Metric = "node-cpu"
	// MetricClientCPU is the load generator's own CPU time per item.
	MetricClientCPU Metric = "client-cpu"
)

// IsLatency reports whether m is a latency (smaller is better).
func (m Metric) IsLatency() bool { return m == MetricP50 || m == MetricP99 }

// isCPU reports whether m is a CPU time per item.
func (m Metric) isCPU() bool { return m == MetricNodeCPU || m == MetricClientCPU }

// Names of the raw limits the default matrix refers to. Package rawlimits
// produces them; the unit follows the name: ".p50" and ".mean" are seconds,
// everything else is operations per second.
const (
	RawFsyncP50         = "fsync.p50"            // write 4 KiB + fdatasync, p50 latency
	RawHSMSignPar       = "hsm.sign-p256.par"    // ECDSA P-256 signatures/s, GOMAXPROCS goroutines
	RawHSMSign1         = "hsm.sign-p256.1"      // the same from one goroutine
	RawHSMECB1Par       = "hsm.ecb-1.par"        // AES-ECB calls of 1 block/s, parallel
	RawHSMECB256Par     = "hsm.ecb-256.par"      // AES-ECB calls of 256 blocks/s, parallel
	RawHSMECB256Single  = "hsm.ecb-256.1"        // the same from one goroutine
	RawHSMSealPar       = "hsm.gcm-seal-128.par" // AES-GCM seals of 128 bytes/s, parallel
	RawHSMSeal1         = "hsm.gcm-seal-128.1"   // the same from one goroutine
	RawHSMSeal1P50      = "hsm.gcm-seal-128.1.p50"
	RawHSMOpenPar       = "hsm.gcm-open-128.par" // AES-GCM opens of 128 bytes/s, parallel
	RawGRPC1            = "grpc.c1"              // health Check calls/s over mTLS, 1 caller
	RawGRPC1P50         = "grpc.c1.p50"
	RawGRPC64           = "grpc.c64" // the same with 64 callers
	RawGRPC64P50        = "grpc.c64.p50"
	RawRaftSingle1P50   = "raft.single.c1.p50"   // one command per entry, 1 caller: commit latency
	RawRaftSingle64     = "raft.single.c64"      // one command per entry, 64 callers: commands/s
	RawRaftBatched64    = "raft.batch64.c64"     // 64 commands per entry, 64 callers: commands/s
	RawRaftBatched64P50 = "raft.batch64.c64.p50" // latency of one such entry
)

// RawLimit is one measured raw limit. A plain value.
type RawLimit struct {
	Name    string  // one of the Raw* names, or any other for extra probes
	Value   float64 // per second, or seconds for latencies (names ending in .p50/.mean)
	Detail  string  // what was measured, for the table
	Command string  // how to measure it again
}

// IsLatency reports whether the limit is a latency (seconds).
func (r RawLimit) IsLatency() bool {
	return strings.HasSuffix(r.Name, ".p50") || strings.HasSuffix(r.Name, ".mean")
}

// Cmp is a target's direction.
type Cmp int

const (
	AtLeast Cmp = iota // result >= threshold
	AtMost             // result <= threshold
)

// Target is one goal of a workload: Metric compared with Value, or with
// Value × the reference named by Of: "raw:<raw limit name>" or
// "workload:<workload id>" (that workload's value of the same metric).
type Target struct {
	Metric Metric
	Cmp    Cmp
	Value  float64
	Of     string
}

// RawTerm is one raw limit scaled to the workload's unit: Scale raw
// operations' worth of work per workload item (for example 0.1 when one item
// needs about ten raw calls).
type RawTerm struct {
	Name  string
	Scale float64
}

// RawRef relates a workload to the raw limits of what it is built on. For a
// throughput the limit is the smallest term (the bottleneck); for a latency it
// is the sum of the terms (the critical path).
type RawRef struct {
	Terms []RawTerm
	Note  string // how the terms relate, for the table
}

// Workload is one row of the benchmark matrix. A plain value.
type Workload struct {
	ID      string  // stable identifier, referenced by Target.Of
	Title   string  // human description
	Nodes   int     // cluster size
	Options Options // Op, Concurrency, Batch, Scheme, Duration, Warmup
	// Prefill is how many tokens the driver stores (Prefill, scheme of
	// Options) before measuring.
	Prefill int
	// Metric is the headline result, compared with the raw limit.
	Metric  Metric
	Targets []Target
	Raw     RawRef
}

// Command returns the CLI invocation that measures the workload against a
// fresh local cluster.
func (w Workload) Command() string {
	o := w.Options
	var b strings.Builder
	fmt.Fprintf(&b, "panvault bench --local %d --op %s --concurrency %d", max(w.Nodes, 1), o.Op, max(o.Concurrency, 1))
	if o.Op == OpTokenizeBatch {
		fmt.Fprintf(&b, " --batch %d", o.Batch)
	}
	if o.Scheme != "" {
		fmt.Fprintf(&b, " --scheme %s", o.Scheme)
	}
	if w.Prefill > 0 {
		fmt.Fprintf(&b, " --prefill %d", w.Prefill)
	}
	fmt.Fprintf(&b, " --duration %s --warmup %s", fmtDur(o.Duration), fmtDur(o.Warmup))
	return b.String()
}

func fmtDur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// MatrixTiming sets the measured duration and warmup of every workload of
// the default matrix.
type MatrixTiming struct {
	Duration, Warmup time.Duration
}

// DefaultMatrix is the workload matrix of issue #6: a 3-node cluster with
// SoftHSM and mTLS, 64 clients unless stated, with its targets and the raw
// limits each workload is compared with.
func DefaultMatrix(t MatrixTiming) []Workload {
	if t.Duration == 0 {
		t.Duration = 10 * time.Second
	}
	opt := func(op Op, conc, batch int, scheme string) Options {
		return Options{Op: op, Concurrency: conc, Batch: batch, Scheme: scheme, Duration: t.Duration, Warmup: t.Warmup}
	}
	tokenizeRaw := RawRef{
		Terms: []RawTerm{{RawRaftBatched64, 1}, {RawHSMSealPar, 1}},
		Note:  "one Raft command and one GCM seal per PAN",
	}
	return []Workload{
		{
			ID: "tokenize", Title: "vaulted tokenize", Nodes: 3,
			Options: opt(OpTokenize, 64, 0, DefaultScheme), Metric: MetricOpsPerSec,
			Targets: []Target{{MetricOpsPerSec, AtLeast, 15000, ""}, {MetricP99, AtMost, 0.050, ""}},
			Raw:     tokenizeRaw,
		},
		{
			ID: "tokenize-1", Title: "vaulted tokenize, 1 client", Nodes: 3,
			Options: opt(OpTokenize, 1, 0, DefaultScheme), Metric: MetricP50,
			Targets: []Target{{MetricP50, AtMost, 0.0015, ""}},
			Raw: RawRef{Terms: []RawTerm{{RawGRPC1P50, 1}, {RawHSMSeal1P50, 1}, {RawRaftSingle1P50, 1}},
				Note: "gRPC round trip + GCM seal + Raft commit"},
		},
		{
			ID: "tokenize-batch", Title: "vaulted tokenize-batch, 100 PANs per request", Nodes: 3,
			Options: opt(OpTokenizeBatch, 64, 100, DefaultScheme), Metric: MetricItemsPerSec,
			Targets: []Target{{MetricItemsPerSec, AtLeast, 100000, ""}},
			Raw:     tokenizeRaw,
		},
		{
			ID: "ff1", Title: "FF1 tokenize", Nodes: 3,
			Options: opt(OpTokenizeFF1, 64, 0, DefaultFF1Scheme), Metric: MetricOpsPerSec,
			Targets: []Target{{MetricOpsPerSec, AtLeast, 25000, ""}},
			// Not the HSM: the vault may run the FF1 rounds of concurrent
			// calls together, so one PAN costs less than its ten ECB calls
			// (measured: above hsm.ecb-1.par × 0.1).
			Raw: RawRef{Terms: []RawTerm{{RawGRPC64, 1}}, Note: "one gRPC call per PAN"},
		},
		{
			ID: "ff1-batch", Title: "FF1 tokenize-batch, 100 PANs per request", Nodes: 3,
			Options: opt(OpTokenizeBatch, 64, 100, DefaultFF1Scheme), Metric: MetricItemsPerSec,
			Targets: []Target{{MetricItemsPerSec, AtLeast, 500000, ""}},
			Raw: RawRef{Terms: []RawTerm{{RawHSMECB256Par, 10}},
				Note: "about 10 ECB calls per 100 PANs (ECB-256 calls as proxy)"},
		},
		{
			ID: "detokenize", Title: "detokenize (linearizable)", Nodes: 3,
			Options: opt(OpDetokenize, 64, 0, DefaultScheme), Metric: MetricOpsPerSec,
			Targets: []Target{{MetricOpsPerSec, AtLeast, 25000, ""}},
			Raw: RawRef{Terms: []RawTerm{{RawGRPC64, 1}, {RawHSMOpenPar, 1}},
				Note: "one gRPC call and one GCM open per token"},
		},
		{
			ID: "sign", Title: "sign ECDSA P-256", Nodes: 3,
			Options: opt(OpSign, 64, 0, ""), Metric: MetricOpsPerSec,
			Targets: []Target{{MetricOpsPerSec, AtLeast, 0.6, "raw:" + RawHSMSignPar}},
			Raw:     RawRef{Terms: []RawTerm{{RawHSMSignPar, 1}}, Note: "one HSM signature per call"},
		},
		{
			ID: "tokenize-5m", Title: "vaulted tokenize with 5,000,000 tokens stored", Nodes: 3,
			Options: opt(OpTokenize, 64, 0, DefaultScheme), Prefill: 5_000_000, Metric: MetricOpsPerSec,
			Targets: []Target{{MetricOpsPerSec, AtLeast, 0.7, "workload:tokenize"}, {MetricMaxRSS, AtMost, 1 << 30, ""}},
			Raw:     tokenizeRaw,
		},
	}
}
