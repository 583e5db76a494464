package loadgen

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// rawNames are the names the default matrix may refer to.
var rawNames = []string{
	RawFsyncP50, RawHSMSignPar, RawHSMSign1, RawHSMECB1Par, RawHSMECB256Par, RawHSMECB256Single, RawHSMSealPar, RawHSMSeal1,
	RawHSMSeal1P50, RawHSMOpenPar, RawGRPC1, RawGRPC1P50, RawGRPC64, RawGRPC64P50,
	RawRaftSingle1P50, RawRaftSingle64, RawRaftBatched64, RawRaftBatched64P50,
}

func TestDefaultMatrixValidates(t *testing.T) {
	m := DefaultMatrix(MatrixTiming{Duration: 5 * time.Second, Warmup: time.Second})
	if err := Validate(m, rawNames); err != nil {
		t.Fatal(err)
	}
	for _, w := range m {
		if w.Options.Duration != 5*time.Second || w.Options.Warmup != time.Second {
			t.Errorf("%s: timing not applied: %v/%v", w.ID, w.Options.Duration, w.Options.Warmup)
		}
		if len(w.Targets) == 0 || len(w.Raw.Terms) == 0 {
			t.Errorf("%s: no target or raw limit", w.ID)
		}
	}
}

func TestValidateRejectsBadReferences(t *testing.T) {
	base := func() []Workload { return DefaultMatrix(MatrixTiming{}) }
	cases := map[string]func(m []Workload){
		"unknown raw term":   func(m []Workload) { m[0].Raw.Terms = []RawTerm{{"hsm.nope", 1}} },
		"zero scale":         func(m []Workload) { m[0].Raw.Terms = []RawTerm{{RawGRPC64, 0}} },
		"unknown raw target": func(m []Workload) { m[0].Targets[0].Of = "raw:nope" },
		"unknown workload":   func(m []Workload) { m[0].Targets[0].Of = "workload:nope" },
		"self reference":     func(m []Workload) { m[0].Targets[0].Of = "workload:" + m[0].ID },
		"bad reference kind": func(m []Workload) { m[0].Targets[0].Of = "other:x" },
		"repeated id":        func(m []Workload) { m[1].ID = m[0].ID },
		"invalid options":    func(m []Workload) { m[2].Options.Batch = MaxBatch + 1 },
		"unknown op":         func(m []Workload) { m[0].Options.Op = "nope" },
		"empty id":           func(m []Workload) { m[2].ID = "" },
	}
	for name, mutate := range cases {
		m := base()
		mutate(m)
		if err := Validate(m, rawNames); !errors.Is(err, ErrMatrix) {
			t.Errorf("%s: err %v, want ErrMatrix", name, err)
		}
	}
}

func testResults() Results {
	m := DefaultMatrix(MatrixTiming{Duration: 10 * time.Second, Warmup: 2 * time.Second})
	byID := func(id string) Workload {
		for _, w := range m {
			if w.ID == id {
				return w
			}
		}
		panic("no workload " + id)
	}
	rep := func(op Op, ops, items float64, p50, p99 time.Duration) *Report {
		return &Report{Op: op, Ops: uint64(ops * 10), Items: uint64(items * 10), OpsPerSec: ops, ItemsPerSec: items,
			Latency: latency.Summary{Count: int64(ops * 10), P50: p50, P99: p99, Max: 2 * p99},
			Errors:  map[string]uint64{}, ItemErrors: map[string]uint64{}}
	}
	return Results{
		Date:    time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Command: "make bench",
		Machine: "2 CPUs, linux/amd64",
		Notes:   []string{"Shared machine: noisy."},
		Raw: []RawLimit{
			{Name: RawRaftBatched64, Value: 40000, Detail: "raft", Command: "panvault bench --raw raft"},
			{Name: RawHSMSealPar, Value: 60000, Detail: "gcm | seal", Command: "panvault bench --raw hsm"},
			{Name: RawHSMSignPar, Value: 2000, Command: "panvault bench --raw hsm"},
			{Name: RawGRPC1P50, Value: 0.0001},
			{Name: RawHSMSeal1P50, Value: 0.00002},
			{Name: RawRaftSingle1P50, Value: 0.0008},
		},
		Workloads: []WorkloadResult{
			{Workload: byID("tokenize"), Report: rep(OpTokenize, 16000, 16000, 3*time.Millisecond, 40*time.Millisecond)},
			{Workload: byID("tokenize-1"), Report: rep(OpTokenize, 500, 500, 2*time.Millisecond, 3*time.Millisecond)},
			{Workload: byID("sign"), Report: rep(OpSign, 1000, 1000, 50*time.Millisecond, 90*time.Millisecond)},
			{Workload: byID("tokenize-5m"), Report: rep(OpTokenize, 12000, 12000, 4*time.Millisecond, 45*time.Millisecond),
				Extra: map[Metric]float64{MetricMaxRSS: 900 << 20}},
			{Workload: byID("ff1"), Err: errors.New("cluster did not start")},
		},
		Micro: []MicroResult{{Package: "github.com/panvault/panvault/keys", Name: "BenchmarkECB/raw", Runs: 5,
			Metrics: []MicroMetric{{"ns/op", 8123.5}, {"B/op", 0}}}},
		MicroCommand: "go test -run '^$' -bench . ./...",
	}
}

func TestTargetsAndRawLimits(t *testing.T) {
	res := testResults()
	w := func(id string) WorkloadResult {
		r, ok := res.workload(id)
		if !ok {
			t.Fatalf("no %s", id)
		}
		return r
	}
	tok := w("tokenize")
	if got := res.Check(tok, tok.Workload.Targets[0]); got != Met {
		t.Errorf("16,000 ops/s vs >= 15,000: %v", got)
	}
	if got := res.Check(tok, tok.Workload.Targets[1]); got != Met {
		t.Errorf("p99 40ms vs <= 50ms: %v", got)
	}
	if v, ok := res.RawLimitOf(tok.Workload); !ok || v != 40000 {
		t.Errorf("tokenize raw limit %v %v, want min(40000, 60000)", v, ok)
	}
	one := w("tokenize-1")
	if got := res.Check(one, one.Workload.Targets[0]); got != Missed {
		t.Errorf("p50 2ms vs <= 1.5ms: %v", got)
	}
	if v, ok := res.RawLimitOf(one.Workload); !ok || !closeTo(v, 0.00092) {
		t.Errorf("latency raw limit %v %v, want the sum 0.00092", v, ok)
	}
	sign := w("sign")
	if th, ok := res.Threshold(sign.Workload.Targets[0]); !ok || th != 1200 {
		t.Errorf("sign threshold %v %v, want 0.6 × 2000", th, ok)
	}
	if got := res.Check(sign, sign.Workload.Targets[0]); got != Missed {
		t.Errorf("sign 1000 vs >= 1200: %v", got)
	}
	big := w("tokenize-5m")
	if got := res.Check(big, big.Workload.Targets[0]); got != Met {
		t.Errorf("12,000 vs >= 0.7 × 16,000: %v", got)
	}
	if got := res.Check(big, big.Workload.Targets[1]); got != Met {
		t.Errorf("900 MiB vs <= 1 GiB: %v", got)
	}
	ff1 := w("ff1")
	if got := res.Check(ff1, ff1.Workload.Targets[0]); got != Unknown {
		t.Errorf("workload not run: %v, want Unknown", got)
	}
	if _, ok := res.RawLimitOf(ff1.Workload); ok {
		t.Errorf("ff1 raw limit known though grpc.c64 was not measured")
	}
}

func closeTo(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestWriteMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, testResults()); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"# panvault benchmarks",
		"Generated by `make bench` on 2026-05-01 12:00 UTC (2 CPUs, linux/amd64).",
		"| vaulted tokenize, 1 client | 2.00ms · 500 ops/s · p99 3.00ms · max 6.00ms |",
		"Shared machine: noisy.",
		"| Workload | Result | Target | Raw limit | Ratio | Command |",
		"| vaulted tokenize | 16,000 ops/s · p50 3.00ms · p99 40.0ms · max 80.0ms | ≥ 15,000 ops/s ✓; p99 ≤ 50.0ms ✓ | 40,000 ops/s (raft.batch64.c64 min hsm.gcm-seal-128.par: one Raft command and one GCM seal per PAN) | 0.40 | `panvault bench --local 3 --op tokenize --concurrency 64 --scheme pan --duration 10s --warmup 2s` |",
		"p50 ≤ 1.50ms ✗",
		"920µs (grpc.c1.p50 + hsm.gcm-seal-128.1.p50 + raft.single.c1.p50",
		"| 2.17 |",
		"≥ 0.6 × hsm.sign-p256.par = 1,200 ops/s ✗",
		"RSS 900 MiB",
		"rss ≤ 1024 MiB ✓",
		"--prefill 5000000",
		"| FF1 tokenize | not run: cluster did not start | ≥ 25,000 ops/s (not measured) | - | - |",
		"| hsm.gcm-seal-128.par | 60,000/s | gcm \\| seal | `panvault bench --raw hsm` |",
		"| grpc.c1.p50 | 100µs |",
		"## Go micro-benchmarks",
		"| github.com/panvault/panvault/keys | BenchmarkECB/raw | 5 | 8123.5 ns/op, 0 B/op |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
}
