package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

// devProc is a running `panvault dev`.
type devProc struct {
	cmd    *exec.Cmd
	stdout *os.File
	stderr *os.File
	done   chan error
}

func startDev(t *testing.T, bin, dir string, args ...string) *devProc {
	t.Helper()
	tmp := t.TempDir()
	errf, err := os.Create(filepath.Join(tmp, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	outf, err := os.Create(filepath.Join(tmp, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	p := &devProc{stdout: outf, stderr: errf, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"dev", "--dir", dir}, args...)...)
	p.cmd.Stdout = outf
	p.cmd.Stderr = errf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		errf.Close()
		outf.Close()
	})
	return p
}

func (p *devProc) stdoutText() string {
	b, _ := os.ReadFile(p.stdout.Name())
	return string(b)
}

func (p *devProc) stderrText() string {
	b, _ := os.ReadFile(p.stderr.Name())
	return string(b)
}

// waitFile waits until path exists, failing if the dev process exits first.
func (p *devProc) waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("panvault dev exited (%v) before writing %s:\n%s", err, path, p.stderrText())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within 90s:\n%s", path, p.stderrText())
		}
	}
}

// interrupt sends SIGINT and expects a clean exit (status 0) in time.
func (p *devProc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("panvault dev exited with %v after SIGINT:\n%s", err, p.stderrText())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("panvault dev still running 45s after SIGINT:\n%s", p.stderrText())
	}
}

// parseEnvFile reads the `export A=b C=d` line of a client.env or admin.env.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		for _, kv := range shellWords(t, rest) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
	}
	for _, k := range []string{envAddr, envCACert, envCert, envKey} {
		if vars[k] == "" {
			t.Fatalf("%s does not set %s:\n%s", path, k, b)
		}
	}
	return vars
}

// shellWords splits a line the way a POSIX shell would for the quoting
// devcluster writes (bare words and single quotes).
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, started := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			in = !in
			started = true
		case r == ' ' && !in:
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if in {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if started {
		words = append(words, cur.String())
	}
	return words
}

// cli runs the binary with the given PANVAULT_* variables.
func cli(t *testing.T, bin string, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PANVAULT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// TestDevCommand runs `panvault dev` as a process, uses the cluster through
// the CLI with the environment it writes, interrupts it, and runs it again on
// the same directory: the same cluster comes back with its tokens.
func TestDevCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the binary and runs a cluster of processes")
	}
	devclustertest.RequireSoftHSM(t)
	bin := devclustertest.BuildBinary(t)
	dir := filepath.Join(t.TempDir(), "dev")
	clientEnv := filepath.Join(dir, "client.env")

	dev := startDev(t, bin, dir, "--nodes", "3")
	dev.waitFile(t, clientEnv)
	client := parseEnvFile(t, clientEnv)
	admin := parseEnvFile(t, filepath.Join(dir, "admin.env"))
	if n := len(strings.Split(client[envAddr], ",")); n != 3 {
		t.Fatalf("PANVAULT_ADDR lists %d nodes, want 3", n)
	}

	pans := devclustertest.PANs(5, 42)
	code, out, stderr := cli(t, bin, client, "", append([]string{"tokenize", "--scheme", "pan"}, pans[:2]...)...)
	if code != 0 || len(lines(out)) != 2 {
		t.Fatalf("tokenize: exit %d, %d lines, stderr %q", code, len(lines(out)), stderr)
	}
	tokens := lines(out)
	code, out, stderr = cli(t, bin, client, "", "detokenize", "--scheme", "pan", tokens[0], tokens[1])
	if code != 0 || out != pans[0]+"\n"+pans[1]+"\n" {
		t.Fatalf("detokenize: exit %d, stderr %q, round trip failed", code, stderr)
	}

	// Stdin, JSON, a bad item among good ones: exit 1, the item reported by
	// number with its gRPC code, the bad input never echoed.
	in := pans[2] + "\n\n4111111111111112\n" + pans[3] + "\n"
	code, out, stderr = cli(t, bin, client, in, "tokenize", "--scheme", "pan-ff1", "--output", "json")
	var res struct {
		Results []struct {
			Token string `json:"token"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json output: %v", err)
	}
	if code != 1 || len(res.Results) != 3 || res.Results[0].Token == "" || res.Results[2].Token == "" ||
		res.Results[1].Error == nil || res.Results[1].Error.Code != "INVALID_ARGUMENT" {
		t.Fatalf("mixed batch: exit %d, results %+v", code, res.Results)
	}
	if strings.Contains(stderr+out, "4111111111111112") {
		t.Fatal("mixed batch: the rejected PAN was echoed") // never the output that holds it
	}
	if !strings.Contains(stderr, "item 2: INVALID_ARGUMENT") {
		t.Fatalf("mixed batch stderr %q", stderr)
	}

	// Fail-over: the first address is dead.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	failover := map[string]string{}
	for k, v := range client {
		failover[k] = v
	}
	failover[envAddr] = deadAddr + "," + client[envAddr]
	code, out, stderr = cli(t, bin, failover, "", "detokenize", "--scheme", "pan", tokens[0])
	if code != 0 || out != pans[0]+"\n" {
		t.Fatalf("fail-over detokenize: exit %d, stderr %q", code, stderr)
	}

	// Signing with the provisioned key.
	msgFile := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgFile, []byte("pacs.008 payment"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, sig, stderr := cli(t, bin, client, "", "sign", "--key", "payments-p256", msgFile)
	if code != 0 {
		t.Fatalf("sign: %d %q", code, stderr)
	}
	sigFile := filepath.Join(t.TempDir(), "msg.sig")
	if err := os.WriteFile(sigFile, []byte(sig), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := cli(t, bin, client, "", "verify", "--key", "payments-p256", msgFile, sigFile); code != 0 || out != "valid\n" {
		t.Fatalf("verify: %d %q %q", code, out, stderr)
	}
	if err := os.WriteFile(msgFile, []byte("pacs.008 payment!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := cli(t, bin, client, "", "verify", "--key", "payments-p256", msgFile, sigFile); code != 1 || out != "invalid\n" {
		t.Fatalf("verify of an altered message: %d %q", code, out)
	}

	// Admin commands need the admin identity.
	if code, _, stderr := cli(t, bin, client, "", "scheme", "list"); code != 1 || !strings.Contains(stderr, "PERMISSION_DENIED") {
		t.Fatalf("scheme list as client: %d %q", code, stderr)
	}
	code, out, stderr = cli(t, bin, admin, "", "scheme", "list")
	if code != 0 || !strings.Contains(out, "pan-det") || !strings.Contains(out, "pan-ff1") {
		t.Fatalf("scheme list as admin: %d %q %q", code, out, stderr)
	}
	code, out, stderr = cli(t, bin, admin, "", "cluster", "status", "-o", "json")
	var st struct {
		LeaderID string            `json:"leader_id"`
		Nodes    []json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.LeaderID == "" || len(st.Nodes) != 3 {
		t.Fatalf("cluster status: %d %v %q %q", code, err, out, stderr)
	}

	checkAuditAnchors(t, bin, admin, filepath.Join(dir, "node1", "data", "audit", "audit.log"))

	dev.interrupt(t)
	if !strings.Contains(dev.stdoutText(), "export PANVAULT_ADDR="+client[envAddr]) {
		t.Errorf("dev did not print the export line: %q", dev.stdoutText())
	}
	for _, a := range strings.Split(client[envAddr], ",") {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("node at %s still listening after dev exited", a)
		}
	}

	// Again on the same directory: the same cluster, addresses and tokens.
	if err := os.Remove(clientEnv); err != nil {
		t.Fatal(err)
	}
	dev2 := startDev(t, bin, dir, "--output", "json")
	dev2.waitFile(t, clientEnv)
	if again := parseEnvFile(t, clientEnv); again[envAddr] != client[envAddr] || again[envCert] != client[envCert] {
		t.Fatalf("restart changed the environment: %v vs %v", again, client)
	}
	code, out, stderr = cli(t, bin, client, "", "detokenize", "--scheme", "pan", tokens[0], tokens[1])
	if code != 0 || out != pans[0]+"\n"+pans[1]+"\n" {
		t.Fatalf("detokenize after restart: exit %d, stderr %q", code, stderr)
	}
	dev2.interrupt(t)
	if !strings.Contains(dev2.stderrText(), "restarting existing cluster") {
		t.Errorf("second run did not reuse the cluster:\n%s", dev2.stderrText())
	}
	var printed struct {
		Client map[string]string `json:"client"`
		Admin  map[string]string `json:"admin"`
	}
	if err := json.Unmarshal([]byte(dev2.stdoutText()), &printed); err != nil {
		t.Fatalf("dev --output json: %v: %q", err, dev2.stdoutText())
	}
	if printed.Client[envAddr] != client[envAddr] || printed.Admin[envCert] != admin[envCert] {
		t.Fatalf("dev --output json printed %v", printed)
	}
}

// checkAuditAnchors waits for node1 to anchor its audit log (dev nodes do
// every 2 s), then checks the live file against the cluster's anchors and a
// copy cut back before the highest anchor, which must fail.
func checkAuditAnchors(t *testing.T, bin string, admin map[string]string, logPath string) {
	t.Helper()
	var listed struct {
		Anchors []struct {
			Seq string `json:"seq"` // protojson writes uint64 as a string
		} `json:"anchors"`
	}
	// An anchor past seq 1, so that a copy cut back before it still has
	// records (an empty file is refused for another reason).
	highest := func() uint64 {
		var h uint64
		for _, a := range listed.Anchors {
			if v, err := strconv.ParseUint(a.Seq, 10, 64); err == nil {
				h = max(h, v)
			}
		}
		return h
	}
	deadline := time.Now().Add(30 * time.Second)
	for highest() < 2 {
		code, out, stderr := cli(t, bin, admin, "", "audit", "anchors", "--node", "node1", "-o", "json")
		if code != 0 {
			t.Fatalf("audit anchors: exit %d, stderr %q", code, stderr)
		}
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("audit anchors -o json: %v: %q", err, out)
		}
		if highest() < 2 && time.Now().After(deadline) {
			t.Fatalf("node1 recorded no audit anchor past seq 1 in 30 s: %+v", listed.Anchors)
		}
		if highest() < 2 {
			// More audited calls, so node1's log grows past seq 1.
			if code, _, stderr := cli(t, bin, admin, "", "scheme", "list", "--addr", strings.Split(admin[envAddr], ",")[0]); code != 0 {
				t.Fatalf("scheme list: %d %q", code, stderr)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	code, out, stderr := cli(t, bin, admin, "", "audit", "verify", logPath, "--cluster", "-o", "json")
	var sum auditSummaryJSON
	if err := json.Unmarshal([]byte(out), &sum); code != 0 || err != nil || sum.Anchors == 0 || sum.AnchoredSeq == 0 || sum.Entries < sum.AnchoredSeq {
		t.Fatalf("audit verify --cluster: exit %d, %+v, %v, stderr %q", code, sum, err, stderr)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cutPath := filepath.Join(t.TempDir(), "cut.log")
	cut := strings.SplitAfter(string(b), "\n")[:sum.AnchoredSeq-1]
	if err := os.WriteFile(cutPath, []byte(strings.Join(cut, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, bin, admin, "", "audit", "verify", cutPath); code != 0 {
		t.Fatalf("the cut copy is a valid chain on its own: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, bin, admin, "", "audit", "verify", cutPath, "--cluster"); code != 1 || !strings.Contains(stderr, "cut off") {
		t.Fatalf("audit verify --cluster of a cut copy: exit %d, stderr %q; want 1 and \"cut off\"", code, stderr)
	}
	// A valid log no node wrote (its own chain), and an empty file: nothing
	// vouches for them.
	foreign, _ := auditLogFile(t, 3)
	emptyPath := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(emptyPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{foreign, emptyPath} {
		if code, _, stderr := cli(t, bin, admin, "", "audit", "verify", p, "--cluster"); code != 1 || !strings.Contains(stderr, "not anchored") {
			t.Fatalf("audit verify --cluster of %s: exit %d, stderr %q; want 1 and \"not anchored\"", filepath.Base(p), code, stderr)
		}
	}
}
