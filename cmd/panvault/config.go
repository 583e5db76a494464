package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// serverConfig is the strict configuration file of `panvault server` (also
// read by `panvault mk`, which uses its [hsm] section). Unknown keys are
// rejected and every error names the offending key, so a typo in a production
// config stops the node at start instead of being ignored.
//
// A serverConfig is a plain value: not safe for concurrent mutation.
type serverConfig struct {
	NodeID  string `toml:"node_id"`
	DataDir string `toml:"data_dir"`
	// APIAddr is the gRPC listen address for clients and admins.
	APIAddr string `toml:"api_addr"`
	// RaftAddr carries Raft traffic and proposal forwarding between nodes (mTLS).
	RaftAddr string `toml:"raft_addr"`
	// RaftAdvertiseAddr is the Raft address peers dial; defaults to RaftAddr.
	RaftAdvertiseAddr string `toml:"raft_advertise_addr"`
	// Bootstrap makes this node form a new single-node cluster when it has no state.
	Bootstrap bool `toml:"bootstrap"`
	// Join lists Raft addresses of existing members; a node without state asks
	// them, in order, to add it (raftstore.RequestJoin) until one accepts.
	Join []string `toml:"join"`
	// JoinTimeout bounds how long a new node keeps asking to join.
	JoinTimeout duration `toml:"join_timeout"`
	// ShutdownTimeout bounds the graceful stop after SIGINT/SIGTERM.
	ShutdownTimeout duration `toml:"shutdown_timeout"`
	// AuditFile is the node's hash-chained audit log (package vault/audit):
	// every detokenize, sign and administrative call is recorded there before
	// it is answered. Defaults to DATA_DIR/audit/audit.log.
	AuditFile string `toml:"audit_file"`
	// AuditAnchorInterval is how often the node records its audit log's
	// head through Raft while the log grows (default 1m; vault/auditanchor.go).
	AuditAnchorInterval duration `toml:"audit_anchor_interval"`
	// AuditMaxBytes rotates the audit log once it holds this many bytes
	// (0: never; vault/audit/rotate.go).
	AuditMaxBytes int64 `toml:"audit_max_bytes"`
	// MetricsAddr, if set, serves Prometheus metrics at /metrics on this
	// address over HTTPS with the node's certificate, to clients holding a
	// certificate of the cluster CA (mutual TLS, like every other port).
	MetricsAddr string `toml:"metrics_addr"`

	HSM     hsmConfig     `toml:"hsm"`
	TLS     tlsConfig     `toml:"tls"`
	Authz   authzConfig   `toml:"authz"`
	Raft    raftConfig    `toml:"raft"`
	Log     logConfig     `toml:"log"`
	Debug   debugConfig   `toml:"debug"`
	Runtime runtimeConfig `toml:"runtime"`
}

// runtimeConfig tunes the Go runtime of a node. The GOGC and GOMEMLIMIT
// environment variables, when set, take precedence.
type runtimeConfig struct {
	// GCPercent is the garbage collector's target heap growth (GOGC);
	// 0 means defaultGCPercent. A node's live heap is small (tens of MiB:
	// the state is in bbolt), so collecting less often saves CPU.
	GCPercent int `toml:"gc_percent"`
	// MemoryLimitMiB is a soft limit on the Go heap (GOMEMLIMIT) in MiB;
	// 0 means defaultMemoryLimitMiB. Below it the collector runs as
	// GCPercent says; near it, as often as needed (state commits of a
	// large store make short-lived heap peaks).
	MemoryLimitMiB int `toml:"memory_limit_mib"`
}

// defaultGCPercent: measured 9% less node CPU per vaulted tokenization
// than Go's default of 100 (docs/performance.md).
const defaultGCPercent = 400

// defaultMemoryLimitMiB keeps a node's heap, with GC percent 400, inside a
// 1 GiB budget (the rest is bbolt's memory-mapped files).
const defaultMemoryLimitMiB = 768

// debugConfig holds diagnostics that are off by default.
type debugConfig struct {
	// PprofAddr, if set, serves net/http/pprof on this loopback address
	// (profiling benchmarks). Profiles hold no key or PAN, but they are
	// not for the network: only loopback addresses are accepted.
	PprofAddr string `toml:"pprof_addr"`
}

type hsmConfig struct {
	Lib        string `toml:"lib"`
	TokenLabel string `toml:"token_label"`
	// PINFile holds the user PIN; the PIN itself never appears in the config or logs.
	PINFile  string `toml:"pin_file"`
	PoolSize int    `toml:"pool_size"`
	// MasterKeyLabel names the master key object inside the token.
	MasterKeyLabel string `toml:"master_key_label"`
}

type tlsConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	CAFile   string `toml:"ca_file"`
}

type authzConfig struct {
	// Admins and Clients list certificate identities (URI SAN, else CN).
	Admins  []string `toml:"admins"`
	Clients []string `toml:"clients"`
	// Nodes lists identities of cluster members allowed to call node-to-node methods.
	Nodes []string `toml:"nodes"`
}

// raftConfig tunes raftstore; zero values keep raftstore's defaults.
type raftConfig struct {
	// SnapshotThreshold: log entries since the last snapshot before a new one.
	SnapshotThreshold uint64 `toml:"snapshot_threshold"`
	// SnapshotInterval: how often raft checks whether to snapshot.
	SnapshotInterval duration `toml:"snapshot_interval"`
	// TrailingLogs: entries kept after a snapshot for slow followers.
	TrailingLogs     uint64   `toml:"trailing_logs"`
	HeartbeatTimeout duration `toml:"heartbeat_timeout"`
	ElectionTimeout  duration `toml:"election_timeout"`
	ApplyTimeout     duration `toml:"apply_timeout"`
	// MaxBatchCommands bounds the commands of one Raft entry (group commit);
	// MaxInflightBatches the entries in flight at once.
	MaxBatchCommands   int `toml:"max_batch_commands"`
	MaxInflightBatches int `toml:"max_inflight_batches"`
	// StateCommitInterval: how often applied writes are committed to the
	// state DB (raftstore.Config.StateCommitInterval).
	StateCommitInterval duration `toml:"state_commit_interval"`
}

type logConfig struct {
	// Format is "json" (default) or "text".
	Format string `toml:"format"`
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `toml:"level"`
}

// duration is a time.Duration written as a Go duration string ("1m30s").
// Decoding keeps the text; validate parses it, so that an error names the key.
type duration struct {
	time.Duration
	text string
}

func (d *duration) UnmarshalText(b []byte) error {
	d.text = string(b)
	return nil
}

// parse sets Duration from the text, or fails naming key.
func (d *duration) parse(key string) error {
	if d.text == "" {
		return nil
	}
	v, err := time.ParseDuration(d.text)
	if err != nil {
		return &configError{Key: key, Reason: `want a duration such as "30s"`}
	}
	if v < 0 {
		return &configError{Key: key, Reason: "must not be negative"}
	}
	d.Duration = v
	return nil
}

// errConfig marks every configuration error.
var errConfig = errors.New("config")

// configError names the key that failed.
type configError struct {
	Key    string
	Reason string
}

func (e *configError) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Reason) }

// Unwrap lets callers test errors.Is(err, errConfig).
func (e *configError) Unwrap() error { return errConfig }

// loadServerConfig reads and validates path strictly.
func loadServerConfig(path string) (*serverConfig, error) {
	c, err := decodeConfig(path)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadHSMConfig reads path strictly but validates only its [hsm] section, for
// the master-key commands that run before a node is fully configured.
func loadHSMConfig(path string) (*serverConfig, error) {
	c, err := decodeConfig(path)
	if err != nil {
		return nil, err
	}
	if err := c.validateHSM(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeConfig(path string) (*serverConfig, error) {
	var c serverConfig
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%w %s: line %d: %s", errConfig, path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%w %s: %w", errConfig, path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, &configError{Key: strings.Join(keys, ", "), Reason: "unknown key"}
	}
	return &c, nil
}

func (c *serverConfig) validateHSM() error {
	for _, r := range []struct{ key, val string }{
		{"hsm.lib", c.HSM.Lib}, {"hsm.token_label", c.HSM.TokenLabel}, {"hsm.pin_file", c.HSM.PINFile},
	} {
		if strings.TrimSpace(r.val) == "" {
			return &configError{Key: r.key, Reason: "required"}
		}
	}
	if c.HSM.PoolSize < 0 || c.HSM.PoolSize > 256 {
		return &configError{Key: "hsm.pool_size", Reason: "must be between 0 (default) and 256"}
	}
	return nil
}

func (c *serverConfig) validate() error {
	req := []struct{ key, val string }{
		{"node_id", c.NodeID}, {"data_dir", c.DataDir}, {"api_addr", c.APIAddr}, {"raft_addr", c.RaftAddr},
		{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}, {"tls.ca_file", c.TLS.CAFile},
	}
	for _, r := range req {
		if strings.TrimSpace(r.val) == "" {
			return &configError{Key: r.key, Reason: "required"}
		}
	}
	if err := c.validateHSM(); err != nil {
		return err
	}
	addrs := []struct{ key, val string }{{"api_addr", c.APIAddr}, {"raft_addr", c.RaftAddr}}
	if c.RaftAdvertiseAddr != "" {
		addrs = append(addrs, struct{ key, val string }{"raft_advertise_addr", c.RaftAdvertiseAddr})
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			return &configError{Key: a.key, Reason: "want host:port"}
		}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return &configError{Key: fmt.Sprintf("join[%d]", i), Reason: "want host:port"}
		}
	}
	if c.Bootstrap && len(c.Join) > 0 {
		return &configError{Key: "bootstrap", Reason: "cannot be combined with join"}
	}
	if c.AuditMaxBytes < 0 || c.AuditMaxBytes > 0 && c.AuditMaxBytes < minAuditMaxBytes {
		return &configError{Key: "audit_max_bytes", Reason: fmt.Sprintf("want 0 (never rotate) or at least %d bytes", minAuditMaxBytes)}
	}
	if len(c.Authz.Admins)+len(c.Authz.Clients) == 0 {
		return &configError{Key: "authz", Reason: "no admin or client identity configured: every request would be denied"}
	}
	for _, d := range []struct {
		key string
		d   *duration
	}{
		{"join_timeout", &c.JoinTimeout}, {"shutdown_timeout", &c.ShutdownTimeout}, {"audit_anchor_interval", &c.AuditAnchorInterval},
		{"raft.snapshot_interval", &c.Raft.SnapshotInterval}, {"raft.heartbeat_timeout", &c.Raft.HeartbeatTimeout},
		{"raft.election_timeout", &c.Raft.ElectionTimeout}, {"raft.apply_timeout", &c.Raft.ApplyTimeout},
		{"raft.state_commit_interval", &c.Raft.StateCommitInterval},
	} {
		if err := d.d.parse(d.key); err != nil {
			return err
		}
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		return &configError{Key: "log.format", Reason: `want "json" or "text"`}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return &configError{Key: "log.level", Reason: `want "debug", "info", "warn" or "error"`}
	}
	if v := c.Runtime.GCPercent; v != 0 && (v < 25 || v > 10000) {
		return &configError{Key: "runtime.gc_percent", Reason: "must be between 25 and 10000 (0: default)"}
	}
	if v := c.Runtime.MemoryLimitMiB; v < 0 || (v > 0 && v < 64) {
		return &configError{Key: "runtime.memory_limit_mib", Reason: "must be 0 (default) or at least 64"}
	}
	if v := c.Raft.StateCommitInterval.Duration; v != 0 && (v < 10*time.Millisecond || v > time.Minute) {
		return &configError{Key: "raft.state_commit_interval", Reason: "must be between 10ms and 1m"}
	}
	if v := c.Raft.MaxBatchCommands; v < 0 || v > 4096 {
		return &configError{Key: "raft.max_batch_commands", Reason: "must be between 0 (default) and 4096"}
	}
	if v := c.Raft.MaxInflightBatches; v < 0 || v > 64 {
		return &configError{Key: "raft.max_inflight_batches", Reason: "must be between 0 (default) and 64"}
	}
	if a := c.MetricsAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil || a == c.APIAddr || a == c.RaftAddr {
			return &configError{Key: "metrics_addr", Reason: "want a host:port of its own, such as 127.0.0.1:9464"}
		}
	}
	if a := c.Debug.PprofAddr; a != "" {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return &configError{Key: "debug.pprof_addr", Reason: "want a loopback host:port such as 127.0.0.1:6060"}
		}
	}
	if v := c.Raft.SnapshotInterval.Duration; v != 0 && v < 100*time.Millisecond {
		return &configError{Key: "raft.snapshot_interval", Reason: "must be at least 100ms"}
	}
	if v := c.Raft.HeartbeatTimeout.Duration; v != 0 && v < 5*time.Millisecond {
		return &configError{Key: "raft.heartbeat_timeout", Reason: "must be at least 5ms"}
	}
	if v := c.Raft.ElectionTimeout.Duration; v != 0 && v < 5*time.Millisecond {
		return &configError{Key: "raft.election_timeout", Reason: "must be at least 5ms"}
	}
	return nil
}

// joinTimeout returns the configured join timeout or its default.
func (c *serverConfig) joinTimeout() time.Duration {
	if c.JoinTimeout.Duration > 0 {
		return c.JoinTimeout.Duration
	}
	return 2 * time.Minute
}

// shutdownTimeout returns the configured graceful-stop bound or its default.
func (c *serverConfig) shutdownTimeout() time.Duration {
	if c.ShutdownTimeout.Duration > 0 {
		return c.ShutdownTimeout.Duration
	}
	return 15 * time.Second
}

// minAuditMaxBytes is the smallest audit_max_bytes: a rotation per few
// hundred records would only multiply files.
const minAuditMaxBytes = 1 << 20

// auditFile is audit_file, or its default in the data directory.
func (c *serverConfig) auditFile() string {
	if c.AuditFile != "" {
		return c.AuditFile
	}
	return filepath.Join(c.DataDir, "audit", "audit.log")
}

// readPIN reads the HSM PIN from the file named by hsm.pin_file.
func readPIN(path string) (string, error) { return readSecretFile("hsm.pin_file", path) }

// readSecretFile reads a PIN-like secret from path, trimming trailing
// newlines. The file must not be accessible by group or others. Errors name
// key (a config key or flag) and never contain the secret.
func readSecretFile(key, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", &configError{Key: key, Reason: err.Error()}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", &configError{Key: key, Reason: fmt.Sprintf("%s: permissions %v: must not be accessible by group or others", path, st.Mode().Perm())}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &configError{Key: key, Reason: err.Error()}
	}
	pin := strings.TrimRight(string(b), "\r\n")
	clear(b)
	if pin == "" {
		return "", &configError{Key: key, Reason: path + ": empty"}
	}
	return pin, nil
}
