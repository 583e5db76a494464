package devcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one running node process.
type proc struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited and been reaped
	err      error         // exit status, valid after done
	stopping atomic.Bool   // set before the orchestrator signals it
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// spawnNode starts `panvault server` for a node, appending its output to its
// node.log.
func (c *Cluster) spawnNode(id string, p nodePaths) (*proc, error) {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n%s %s at %s\n", startMarker, id, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(c.opts.Binary, "server", "--config", p.Config)
	cmd.Env = childEnv(p.SoftHSMConf)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = p.Dir
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("devcluster: start %s: %w", id, err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		logf.Close()
		close(pr.done)
		if !pr.stopping.Load() {
			c.opts.Log.Warn("node exited", "node", id, "status", exitStatus(pr.err), "log", p.Log)
		}
	}()
	return pr, nil
}

// stop sends SIGTERM and, after timeout, SIGKILL; it returns once the process
// has exited. A process that exits on SIGTERM with status 0 is a clean stop.
func (p *proc) stop(timeout time.Duration) error {
	p.stopping.Store(true)
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("devcluster: node did not stop within %v after SIGTERM; killed", timeout)
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.stopping.Store(true)
	_ = p.cmd.Process.Kill()
	<-p.done
}

func exitStatus(err error) string {
	if err == nil {
		return "0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// childEnv is this process's environment with SOFTHSM2_CONF pointing at one
// node's SoftHSM configuration.
func childEnv(softhsmConf string) []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	return append(env, "SOFTHSM2_CONF="+softhsmConf)
}

// runStep runs one setup step (`panvault devtool ...`, `panvault mk ...`) as a
// child process with a node's SoftHSM configuration and returns its stdout.
// These commands print labels, serial numbers, KCVs and paths only, never a
// PIN or component, so their output may be shown in errors.
func (c *Cluster) runStep(ctx context.Context, softhsmConf string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.opts.Binary, args...)
	cmd.Env = childEnv(softhsmConf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: panvault %s: %w: %s", ErrStep, strings.Join(args[:min(2, len(args))], " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// startMarker begins each run's section of a node's log.
const startMarker = "# devcluster: starting"

// logTail returns the last lines of a node's log, for error messages. Node
// logs never contain PANs, PINs or key material.
func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
