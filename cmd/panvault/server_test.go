package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/panvault/panvault/vault/pki"
)

// serverConfigFile writes a complete server config around an [hsm] section.
func serverConfigFile(t *testing.T, hsm string) (cfg, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewDevCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.Node("node1")
	if err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	body := fmt.Sprintf(`node_id = "node1"
data_dir = %q
api_addr = "127.0.0.1:0"
raft_addr = "127.0.0.1:0"
bootstrap = true
%s
[tls]
cert_file = %q
key_file = %q
ca_file = %q
[authz]
admins = ["spiffe://panvault.dev/admin/admin"]
[log]
format = "json"
`, dataDir, hsm, node.Cert, node.Key, node.CA)
	cfg = filepath.Join(dir, "panvault.toml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, dataDir
}

// A node whose token has no master key stops at once with an error that says
// what to do, before it opens any replicated state.
func TestServerRefusesTokenWithoutMasterKey(t *testing.T) {
	hsm, _ := hsmSection(t, "nomk")
	cfg, dataDir := serverConfigFile(t, hsm)
	code, _, stderr := runCLI(t, "", "server", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "no master key") || !strings.Contains(stderr, "panvault mk load") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir created before the HSM check: %v", err)
	}
}

// A wrong PIN is a clear error that never shows either PIN.
func TestServerWrongPIN(t *testing.T) {
	hsm, pin := hsmSection(t, "badpin")
	pinFile := regexp.MustCompile(`pin_file = "([^"]+)"`).FindStringSubmatch(hsm)[1]
	wrong := "99" + pin[2:]
	if wrong == pin {
		wrong = "11" + pin[2:]
	}
	if err := os.WriteFile(pinFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := serverConfigFile(t, hsm)
	code, stdout, stderr := runCLI(t, "", "server", "--config", cfg)
	// Checked first: only output known to hold no PIN goes into a message.
	if strings.Contains(stdout+stderr, pin) || strings.Contains(stdout+stderr, wrong) {
		t.Fatal("a PIN was printed")
	}
	if code != 1 || !strings.Contains(stderr, "pin incorrect") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestServerConfigErrorExits(t *testing.T) {
	cfg := writeConfig(t, validConfig+"\nsurprise = true\n")
	code, _, stderr := runCLI(t, "", "server", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "surprise: unknown key") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "server"); code != 2 || !strings.Contains(stderr, `"config" not set`) {
		t.Fatalf("server without --config: exit %d, stderr %q; want 2, a usage error", code, stderr)
	}
}
