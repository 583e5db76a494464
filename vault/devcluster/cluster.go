package devcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/vault/pki"
)

// Identity names which dev certificate a connection presents. A plain value.
type Identity int

const (
	// Client is the payment-service identity (client role).
	Client Identity = iota
	// Admin is the administrator identity (admin role).
	Admin
)

// Names of the dev identities the CA issues.
const (
	AdminName  = "admin"
	ClientName = "payments"
)

// Cluster is a running local cluster. It is safe for concurrent use.
type Cluster struct {
	opts Options
	lock *os.File
	ca   *pki.DevCA
	lib  string

	adminFiles, clientFiles pki.CertFiles
	adminTLS, clientTLS     *tls.Config

	mu    sync.Mutex
	st    *state
	procs map[string]*proc // by node id; entries stay after exit
	// pprofAddrs are the nodes' pprof listeners (Options.Pprof), by node id.
	pprofAddrs map[string]string
	// metricsAddrs are the nodes' Prometheus listeners, by node id, kept for
	// the Cluster's lifetime.
	metricsAddrs map[string]string
	closed       bool
}

// NodeInfo describes one node of the cluster: a snapshot, a plain value.
type NodeInfo struct {
	// Index is the node's position in Nodes (also for removed nodes).
	Index int
	// ID is the node's Raft id: node1, node2, ... (never reused).
	ID       string
	APIAddr  string
	RaftAddr string
	// Dir holds the node's config, PIN files, SoftHSM tokens, data and log.
	Dir string
	// DataDir holds raft.db, state.db and snapshots.
	DataDir string
	// LogPath is the node's stdout and stderr.
	LogPath string
	// ConfigPath is its `panvault server` configuration file.
	ConfigPath string
	Running    bool
	Removed    bool
	// PID is the node's process id while it runs (0 otherwise), for
	// resource figures such as its RSS.
	PID int
	// PprofAddr is the node's pprof listener (host:port) when Options.Pprof
	// is set.
	PprofAddr string
	// MetricsAddr serves the node's Prometheus metrics at /metrics over
	// mutual TLS (a dev CA certificate, such as the admin's).
	MetricsAddr string
}

// Start prepares the cluster directory (or reuses what is there) and starts
// every node, waits until all serve with a leader, provisions the default
// keys and schemes and writes client.env and admin.env. On error every
// process it started is stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, lock: lock, procs: map[string]*proc{}}
	ok := false
	defer func() {
		if !ok {
			_ = c.Stop()
		}
	}()
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	if !opts.SkipProvision {
		if err := c.Provision(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.writeEnvFiles(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// prepare makes or reuses the state file, CA, certificates, tokens, PIN
// files, master key and node configs.
func (c *Cluster) prepare(ctx context.Context) error {
	lib, err := softhsm.FindLibrary()
	if err != nil {
		return err
	}
	c.lib = lib
	st, err := readState(c.opts.Dir)
	if err != nil {
		return err
	}
	if st == nil {
		n := c.opts.Nodes
		if n == 0 {
			n = 3
		}
		st = &state{Version: stateVersion}
		var joins []string
		for i := range n {
			ns, err := st.newNode(nil)
			if err != nil {
				return err
			}
			ns.Bootstrap = i == 0
			ns.Join = append([]string(nil), joins...)
			joins = append(joins, ns.RaftAddr)
		}
		c.opts.Log.Info("creating cluster", "dir", c.opts.Dir, "nodes", n)
	} else {
		active := 0
		for _, n := range st.Nodes {
			if !n.Removed {
				active++
			}
		}
		if c.opts.Nodes != 0 && c.opts.Nodes != active {
			return fmt.Errorf("%w: %s holds a cluster of %d nodes, not %d (remove the directory to start over)",
				ErrMismatch, c.opts.Dir, active, c.opts.Nodes)
		}
		c.opts.Log.Info("restarting existing cluster", "dir", c.opts.Dir, "nodes", active)
	}
	c.st = st
	if err := st.write(c.opts.Dir); err != nil {
		return err
	}

	if c.ca, err = pki.NewDevCA(filepath.Join(c.opts.Dir, "ca")); err != nil {
		return err
	}
	if c.adminFiles, err = c.ca.Admin(AdminName); err != nil {
		return err
	}
	if c.clientFiles, err = c.ca.Client(ClientName); err != nil {
		return err
	}
	if c.adminTLS, err = pki.LoadClientTLS(c.adminFiles.Cert, c.adminFiles.Key, c.adminFiles.CA); err != nil {
		return err
	}
	if c.clientTLS, err = pki.LoadClientTLS(c.clientFiles.Cert, c.clientFiles.Key, c.clientFiles.CA); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, n := range st.Nodes {
		if n.Removed {
			continue
		}
		g.Go(func() error { return c.prepareNode(gctx, n.ID) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := c.writeConfigs(); err != nil {
		return err
	}
	return c.ensureMasterKeys(ctx)
}

// prepareNode makes a node's directories, PIN files, token and certificate.
func (c *Cluster) prepareNode(ctx context.Context, id string) error {
	p := pathsFor(c.opts.Dir, id)
	for _, d := range []string{p.Dir, p.SoftHSMDir, p.Data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, f := range []string{p.PIN, p.SOPIN} {
		if err := ensurePINFile(f); err != nil {
			return err
		}
	}
	out, err := c.runStep(ctx, p.SoftHSMConf, "devtool", "init-token", "--softhsm-dir", p.SoftHSMDir,
		"--label", tokenLabel(id), "--pin-file", p.PIN, "--so-pin-file", p.SOPIN)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	c.opts.Log.Debug("token", "node", id, "result", string(out))
	if _, err := c.ca.Node(id); err != nil {
		return err
	}
	return nil
}

// ensurePINFile writes a random PIN to path (mode 0600) unless it exists.
func ensurePINFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	pin, err := softhsm.RandomPIN()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(pin + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// devAuditAnchorInterval is how often dev nodes anchor their audit logs.
const devAuditAnchorInterval = 2 * time.Second

// writeConfigs (re)writes every active node's server configuration from the
// state. Caller holds c.mu or has exclusive access.
func (c *Cluster) writeConfigs() error {
	for _, n := range c.st.Nodes {
		if n.Removed {
			continue
		}
		p := pathsFor(c.opts.Dir, n.ID)
		cert, err := c.ca.Node(n.ID)
		if err != nil {
			return err
		}
		var nc nodeConfig
		nc.NodeID = n.ID
		nc.DataDir = p.Data
		nc.APIAddr = n.APIAddr
		nc.RaftAddr = n.RaftAddr
		nc.Bootstrap = n.Bootstrap
		nc.Join = n.Join
		nc.JoinTimeout = durationString(c.opts.StartTimeout)
		nc.ShutdownTimeout = durationString(c.opts.StopTimeout * 2 / 3)
		nc.AuditAnchorInterval = durationString(devAuditAnchorInterval)
		nc.HSM.Lib = c.lib
		nc.HSM.TokenLabel = tokenLabel(n.ID)
		nc.HSM.PINFile = p.PIN
		nc.TLS.CertFile, nc.TLS.KeyFile, nc.TLS.CAFile = cert.Cert, cert.Key, cert.CA
		nc.Authz.Admins = []string{c.adminFiles.Identity}
		nc.Authz.Clients = []string{c.clientFiles.Identity}
		// Every node certificate of the dev CA, so that nodes added later are
		// accepted by the ones already running.
		nc.Authz.Nodes = []string{pki.DevNodePattern}
		nc.Raft.SnapshotThreshold = c.opts.SnapshotThreshold
		nc.Raft.SnapshotInterval = durationString(c.opts.SnapshotInterval)
		nc.Raft.TrailingLogs = c.opts.TrailingLogs
		nc.Raft.MaxBatchCommands = c.opts.MaxBatchCommands
		nc.Raft.MaxInflightBatches = c.opts.MaxInflightBatches
		nc.Raft.StateCommitInterval = durationString(c.opts.StateCommitInterval)
		nc.HSM.PoolSize = c.opts.HSMPoolSize
		if c.opts.Pprof {
			if nc.Debug.PprofAddr, err = c.stablePort(&c.pprofAddrs, n.ID); err != nil {
				return err
			}
		}
		if nc.MetricsAddr, err = c.stablePort(&c.metricsAddrs, n.ID); err != nil {
			return err
		}
		nc.Log.Format = c.opts.NodeLogFormat
		nc.Log.Level = c.opts.NodeLogLevel
		b, err := nc.encode()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(p.Config, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startAll starts every active node and waits until all are ready. Nodes
// that never ran before and fail to bind their ports get new ones, up to
// three times.
func (c *Cluster) startAll(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.startAllOnce(ctx)
		if err == nil {
			break
		}
		if attempt >= 2 || !c.repickTakenPorts() {
			return err
		}
		c.opts.Log.Warn("a port was taken; retrying with new ports", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.st.Nodes {
		if !c.st.Nodes[i].Removed {
			c.st.Nodes[i].Started = true
		}
	}
	return c.st.write(c.opts.Dir)
}

func (c *Cluster) startAllOnce(ctx context.Context) error {
	c.mu.Lock()
	type started struct {
		n nodeState
		p *proc
	}
	var ss []started
	for _, n := range c.st.Nodes {
		if n.Removed {
			continue
		}
		pr, err := c.spawnNode(n.ID, pathsFor(c.opts.Dir, n.ID))
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.procs[n.ID] = pr
		ss = append(ss, started{n, pr})
	}
	c.mu.Unlock()
	c.opts.Log.Info("nodes started; waiting until they serve", "nodes", len(ss))
	wctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(wctx)
	for _, s := range ss {
		g.Go(func() error {
			return c.waitReady(gctx, s.n.ID, s.n.APIAddr, s.p, pathsFor(c.opts.Dir, s.n.ID).Log)
		})
	}
	err := g.Wait()
	if err != nil {
		for _, s := range ss {
			_ = s.p.stop(c.opts.StopTimeout)
		}
	}
	return err
}

// repickTakenPorts gives new ports in place of the ones a never-started
// node's last run found taken (its log names them), recomputes the join
// lists of never-started nodes and rewrites the configs. It reports whether
// anything changed. The server binds every port before it bootstraps or
// joins, so a node that failed on a bind in its first run has not changed
// the membership and its Raft address may change too; one with Raft state
// (it joined in an earlier attempt) keeps it, and a taken Raft port is then
// the error. Caller holds no lock; every node is stopped.
func (c *Cluster) repickTakenPorts() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for i := range c.st.Nodes {
		n := &c.st.Nodes[i]
		if n.Removed || n.Started {
			continue
		}
		p := pathsFor(c.opts.Dir, n.ID)
		taken := takenAddrs(p.Log)
		if taken[n.RaftAddr] {
			// A node that joined in an earlier attempt (or run) is a member
			// at this address: it cannot change here.
			if had, err := raftstore.HasState(p.Data); err != nil || had {
				return false
			}
		}
		for _, a := range []*string{&n.APIAddr, &n.RaftAddr} {
			if taken[*a] {
				np, err := freePort(c.addrsInUse())
				if err != nil {
					return false
				}
				*a, changed = np, true
			}
		}
		for _, m := range []map[string]string{c.metricsAddrs, c.pprofAddrs} {
			if a, ok := m[n.ID]; ok && taken[a] {
				delete(m, n.ID) // writeConfigs picks a new one
				changed = true
			}
		}
	}
	if !changed {
		return false
	}
	var joins []string
	for i := range c.st.Nodes {
		n := &c.st.Nodes[i]
		if n.Removed {
			continue
		}
		if !n.Started && !n.Bootstrap {
			n.Join = append([]string(nil), joins...)
		}
		joins = append(joins, n.RaftAddr)
	}
	return c.st.write(c.opts.Dir) == nil && c.writeConfigs() == nil
}

// Stop stops every running node (SIGTERM, then SIGKILL after
// Options.StopTimeout) and releases the directory. It returns an error if a
// node did not exit cleanly. Idempotent.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	procs := make(map[string]*proc, len(c.procs))
	for id, p := range c.procs {
		procs[id] = p
	}
	c.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for id, p := range procs {
		if p.exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stop(c.opts.StopTimeout); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if c.lock != nil {
		c.lock.Close()
	}
	c.opts.Log.Info("cluster stopped", "dir", c.opts.Dir)
	return errors.Join(errs...)
}

// Dir returns the cluster directory (absolute).
func (c *Cluster) Dir() string { return c.opts.Dir }

// Nodes describes every node ever created, removed ones included.
func (c *Cluster) Nodes() []NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeInfo, len(c.st.Nodes))
	for i, n := range c.st.Nodes {
		p := pathsFor(c.opts.Dir, n.ID)
		pr := c.procs[n.ID]
		out[i] = NodeInfo{Index: i, ID: n.ID, APIAddr: n.APIAddr, RaftAddr: n.RaftAddr, Dir: p.Dir, DataDir: p.Data,
			LogPath: p.Log, ConfigPath: p.Config, Running: pr != nil && !pr.exited(), Removed: n.Removed,
			PprofAddr: c.pprofAddrs[n.ID], MetricsAddr: c.metricsAddrs[n.ID]}
		if out[i].Running {
			out[i].PID = pr.cmd.Process.Pid
		}
	}
	return out
}

// node returns node i's state and process (nil if never started); c.mu held.
func (c *Cluster) node(i int) (*nodeState, *proc, error) {
	if c.closed {
		return nil, nil, ErrClosed
	}
	if i < 0 || i >= len(c.st.Nodes) {
		return nil, nil, fmt.Errorf("%w: index %d", ErrNoNode, i)
	}
	n := &c.st.Nodes[i]
	if n.Removed {
		return nil, nil, fmt.Errorf("%w: %s was removed", ErrNoNode, n.ID)
	}
	return n, c.procs[n.ID], nil
}

// Dial opens a gRPC connection to node i presenting the given identity. The
// caller closes it. The node need not be running (connections are lazy).
func (c *Cluster) Dial(i int, who Identity) (*grpc.ClientConn, error) {
	c.mu.Lock()
	if i < 0 || i >= len(c.st.Nodes) {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: index %d", ErrNoNode, i)
	}
	addr := c.st.Nodes[i].APIAddr
	c.mu.Unlock()
	return dial(addr, c.TLSConfig(who))
}

// TLSConfig returns a client TLS configuration for the identity (a clone).
func (c *Cluster) TLSConfig(who Identity) *tls.Config {
	if who == Admin {
		return c.adminTLS.Clone()
	}
	return c.clientTLS.Clone()
}

// addrsInUse is every address the cluster has handed out: a new pick must
// not land on a port another node of this cluster will bind. Caller holds
// c.mu.
func (c *Cluster) addrsInUse() map[string]bool {
	in := map[string]bool{}
	for _, n := range c.st.Nodes {
		in[n.APIAddr], in[n.RaftAddr] = true, true
	}
	for _, m := range []map[string]string{c.metricsAddrs, c.pprofAddrs} {
		for _, a := range m {
			in[a] = true
		}
	}
	return in
}

// stablePort returns node id's address in *m, picking a free port the
// first time: a node keeps its listener address for the Cluster's life, so
// rewriting the configurations (a node added) never points a running node's
// NodeInfo at a port nobody listens on.
// Caller holds c.mu.
func (c *Cluster) stablePort(m *map[string]string, id string) (string, error) {
	if *m == nil {
		*m = map[string]string{}
	}
	if a := (*m)[id]; a != "" {
		return a, nil
	}
	a, err := freePort(c.addrsInUse())
	if err != nil {
		return "", err
	}
	(*m)[id] = a
	return a, nil
}
