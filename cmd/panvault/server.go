package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/audit"
	"github.com/panvault/panvault/vault/pki"
)

func newServerCmd(stdio *stdio) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "server --config FILE",
		Short: "Run a vault node until SIGINT or SIGTERM",
		Long: `Run one panvault node: open the HSM token (the master key must already be
loaded, see "panvault mk load"), open the replicated store with the node's
mTLS certificate, bootstrap a new cluster (bootstrap = true) or join an
existing one (join = [peer Raft addresses]), and serve the gRPC API until
SIGINT or SIGTERM, then stop gracefully.

The configuration file is strict TOML: unknown keys are errors that name the
key. Logs go to stderr (log.format = "json" or "text") and never contain a
PAN, PIN or key material.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), cfgPath, stdio.err)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "server configuration file (TOML)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runServer runs a node until ctx is cancelled (the signal context of main).
func runServer(ctx context.Context, cfgPath string, logOut io.Writer) (err error) {
	cfg, err := loadServerConfig(cfgPath)
	if err != nil {
		return err
	}
	baseLog, err := newLogger(logOut, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return &configError{Key: "log.level", Reason: err.Error()}
	}
	// The vault node adds its own node attribute to baseLog.
	log := baseLog.With("node", cfg.NodeID)
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted during startup: %w", err)
		}
		if err != nil {
			log.Error("server stopped with an error", "err", err)
		} else {
			log.Info("stopped")
		}
	}()

	// Bind the API and metrics ports first (pprof just below; Raft's when
	// the store opens, before it bootstraps or joins): a port conflict fails
	// before anything is opened and before the cluster's membership changes.
	lis, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen api_addr %s: %w", cfg.APIAddr, err)
	}
	defer lis.Close()
	var metricsLis net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLis, err = listenMetrics(cfg.MetricsAddr); err != nil {
			return err
		}
		defer metricsLis.Close()
	}

	applyRuntimeConfig(cfg.Runtime, log)
	if cfg.Debug.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.Debug.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	hsm, err := openHSM(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeLogged(log, "hsm", hsm.Close)
	// After a master-key rotation the key in use has another label (the one
	// the replicated state names); the node switches to it when the vault
	// starts. Only a node without Raft state must hold the configured one.
	mkKCV, haveMK := hsm.MasterKeyKCV()
	noMK := func() error {
		return fmt.Errorf("token %q has no master key (label %q, nor one the cluster's state names): load it with `panvault mk load` before starting the node: %w",
			cfg.HSM.TokenLabel, mkLabel(cfg), keys.ErrMasterKeyMissing)
	}
	if haveMK {
		log.Info("hsm open", "token", hsm.Token().Label, "serial", hsm.Token().Serial, "master_key_kcv", mkKCV.String())
	} else {
		had, err := raftstore.HasState(cfg.DataDir)
		if err != nil {
			return err
		}
		if !had {
			return noMK() // a new node: refuse before it opens any state or joins
		}
		log.Info("hsm open; no master key under the configured label", "token", hsm.Token().Label, "label", mkLabel(cfg))
	}

	serverTLS, err := pki.LoadServerTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CAFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	clientTLS, err := pki.LoadClientTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CAFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	authz, err := pki.NewAuthorizer(pki.AuthzConfig{Admins: cfg.Authz.Admins, Clients: cfg.Authz.Clients, Nodes: cfg.Authz.Nodes})
	if err != nil {
		return fmt.Errorf("authz: %w", err)
	}

	store, err := raftstore.Open(raftstore.Config{
		NodeID:        cfg.NodeID,
		BindAddr:      cfg.RaftAddr,
		AdvertiseAddr: cfg.RaftAdvertiseAddr,
		DataDir:       cfg.DataDir,
		ServerTLS:     serverTLS,
		ClientTLS:     clientTLS,
		// The cluster CA also issues client and admin certificates: only
		// identities holding the node role may speak Raft or forward writes.
		VerifyPeer:         authz.VerifyNodeCert,
		Logger:             newRaftLogger(logOut, cfg.Log.Format, cfg.Log.Level),
		SnapshotThreshold:  cfg.Raft.SnapshotThreshold,
		SnapshotInterval:   cfg.Raft.SnapshotInterval.Duration,
		TrailingLogs:       cfg.Raft.TrailingLogs,
		HeartbeatTimeout:   cfg.Raft.HeartbeatTimeout.Duration,
		ElectionTimeout:    cfg.Raft.ElectionTimeout.Duration,
		ApplyTimeout:       cfg.Raft.ApplyTimeout.Duration,
		MaxBatchCommands:   cfg.Raft.MaxBatchCommands,
		MaxInflightBatches: cfg.Raft.MaxInflightBatches,

		StateCommitInterval: cfg.Raft.StateCommitInterval.Duration,
	})
	if err != nil {
		return fmt.Errorf("raft store: %w", err)
	}
	defer closeLogged(log, "raft store", store.Shutdown)

	if err := enterCluster(ctx, cfg, store, log); err != nil {
		return err
	}

	auditLog, err := audit.Open(cfg.auditFile(), audit.Options{MaxFileBytes: cfg.AuditMaxBytes})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer closeLogged(log, "audit log", auditLog.Close)
	r := auditLog.Recovered()
	if r.TornBytes > 0 {
		log.Warn("audit log: a torn last record (a crash while writing) was cut off", "bytes", r.TornBytes, "seq", r.Seq)
	}
	if r.ContinuedFrom != "" {
		log.Info("audit log: the new file continues the rotated one", "rotated", r.ContinuedFrom, "seq", r.Seq)
	}

	node, err := vault.New(ctx, vault.Config{
		NodeID:     cfg.NodeID,
		HSM:        hsm,
		Store:      store,
		Authorizer: authz,
		Logger:     baseLog,
		Now:        time.Now,
		Audit:      auditLog,

		AuditAnchorInterval: cfg.AuditAnchorInterval.Duration,
	})
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer closeLogged(log, "vault node", node.Close)
	if _, ok := hsm.MasterKeyKCV(); !ok {
		return noMK()
	}
	if metricsLis != nil {
		stopMetrics, err := serveMetrics(metricsLis, serverTLS, node, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	gs := vault.NewGRPCServer(node, serverTLS)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	log.Info("serving", "api_addr", lis.Addr().String(), "raft_addr", store.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout().String())
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cfg.shutdownTimeout()):
		log.Warn("graceful stop timed out; closing open connections")
		gs.Stop()
		<-stopped
	}
	// The deferred closes run next: vault node, raft store, HSM, in that order.
	return nil
}

// closeLogged runs a deferred close and logs its error.
func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Warn("close", "what", what, "err", err)
		return
	}
	log.Debug("closed", "what", what)
}

func mkLabel(cfg *serverConfig) string {
	if cfg.HSM.MasterKeyLabel != "" {
		return cfg.HSM.MasterKeyLabel
	}
	return keys.DefaultMasterKeyLabel
}

// openHSM opens the configured token with the PIN from its file.
func openHSM(ctx context.Context, cfg *serverConfig) (*keys.HSM, error) {
	pin, err := readPIN(cfg.HSM.PINFile)
	if err != nil {
		return nil, err
	}
	hsm, err := keys.Open(ctx, keys.Config{
		Lib:            cfg.HSM.Lib,
		TokenLabel:     cfg.HSM.TokenLabel,
		PIN:            pin,
		PoolSize:       cfg.HSM.PoolSize,
		MasterKeyLabel: cfg.HSM.MasterKeyLabel,
	})
	if err != nil {
		return nil, fmt.Errorf("hsm (token %q): %w", cfg.HSM.TokenLabel, err)
	}
	return hsm, nil
}

// enterCluster bootstraps, joins or (with existing Raft state) does nothing.
func enterCluster(ctx context.Context, cfg *serverConfig, store *raftstore.Store, log *slog.Logger) error {
	if cfg.Bootstrap {
		if err := store.Bootstrap(ctx); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		return nil
	}
	if store.Status().LastLogIndex > 0 {
		log.Info("existing raft state; not asking to join")
		return nil
	}
	if len(cfg.Join) == 0 {
		log.Warn("no raft state, bootstrap = false and no join addresses: waiting to be added by a member")
		return nil
	}
	return joinCluster(ctx, store, cfg.Join, cfg.joinTimeout(), log)
}

// joinCluster asks each peer in turn to add this node, with backoff, until one
// accepts or timeout passes. A member conflict (id or address bound to another
// member) is permanent and returned at once.
func joinCluster(ctx context.Context, store *raftstore.Store, peers []string, timeout time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 200 * time.Millisecond
	var last error
	for {
		for _, p := range peers {
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			err := store.RequestJoin(actx, p)
			acancel()
			if err == nil {
				log.Info("joined cluster", "via", p)
				return nil
			}
			if errors.Is(err, raftstore.ErrMemberConflict) {
				return fmt.Errorf("join via %s: %w", p, err)
			}
			last = err
			log.Info("join attempt failed; will retry", "peer", p, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join: no member accepted within %v: %w", timeout, last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
