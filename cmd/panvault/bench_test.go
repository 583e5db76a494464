package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/devcluster/devclustertest"
	"github.com/panvault/panvault/vault/loadgen"
)

// Each bad bench command line is a usage error (exit 2) that names its own
// fault, not a usage error for another reason (no $PANVAULT_ADDR, say).
func TestBenchUsageErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown op":              {[]string{"bench", "--op", "nope"}, `unknown op "nope"`},
		"batch too large":         {[]string{"bench", "--op", "tokenize-batch", "--batch", "5000"}, "batch 5000 outside"},
		"profile without cluster": {[]string{"bench", "--op", "sign", "--profile-dir", t.TempDir()}, "--profile-dir needs --local"},
		"unknown workload":        {[]string{"bench", "--matrix", "--only", "nope"}, `unknown workload "nope"`},
		"too many nodes":          {[]string{"bench", "--local", "99", "--op", "sign"}, "--local: want 1 to 15 nodes"},
	} {
		if code, _, stderr := runCLI(t, "", tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d (%s), want 2 and %q", name, code, stderr, tc.want)
		}
	}
}

func TestSelectWorkloads(t *testing.T) {
	all := loadgen.DefaultMatrix(loadgen.MatrixTiming{})
	ids := func(ws []loadgen.Workload) string {
		var s []string
		for _, w := range ws {
			s = append(s, w.ID)
		}
		return strings.Join(s, ",")
	}
	if got, err := selectWorkloads(all, "sign, tokenize", ""); err != nil || ids(got) != "tokenize,sign" {
		t.Errorf("only: %s %v", ids(got), err)
	}
	if got, err := selectWorkloads(all, "", "tokenize-5m"); err != nil || len(got) != len(all)-1 || strings.Contains(ids(got), "5m") {
		t.Errorf("skip: %s %v", ids(got), err)
	}
	if _, err := selectWorkloads(all, "sign", "sign"); err == nil {
		t.Error("nothing selected, no error")
	}
}

// TestBenchLocalCluster runs the real binary as `make bench` does: one
// workload against a fresh local cluster (JSON report, node profiles), and
// a small matrix with raw limits and micro-benchmarks into a markdown file.
func TestBenchLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local clusters")
	}
	devclustertest.RequireSoftHSM(t)
	bin := devclustertest.BuildBinary(t)
	dir := t.TempDir()

	profiles := filepath.Join(dir, "profiles")
	cmd := exec.Command(bin, "bench", "--local", "3", "--op", "sign", "--concurrency", "4", "--duration", "1s",
		"--warmup", "300ms", "--output", "json", "--profile-dir", profiles)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	if rep.Op != loadgen.OpSign || rep.Ops == 0 || rep.Failed != 0 || rep.Targets != 3 || rep.Latency.P50 <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, want := range []string{"node CPU per item", "largest node RSS"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		for _, kind := range []string{".cpu.pprof", ".heap.pprof"} {
			if st, err := os.Stat(filepath.Join(profiles, n+kind)); err != nil || st.Size() == 0 {
				t.Errorf("profile %s of %s: %v", kind, n, err)
			}
		}
	}

	micro := filepath.Join(dir, "bench.out")
	if err := os.WriteFile(micro, []byte("pkg: github.com/panvault/panvault/keys/fpe\n"+
		"BenchmarkFF1PAN16/batch256-2   100   48000 ns/op   187.5 ns/item\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "BENCHMARKS.md")
	cmd = exec.Command(bin, "bench", "--matrix", "--only", "sign", "--duration", "1s", "--warmup", "200ms",
		"--raw-duration", "200ms", "--micro", micro, "--micro-command", "go test -bench .", "--out", out, "--note", "A note.")
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench --matrix: %v\n%s", err, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| sign ECDSA P-256 | ", "node CPU ", "| hsm.sign-p256.par | ", "| raft.batch64.c64 | ",
		"BenchmarkFF1PAN16/batch256", "`go test -bench .`",
		"Not in this run: vaulted tokenize;", "by `panvault bench --matrix`", "A note.",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	if strings.Contains(string(md), "not run") {
		t.Errorf("a workload did not run:\n%s", md)
	}
}

// The tuning and pprof settings `panvault bench` writes for local
// clusters are accepted by the server's strict config.
func TestServerConfigDebugAndGroupCommit(t *testing.T) {
	body := strings.Replace(validConfig, `snapshot_interval = "1s"`,
		"snapshot_interval = \"1s\"\nmax_batch_commands = 1024\nmax_inflight_batches = 4\nstate_commit_interval = \"2s\"", 1) +
		"\n[debug]\npprof_addr = \"127.0.0.1:6060\"\n"
	c, err := loadServerConfig(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if c.Debug.PprofAddr != "127.0.0.1:6060" || c.Raft.MaxBatchCommands != 1024 || c.Raft.MaxInflightBatches != 4 ||
		c.Raft.StateCommitInterval.Duration != 2*time.Second {
		t.Fatalf("decoded %+v %+v", c.Debug, c.Raft)
	}
}

func TestServerConfigRuntime(t *testing.T) {
	c, err := loadServerConfig(writeConfig(t, validConfig+"\n[runtime]\ngc_percent = 200\nmemory_limit_mib = 768\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime.GCPercent != 200 || c.Runtime.MemoryLimitMiB != 768 {
		t.Fatalf("decoded %+v", c.Runtime)
	}
	for _, bad := range []string{"gc_percent = 5", "memory_limit_mib = 10", "memory_limit_mib = -1"} {
		_, err := loadServerConfig(writeConfig(t, validConfig+"\n[runtime]\n"+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "runtime.") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
