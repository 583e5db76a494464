package vaulttest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/softhsm/softhsmtest"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/audit"
	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/pki/pkitest"
)

// Identities the cluster's Authorizer knows.
const (
	AdminName  = "ops"      // pki.AdminIdentity(AdminName) holds the admin role
	ClientName = "payments" // pki.ClientIdentity(ClientName) holds the client role
)

// LogEnv names the environment variable that turns on logs of the test
// cluster (vault and raft): "debug", "info", "warn" or "error". Default: none.
const LogEnv = "VAULTTEST_LOG"

// Cluster is an in-process panvault cluster for tests and benchmarks. Its
// methods that take a testing.TB fail the test on error and belong on the
// test goroutine; the gRPC clients it returns are safe for concurrent use.
type Cluster struct {
	// CA issued every certificate of the cluster.
	CA *pkitest.CA
	// Nodes are the members, node i with id "n<i>".
	Nodes []*Node
	// Clock is every node's clock (starts at real time; Advance moves it).
	Clock *Clock

	authz      *pki.Authorizer
	components *keys.ComponentSet
	logger     *slog.Logger
	tune       func(*vault.Config)
	raftLog    hclog.Logger

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	tls   map[string]*tls.Config
}

// Node is one member: its SoftHSM token and HSM, raftstore member, vault
// node and gRPC server. Its fields change when it is stopped or restarted:
// read them from the test goroutine (the values they hold are safe for
// concurrent use).
type Node struct {
	ID string
	// Addr is the gRPC address (127.0.0.1:port), stable across restarts.
	Addr string
	// RaftAddr is the raftstore address, stable across restarts.
	RaftAddr string

	Token *softhsm.Token
	HSM   *keys.HSM
	Store *raftstore.Store
	Vault *vault.Node
	GRPC  *grpc.Server
	// Audit is the node's audit log, at AuditPath (kept across restarts).
	Audit     *audit.Log
	AuditPath string

	storeCfg  raftstore.Config
	serverTLS *tls.Config
	running   bool
	served    chan struct{}
	fatals    chan error
}

// Running reports whether the node is started.
func (n *Node) Running() bool { return n.running }

// StartCluster starts n nodes: each gets its own SoftHSM token with a master
// key loaded from the same custodian components, a raftstore member on
// 127.0.0.1 with mutual TLS from an in-memory CA, a vault.Node and a gRPC
// server on 127.0.0.1. Node 0 bootstraps the cluster and the others join it.
// Everything is stopped and deleted when the test ends. No scheme or key
// exists yet: call Setup for the dev defaults.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return StartClusterWith(tb, n, Options{})
}

// Options adjusts StartClusterWith. A plain value.
type Options struct {
	// ForeignMasterKey lists nodes that get a master key of their own
	// instead of the cluster's: they cannot load the cluster's working keys
	// (for tests of a misconfigured node).
	ForeignMasterKey []int
	// Logger, when set, receives every node's vault log (instead of the
	// VAULTTEST_LOG setting).
	Logger *slog.Logger
	// Tune, when set, adjusts every node's vault.Config before each start
	// (job intervals, re-encryption rate and grace).
	Tune func(*vault.Config)
}

// StartClusterWith is StartCluster with options.
func StartClusterWith(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("vaulttest: cluster of %d nodes", n)
	}
	c := &Cluster{
		CA:    pkitest.NewCA(tb),
		Clock: NewClock(),
		conns: make(map[string]*grpc.ClientConn),
		tls:   make(map[string]*tls.Config),
	}
	c.logger, c.raftLog = testLoggers()
	c.tune = opts.Tune
	if opts.Logger != nil {
		c.logger = opts.Logger
	}
	cfg := pki.AuthzConfig{
		Admins:  []string{pki.AdminIdentity(AdminName)},
		Clients: []string{pki.ClientIdentity(ClientName)},
	}
	for i := range n {
		cfg.Nodes = append(cfg.Nodes, pki.NodeIdentity(nodeID(i)))
	}
	authz, err := pki.NewAuthorizer(cfg)
	if err != nil {
		tb.Fatalf("vaulttest: authorizer: %v", err)
	}
	c.authz = authz
	tb.Cleanup(c.closeConns)

	for i := range n {
		c.Nodes = append(c.Nodes, c.newNode(tb, i, slices.Contains(opts.ForeignMasterKey, i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := c.Nodes[0].Store
	if err := first.Bootstrap(ctx); err != nil {
		tb.Fatalf("vaulttest: bootstrap: %v", err)
	}
	if _, _, err := first.WaitForLeader(ctx); err != nil {
		tb.Fatalf("vaulttest: wait for leader: %v", err)
	}
	for _, nd := range c.Nodes[1:] {
		if err := first.Join(ctx, nd.ID, nd.RaftAddr); err != nil {
			tb.Fatalf("vaulttest: join %s: %v", nd.ID, err)
		}
	}
	for _, nd := range c.Nodes {
		if _, _, err := nd.Store.WaitForLeader(ctx); err != nil {
			tb.Fatalf("vaulttest: %s wait for leader: %v", nd.ID, err)
		}
	}
	return c
}

func nodeID(i int) string { return fmt.Sprintf("n%d", i) }

// testLoggers returns the vault logger and the raft logger, quiet unless
// VAULTTEST_LOG asks.
func testLoggers() (*slog.Logger, hclog.Logger) {
	level := os.Getenv(LogEnv)
	raftLevel := hclog.Off
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if level != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(level)); err == nil {
			h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
		}
		raftLevel = hclog.LevelFromString(level)
	}
	return slog.New(h), hclog.New(&hclog.LoggerOptions{Name: "raft", Level: raftLevel, Output: os.Stderr})
}

// newNode creates node i's token, HSM (with the master key), store, vault
// node and gRPC server.
func (c *Cluster) newNode(tb testing.TB, i int, foreignMK bool) *Node {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nd := &Node{ID: nodeID(i), fatals: make(chan error, 16)}
	nd.Token = softhsmtest.New(tb, "vt-"+nd.ID)
	h, err := keys.Open(ctx, nd.Token.Config())
	if err != nil {
		tb.Fatalf("vaulttest: open hsm of %s: %v", nd.ID, err)
	}
	nd.HSM = h
	tb.Cleanup(func() { c.stop(nd) }) // runs before the token's deletion
	if c.components == nil {
		set, err := h.GenerateComponents(ctx, keys.MinComponents)
		if err != nil {
			tb.Fatalf("vaulttest: generate master key components: %v", err)
		}
		c.components = set
		tb.Cleanup(set.Zero)
	}
	set := c.components
	if foreignMK {
		if set, err = h.GenerateComponents(ctx, keys.MinComponents); err != nil {
			tb.Fatalf("vaulttest: generate foreign master key components: %v", err)
		}
		defer set.Zero()
	}
	comps := make([]*keys.Component, len(set.Components))
	for j, comp := range set.Components {
		if comps[j], err = keys.NewComponent(append([]byte(nil), comp.Bytes()...), comp.KCV()); err != nil {
			tb.Fatalf("vaulttest: copy component: %v", err)
		}
	}
	if _, err := h.LoadMasterKey(ctx, comps, set.MasterKCV); err != nil {
		tb.Fatalf("vaulttest: load master key on %s: %v", nd.ID, err)
	}

	server, client := c.CA.Node(nd.ID)
	nd.serverTLS = server
	nd.storeCfg = raftstore.Config{
		NodeID:             nd.ID,
		BindAddr:           "127.0.0.1:0",
		DataDir:            tb.TempDir(),
		ServerTLS:          server,
		ClientTLS:          client,
		VerifyPeer:         c.authz.VerifyNodeCert,
		Logger:             c.raftLog,
		Fatal:              func(err error) { nd.fatals <- err },
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		OpenTimeout:        time.Second,
		InitialMmapSize:    64 << 20,
	}
	tb.Cleanup(func() {
		select {
		case err := <-nd.fatals:
			tb.Errorf("vaulttest: %s: raftstore fatal: %v", nd.ID, err)
		default:
		}
	})
	c.start(ctx, tb, nd)
	return nd
}

// start opens the store and the vault node and serves gRPC. A restart binds
// the addresses the node had before.
func (c *Cluster) start(ctx context.Context, tb testing.TB, nd *Node) {
	tb.Helper()
	var err error
	for try := 0; ; try++ { // a restarted node's port may linger briefly
		if nd.Store, err = raftstore.Open(nd.storeCfg); err == nil || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("vaulttest: open store of %s: %v", nd.ID, err)
	}
	nd.RaftAddr = nd.Store.Addr()
	nd.storeCfg.BindAddr = nd.RaftAddr
	if nd.AuditPath == "" {
		nd.AuditPath = filepath.Join(nd.storeCfg.DataDir, "audit", "audit.log")
	}
	if nd.Audit, err = audit.Open(nd.AuditPath, audit.Options{}); err != nil {
		_ = nd.Store.Shutdown()
		tb.Fatalf("vaulttest: open audit log of %s: %v", nd.ID, err)
	}
	vcfg := vault.Config{
		NodeID:     nd.ID,
		HSM:        nd.HSM,
		Store:      nd.Store,
		Authorizer: c.authz,
		Logger:     c.logger,
		Now:        c.Clock.Now,
		Audit:      nd.Audit,
	}
	if c.tune != nil {
		c.tune(&vcfg)
	}
	nd.Vault, err = vault.New(ctx, vcfg)
	if err != nil {
		_ = nd.Audit.Close()
		_ = nd.Store.Shutdown()
		tb.Fatalf("vaulttest: start vault on %s: %v", nd.ID, err)
	}
	bind := nd.Addr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	var lis net.Listener
	for try := 0; ; try++ {
		if lis, err = net.Listen("tcp", bind); err == nil || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("vaulttest: listen for gRPC on %s: %v", nd.ID, err)
	}
	nd.Addr = lis.Addr().String()
	nd.GRPC = vault.NewGRPCServer(nd.Vault, nd.serverTLS)
	nd.served = make(chan struct{})
	go func(s *grpc.Server, done chan struct{}) {
		defer close(done)
		_ = s.Serve(lis)
	}(nd.GRPC, nd.served)
	nd.running = true
}

// stop stops a node's gRPC server, vault node, store and HSM (in that
// order). Safe on a stopped node.
func (c *Cluster) stop(nd *Node) {
	if nd.running {
		nd.GRPC.Stop()
		<-nd.served
		_ = nd.Vault.Close()
		_ = nd.Audit.Close()
		_ = nd.Store.Shutdown()
		nd.running = false
	}
	if nd.HSM != nil {
		_ = nd.HSM.Close()
		nd.HSM = nil
	}
}

// StopNode stops node i (gRPC server, vault, store and HSM). Its data stay;
// RestartNode brings it back on the same addresses.
func (c *Cluster) StopNode(tb testing.TB, i int) {
	tb.Helper()
	c.stop(c.Nodes[i])
}

// RestartNode starts a stopped node again on its data and addresses. Its
// HSM is reopened (the master key is a token object and persists; working
// keys are loaded again from the replicated state).
func (c *Cluster) RestartNode(tb testing.TB, i int) {
	tb.Helper()
	nd := c.Nodes[i]
	if nd.running {
		tb.Fatalf("vaulttest: %s is running", nd.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := keys.Open(ctx, nd.Token.Config())
	if err != nil {
		tb.Fatalf("vaulttest: reopen hsm of %s: %v", nd.ID, err)
	}
	nd.HSM = h
	c.start(ctx, tb, nd)
}

// Leader returns the node that is leader now, waiting up to 10 seconds.
func (c *Cluster) Leader(tb testing.TB) *Node {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range c.Nodes {
			if nd.running && nd.Store.IsLeader() {
				return nd
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("vaulttest: no leader")
	return nil
}

// LeaderIndex returns the index of the leader in Nodes.
func (c *Cluster) LeaderIndex(tb testing.TB) int {
	tb.Helper()
	l := c.Leader(tb)
	for i, nd := range c.Nodes {
		if nd == l {
			return i
		}
	}
	return -1
}

// FollowerIndex returns the index of a running node that is not the leader.
func (c *Cluster) FollowerIndex(tb testing.TB) int {
	tb.Helper()
	l := c.LeaderIndex(tb)
	for i, nd := range c.Nodes {
		if i != l && nd.running {
			return i
		}
	}
	tb.Fatalf("vaulttest: no running follower")
	return -1
}

// Setup creates the dev keys and schemes (vault.DevSetup) through node 0.
func (c *Cluster) Setup(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Nodes[0].Vault.DevSetup(ctx); err != nil {
		tb.Fatalf("vaulttest: dev setup: %v", err)
	}
}

// TLS returns the client TLS configuration of an identity kind ("admin" or
// "client") and name, cached per identity.
func (c *Cluster) TLS(kind, name string) *tls.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := kind + "/" + name
	if conf, ok := c.tls[key]; ok {
		return conf
	}
	var conf *tls.Config
	if kind == "admin" {
		conf = c.CA.Admin(name)
	} else {
		conf = c.CA.Client(name)
	}
	c.tls[key] = conf
	return conf
}

// Conn returns a (cached) gRPC connection to node i with tlsConf, using
// vault.ClientDialOptions. It reconnects by itself after a restart.
func (c *Cluster) Conn(tb testing.TB, i int, tlsConf *tls.Config) *grpc.ClientConn {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := fmt.Sprintf("%d/%p", i, tlsConf)
	if cc, ok := c.conns[key]; ok {
		return cc
	}
	cc, err := grpc.NewClient(c.Nodes[i].Addr, vault.ClientDialOptions(tlsConf)...)
	if err != nil {
		tb.Fatalf("vaulttest: dial %s: %v", c.Nodes[i].ID, err)
	}
	c.conns[key] = cc
	return cc
}

func (c *Cluster) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cc := range c.conns {
		_ = cc.Close()
		delete(c.conns, k)
	}
}

// ClientConn is Conn with the client identity ClientName.
func (c *Cluster) ClientConn(tb testing.TB, i int) *grpc.ClientConn {
	tb.Helper()
	return c.Conn(tb, i, c.TLS("client", ClientName))
}

// AdminConn is Conn with the admin identity AdminName.
func (c *Cluster) AdminConn(tb testing.TB, i int) *grpc.ClientConn {
	tb.Helper()
	return c.Conn(tb, i, c.TLS("admin", AdminName))
}

// Tokens returns a TokenService client of node i as ClientName.
func (c *Cluster) Tokens(tb testing.TB, i int) pb.TokenServiceClient {
	tb.Helper()
	return pb.NewTokenServiceClient(c.ClientConn(tb, i))
}

// Signing returns a SigningService client of node i as ClientName.
func (c *Cluster) Signing(tb testing.TB, i int) pb.SigningServiceClient {
	tb.Helper()
	return pb.NewSigningServiceClient(c.ClientConn(tb, i))
}

// Admin returns an AdminService client of node i as AdminName.
func (c *Cluster) Admin(tb testing.TB, i int) pb.AdminServiceClient {
	tb.Helper()
	return pb.NewAdminServiceClient(c.AdminConn(tb, i))
}

// ClusterAdmin returns a ClusterService client of node i as AdminName.
func (c *Cluster) ClusterAdmin(tb testing.TB, i int) pb.ClusterServiceClient {
	tb.Helper()
	return pb.NewClusterServiceClient(c.AdminConn(tb, i))
}
