package devcluster

import (
	"bytes"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
)

// nodeConfig mirrors the `panvault server` configuration file (see
// cmd/panvault/config.go). The server parses it strictly, so any drift
// between the two fails the first start, in tests included.
type nodeConfig struct {
	NodeID          string   `toml:"node_id"`
	DataDir         string   `toml:"data_dir"`
	APIAddr         string   `toml:"api_addr"`
	RaftAddr        string   `toml:"raft_addr"`
	Bootstrap       bool     `toml:"bootstrap,omitempty"`
	Join            []string `toml:"join,omitempty"`
	JoinTimeout     string   `toml:"join_timeout,omitempty"`
	ShutdownTimeout string   `toml:"shutdown_timeout,omitempty"`
	MetricsAddr     string   `toml:"metrics_addr,omitempty"`
	// AuditAnchorInterval: dev nodes anchor their audit logs every few
	// seconds, so that `panvault audit verify --cluster` has something to
	// check soon after the cluster starts.
	AuditAnchorInterval string `toml:"audit_anchor_interval,omitempty"`

	HSM struct {
		Lib        string `toml:"lib"`
		TokenLabel string `toml:"token_label"`
		PINFile    string `toml:"pin_file"`
		PoolSize   int    `toml:"pool_size,omitzero"`
	} `toml:"hsm"`
	TLS struct {
		CertFile string `toml:"cert_file"`
		KeyFile  string `toml:"key_file"`
		CAFile   string `toml:"ca_file"`
	} `toml:"tls"`
	Authz struct {
		Admins  []string `toml:"admins"`
		Clients []string `toml:"clients"`
		Nodes   []string `toml:"nodes"`
	} `toml:"authz"`
	Raft struct {
		SnapshotThreshold uint64 `toml:"snapshot_threshold,omitzero"`
		SnapshotInterval  string `toml:"snapshot_interval,omitempty"`
		TrailingLogs      uint64 `toml:"trailing_logs,omitzero"`
		// Group commit (see raftstore.Config).
		MaxBatchCommands   int `toml:"max_batch_commands,omitzero"`
		MaxInflightBatches int `toml:"max_inflight_batches,omitzero"`
		// Grouped state commits (raftstore.Config.StateCommitInterval).
		StateCommitInterval string `toml:"state_commit_interval,omitempty"`
	} `toml:"raft"`
	Debug struct {
		PprofAddr string `toml:"pprof_addr,omitempty"`
	} `toml:"debug,omitempty"`
	Log struct {
		Format string `toml:"format"`
		Level  string `toml:"level"`
	} `toml:"log"`
}

// nodePaths are the files of one node inside the cluster directory.
type nodePaths struct {
	Dir, Config, PIN, SOPIN, SoftHSMDir, SoftHSMConf, Data, Log string
}

func pathsFor(clusterDir, id string) nodePaths {
	d := filepath.Join(clusterDir, id)
	return nodePaths{
		Dir:         d,
		Config:      filepath.Join(d, "panvault.toml"),
		PIN:         filepath.Join(d, "pin"),
		SOPIN:       filepath.Join(d, "so-pin"),
		SoftHSMDir:  filepath.Join(d, "softhsm"),
		SoftHSMConf: filepath.Join(d, "softhsm", "softhsm2.conf"),
		Data:        filepath.Join(d, "data"),
		Log:         filepath.Join(d, "node.log"),
	}
}

// tokenLabel is the SoftHSM token label of a node.
func tokenLabel(id string) string { return "panvault-" + id }

func durationString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

func (c *nodeConfig) encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by panvault dev (package devcluster); rewritten on every start.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
