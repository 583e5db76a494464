package rawlimits_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/softhsm/softhsmtest"
	"github.com/panvault/panvault/vault/loadgen"
	"github.com/panvault/panvault/vault/loadgen/latency"
	"github.com/panvault/panvault/vault/loadgen/rawlimits"
)

// Probes run briefly here; their figures are only checked for sanity
// (positive, consistent), never against a speed.

const short = 300 * time.Millisecond

func checkRate(t *testing.T, what string, r rawlimits.Rate, goroutines int) {
	t.Helper()
	if r.Goroutines != goroutines || r.Ops < 1 || r.PerSec <= 0 || r.Elapsed < short {
		t.Errorf("%s: rate %+v", what, r)
	}
	checkSummary(t, what, r.Latency, r.Ops)
}

func checkSummary(t *testing.T, what string, l latency.Summary, count int64) {
	t.Helper()
	if l.Count != count || !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max && l.Mean > 0) {
		t.Errorf("%s: latency %+v for %d ops", what, l, count)
	}
}

func TestFsyncLatency(t *testing.T) {
	dir := t.TempDir()
	r, err := rawlimits.FsyncLatency(context.Background(), rawlimits.FsyncOptions{Dir: dir, Iterations: 50})
	if err != nil {
		t.Fatal(err)
	}
	if r.Iterations != 50 || r.Size != 4096 {
		t.Errorf("result %+v", r)
	}
	checkSummary(t, "fsync", r.Latency, 50)
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Errorf("probe file left behind: %v %v", left, err)
	}
	if _, err := rawlimits.FsyncLatency(context.Background(), rawlimits.FsyncOptions{Dir: dir, Size: -1}); !errors.Is(err, rawlimits.ErrInvalidOptions) {
		t.Errorf("negative size: err %v", err)
	}
	if _, err := rawlimits.FsyncLatency(context.Background(), rawlimits.FsyncOptions{Dir: dir + "/missing"}); !errors.Is(err, rawlimits.ErrProbe) {
		t.Errorf("missing dir: err %v", err)
	}
}

func TestHSMRates(t *testing.T) {
	env := softhsmtest.Env(t)
	ops, err := rawlimits.HSMRates(context.Background(), rawlimits.HSMOptions{Env: env, Duration: short, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, op := range ops {
		names[op.Name] = true
		checkRate(t, op.Name+" single", op.Single, 1)
		checkRate(t, op.Name+" parallel", op.Parallel, 2)
	}
	for _, n := range []string{rawlimits.HSMSignP256, rawlimits.HSMECB1, rawlimits.HSMECB256, rawlimits.HSMSealGCM128, rawlimits.HSMOpenGCM128} {
		if !names[n] {
			t.Errorf("no %s rate", n)
		}
	}
	// The throwaway token is gone.
	toks, err := env.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if strings.HasPrefix(tok.Label, "rawlimits-") {
			t.Errorf("token %s left behind", tok.Label)
		}
	}
}

func TestGRPCRoundTrip(t *testing.T) {
	rates, err := rawlimits.GRPCRoundTrip(context.Background(), rawlimits.GRPCOptions{Duration: short, Concurrency: []int{1, 8}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rates) != 2 {
		t.Fatalf("%d rates", len(rates))
	}
	checkRate(t, "grpc c1", rates[0], 1)
	checkRate(t, "grpc c8", rates[1], 8)
	if _, err := rawlimits.GRPCRoundTrip(context.Background(), rawlimits.GRPCOptions{Concurrency: []int{0}}); !errors.Is(err, rawlimits.ErrInvalidOptions) {
		t.Errorf("zero callers: err %v", err)
	}
}

func TestRaftApply(t *testing.T) {
	res, err := rawlimits.RaftApply(context.Background(), rawlimits.RaftOptions{
		Dir: t.TempDir(), Duration: short, Runs: []rawlimits.RaftRun{{Concurrency: 4, PerEntry: 1}, {Concurrency: 4, PerEntry: 16}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		checkRate(t, "raft", r.Rate, 4)
		if !r.TLS || r.CommandsPerSec != r.Rate.PerSec*float64(r.PerEntry) {
			t.Errorf("result %+v", r)
		}
	}
	lims := rawlimits.RaftLimits(res)
	if lims[0].Name != "raft.single.c4" || lims[2].Name != "raft.batch16.c4" || lims[3].Name != "raft.batch16.c4.p50" {
		t.Errorf("names %v", lims)
	}
}

func TestRaftApplyPlainTCP(t *testing.T) {
	res, err := rawlimits.RaftApply(context.Background(), rawlimits.RaftOptions{
		Duration: short, PlainTCP: true, Runs: []rawlimits.RaftRun{{Concurrency: 2, PerEntry: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].TLS {
		t.Error("PlainTCP run reports TLS")
	}
	checkRate(t, "raft tcp", res[0].Rate, 2)
}

// Measure names its figures as the default matrix expects: every raw limit
// the matrix refers to is produced.
func TestMeasureCoversMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every probe")
	}
	var log bytes.Buffer
	lims, err := rawlimits.Measure(context.Background(), rawlimits.Options{
		Dir: t.TempDir(), Duration: 200 * time.Millisecond, HSMEnv: softhsmtest.Env(t), Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range lims {
		names = append(names, l.Name)
		if l.Value <= 0 || l.Command == "" || l.Detail == "" {
			t.Errorf("limit %+v", l)
		}
	}
	if err := loadgen.Validate(loadgen.DefaultMatrix(loadgen.MatrixTiming{}), names); err != nil {
		t.Errorf("matrix refers to a limit Measure does not produce: %v", err)
	}
	if got := strings.Count(log.String(), "\n"); got != len(rawlimits.Probes()) {
		t.Errorf("log has %d lines:\n%s", got, log.String())
	}
}

func TestMeasureSelectsProbes(t *testing.T) {
	lims, err := rawlimits.Measure(context.Background(), rawlimits.Options{Probes: []string{rawlimits.ProbeFsync}, Dir: t.TempDir(), Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lims {
		if !strings.HasPrefix(l.Name, "fsync.") {
			t.Errorf("unselected probe ran: %s", l.Name)
		}
	}
	if len(lims) != 2 {
		t.Errorf("%d fsync limits", len(lims))
	}
	if _, err := rawlimits.Measure(context.Background(), rawlimits.Options{Probes: []string{"disk"}}); !errors.Is(err, rawlimits.ErrInvalidOptions) {
		t.Errorf("unknown probe: err %v", err)
	}
}
