package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/panvault/panvault/vault/devcluster"
	"github.com/panvault/panvault/vault/loadgen"
)

// benchTarget is what a benchmark runs against: connections to every node
// and, for a local cluster, the cluster itself (for node RSS and profiles).
// Not safe for concurrent use.
type benchTarget struct {
	conns   []grpc.ClientConnInterface
	closers []func() error
	cluster *devcluster.Cluster
}

// clusterTuning overrides server settings of local clusters, to compare
// settings (zero: the server's defaults).
type clusterTuning struct {
	maxBatch, maxInflight, hsmPool int
	stateCommit                    time.Duration
}

// localClusterOptions are the devcluster options of the clusters bench
// starts: quiet nodes, pprof listeners when profiling.
func localClusterOptions(dir string, nodes int, pprof bool, tune clusterTuning) (devcluster.Options, error) {
	bin, err := os.Executable()
	if err != nil {
		return devcluster.Options{}, fmt.Errorf("locate the panvault binary: %w", err)
	}
	return devcluster.Options{Dir: dir, Nodes: nodes, Binary: bin, NodeLogLevel: "warn", Pprof: pprof,
		MaxBatchCommands: tune.maxBatch, MaxInflightBatches: tune.maxInflight, HSMPoolSize: tune.hsmPool,
		StateCommitInterval: tune.stateCommit}, nil
}

// openTarget connects to the PANVAULT_* cluster, or with local > 0 starts a
// local cluster of that many nodes in dir (a removed temporary directory
// when dir is empty).
func openTarget(ctx context.Context, io *stdio, cf *clientFlags, local int, dir string, pprof bool, tune clusterTuning) (*benchTarget, error) {
	if local == 0 {
		cl, err := cf.connect()
		if err != nil {
			return nil, err
		}
		return &benchTarget{conns: connIfaces(cl.conns), closers: []func() error{func() error { cl.Close(); return nil }}}, nil
	}
	if local < 1 || local > 15 {
		return nil, &usageError{fmt.Errorf("--local: want 1 to 15 nodes, not %d", local)}
	}
	t := &benchTarget{}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "panvault-bench-")
		if err != nil {
			return nil, err
		}
		t.closers = append(t.closers, func() error { return os.RemoveAll(tmp) })
		dir = filepath.Join(tmp, "cluster")
	}
	opts, err := localClusterOptions(dir, local, pprof, tune)
	if err != nil {
		t.close()
		return nil, err
	}
	log, err := newLogger(io.err, "text", "warn")
	if err != nil {
		t.close()
		return nil, err
	}
	opts.Log = log
	start := time.Now()
	c, err := devcluster.Start(ctx, opts)
	if err != nil {
		t.close()
		return nil, fmt.Errorf("start local cluster: %w", err)
	}
	fmt.Fprintf(io.err, "local cluster of %d nodes ready in %.1fs (%s)\n", local, time.Since(start).Seconds(), c.Dir())
	// Stopped before the directory is removed (closers run in reverse).
	t.closers = append(t.closers, c.Stop)
	t.cluster = c
	for i := range c.Nodes() {
		cc, err := c.Dial(i, devcluster.Client)
		if err != nil {
			t.close()
			return nil, err
		}
		t.conns = append(t.conns, cc)
		t.closers = append(t.closers, cc.Close)
	}
	return t, nil
}

// close releases everything in reverse order of acquisition.
func (t *benchTarget) close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}

// maxRSS returns the largest resident set size of the local nodes and the
// largest anonymous part (0 for a remote cluster).
func (t *benchTarget) maxRSS() (rss, anon uint64, err error) {
	if t.cluster == nil {
		return 0, 0, nil
	}
	for _, n := range t.cluster.Nodes() {
		if !n.Running || n.PID == 0 {
			continue
		}
		r, err := loadgen.ProcessRSS(n.PID)
		if err != nil {
			return 0, 0, err
		}
		a, err := loadgen.ProcessAnonRSS(n.PID)
		if err != nil {
			return 0, 0, err
		}
		rss, anon = max(rss, r), max(anon, a)
	}
	return rss, anon, nil
}

// profile starts collecting a CPU profile of every local node over the
// measured window (after warmup, for duration) into dir/nodeN.cpu.pprof,
// then a heap profile into dir/nodeN.heap.pprof.
// The returned function waits for the profiles and reports failures.
func (t *benchTarget) profile(ctx context.Context, dir string, warmup, duration time.Duration) func() error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return func() error { return err }
	}
	secs := max(int(duration/time.Second), 1)
	var wg sync.WaitGroup
	errs := make([]error, len(t.cluster.Nodes()))
	for i, n := range t.cluster.Nodes() {
		if !n.Running || n.PprofAddr == "" {
			continue
		}
		wg.Go(func() {
			select {
			case <-time.After(warmup):
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			errs[i] = errors.Join(
				fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.PprofAddr, secs),
					filepath.Join(dir, n.ID+".cpu.pprof")),
				fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", n.PprofAddr), filepath.Join(dir, n.ID+".heap.pprof")))
		})
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

// fetchProfile saves one pprof endpoint's answer to path.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cpuMeter measures the CPU time of the local nodes and of this process
// (the load generator) from the end of a run's warmup to the end of the run.
// Safe for concurrent use.
type cpuMeter struct {
	t     *benchTarget
	timer *time.Timer

	mu            sync.Mutex
	started       bool
	err           error
	nodes0, self0 time.Duration
}

// startCPU starts a meter whose window opens after warmup.
func (t *benchTarget) startCPU(warmup time.Duration) *cpuMeter {
	m := &cpuMeter{t: t}
	m.timer = time.AfterFunc(warmup, func() {
		nodes, self, err := m.sample()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.started, m.err, m.nodes0, m.self0 = true, err, nodes, self
	})
	return m
}

func (m *cpuMeter) sample() (nodes, self time.Duration, err error) {
	if self, err = loadgen.ProcessCPU(os.Getpid()); err != nil {
		return 0, 0, err
	}
	if m.t.cluster == nil {
		return 0, self, nil
	}
	for _, n := range m.t.cluster.Nodes() {
		if !n.Running || n.PID == 0 {
			continue
		}
		c, err := loadgen.ProcessCPU(n.PID)
		if err != nil {
			return 0, 0, err
		}
		nodes += c
	}
	return nodes, self, nil
}

// stop closes the window and returns CPU time per item: MetricNodeCPU (all
// nodes together; only for a local cluster) and MetricClientCPU.
func (m *cpuMeter) stop(items uint64) (map[loadgen.Metric]float64, error) {
	m.timer.Stop()
	nodes, self, err := m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case m.err != nil:
		return nil, m.err
	case !m.started || items == 0:
		return nil, nil
	}
	out := map[loadgen.Metric]float64{loadgen.MetricClientCPU: (self - m.self0).Seconds() / float64(items)}
	if m.t.cluster != nil {
		out[loadgen.MetricNodeCPU] = (nodes - m.nodes0).Seconds() / float64(items)
	}
	return out, nil
}
