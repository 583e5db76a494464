package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validConfig = `
node_id = "node1"
data_dir = "/var/lib/panvault"
api_addr = "127.0.0.1:7443"
raft_addr = "127.0.0.1:7444"
bootstrap = true
join_timeout = "30s"

[hsm]
lib = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "node1"
pin_file = "/etc/panvault/pin"

[tls]
cert_file = "node.crt"
key_file = "node.key"
ca_file = "ca.crt"

[authz]
admins = ["spiffe://panvault.dev/admin/admin"]
clients = ["spiffe://panvault.dev/client/payments"]

[raft]
snapshot_threshold = 64
snapshot_interval = "1s"

[log]
format = "text"
level = "debug"
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "panvault.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadServerConfigValid(t *testing.T) {
	c, err := loadServerConfig(writeConfig(t, validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "node1" || !c.Bootstrap || c.HSM.TokenLabel != "node1" || c.Raft.SnapshotThreshold != 64 {
		t.Fatalf("decoded %+v", c)
	}
	if c.Raft.SnapshotInterval.Duration != time.Second || c.joinTimeout() != 30*time.Second || c.shutdownTimeout() != 15*time.Second {
		t.Fatalf("durations: snapshot %v join %v shutdown %v", c.Raft.SnapshotInterval, c.joinTimeout(), c.shutdownTimeout())
	}
}

// Every rejected config names the key at fault.
func TestLoadServerConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		name, from, to, key string
	}{
		{"unknown top-level key", `node_id = "node1"`, "node_id = \"node1\"\nnode_idd = \"x\"", "node_idd"},
		{"unknown nested key", `pin_file = "/etc/panvault/pin"`, "pin_file = \"/etc/panvault/pin\"\npin_fille = \"x\"", "hsm.pin_fille"},
		{"unknown table", `[log]`, "[metrics]\naddr = \"x\"\n[log]", "metrics.addr"},
		{"missing node_id", `node_id = "node1"`, "", "node_id"},
		{"missing tls file", `key_file = "node.key"`, "", "tls.key_file"},
		{"missing pin file", `pin_file = "/etc/panvault/pin"`, "", "hsm.pin_file"},
		{"address without port", `api_addr = "127.0.0.1:7443"`, `api_addr = "7443"`, "api_addr"},
		{"bootstrap with join", `bootstrap = true`, "bootstrap = true\njoin = [\"127.0.0.1:9\"]", "bootstrap"},
		{"bad join address", `bootstrap = true`, "join = [\"127.0.0.1:9\", \"nowhere\"]", "join[1]"},
		{"bad log format", `format = "text"`, `format = "xml"`, "log.format"},
		{"bad level", `level = "debug"`, `level = "loud"`, "log.level"},
		{"bad duration", `join_timeout = "30s"`, `join_timeout = "soon"`, "join_timeout"},
		{"bad raft duration", `snapshot_interval = "1s"`, `snapshot_interval = "1"`, "raft.snapshot_interval"},
		{"tiny snapshot interval", `snapshot_interval = "1s"`, `snapshot_interval = "1ms"`, "raft.snapshot_interval"},
		{"wrong type", `snapshot_threshold = 64`, `snapshot_threshold = "many"`, "snapshot_threshold"},
		{"pool size", `pin_file = "/etc/panvault/pin"`, "pin_file = \"/etc/panvault/pin\"\npool_size = 100000", "hsm.pool_size"},
		{"metrics on the api port", `bootstrap = true`, "bootstrap = true\nmetrics_addr = \"127.0.0.1:7443\"", "metrics_addr"},
		{"metrics without port", `bootstrap = true`, "bootstrap = true\nmetrics_addr = \"9464\"", "metrics_addr"},
		{"tiny audit files", `bootstrap = true`, "bootstrap = true\naudit_max_bytes = 4096", "audit_max_bytes"},
		{"bad anchor interval", `bootstrap = true`, "bootstrap = true\naudit_anchor_interval = \"often\"", "audit_anchor_interval"},
		{"pprof on the network", `[log]`, "[debug]\npprof_addr = \"0.0.0.0:6060\"\n[log]", "debug.pprof_addr"},
		{"batch bound", `snapshot_interval = "1s"`, "snapshot_interval = \"1s\"\nmax_batch_commands = 100000", "raft.max_batch_commands"},
		{"inflight bound", `snapshot_interval = "1s"`, "snapshot_interval = \"1s\"\nmax_inflight_batches = -1", "raft.max_inflight_batches"},
		{"no identities", `admins = ["spiffe://panvault.dev/admin/admin"]
clients = ["spiffe://panvault.dev/client/payments"]`, "", "authz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validConfig, tc.from) {
				t.Fatalf("test bug: %q not in the valid config", tc.from)
			}
			body := strings.Replace(validConfig, tc.from, tc.to, 1)
			_, err := loadServerConfig(writeConfig(t, body))
			if err == nil {
				t.Fatal("config accepted")
			}
			if !errors.Is(err, errConfig) {
				t.Errorf("error %v does not wrap errConfig", err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

// The mk commands need only the [hsm] section.
func TestLoadHSMConfig(t *testing.T) {
	body := "[hsm]\nlib = \"/x.so\"\ntoken_label = \"t\"\npin_file = \"/p\"\n"
	if _, err := loadHSMConfig(writeConfig(t, body)); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHSMConfig(writeConfig(t, body+"colour = 1\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := loadHSMConfig(writeConfig(t, strings.Replace(body, "token_label", "label", 1))); err == nil {
		t.Fatal("missing token_label accepted")
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pin")
	if err := os.WriteFile(p, []byte("s3cret-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pin, err := readPIN(p); err != nil || pin != "s3cret-pin" {
		t.Fatalf("readPIN: matches=%v (len %d), err %v", pin == "s3cret-pin", len(pin), err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := readPIN(p)
	if err == nil || !strings.Contains(err.Error(), "hsm.pin_file") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("group-readable PIN file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readPIN(empty); err == nil {
		t.Fatal("empty PIN accepted")
	}
}
