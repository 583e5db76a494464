package devcluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptionsNormalize(t *testing.T) {
	for name, o := range map[string]Options{
		"no dir":        {Binary: "/bin/true"},
		"no binary":     {Dir: "/tmp/x"},
		"nodes":         {Dir: "/tmp/x", Binary: "/bin/true", Nodes: 16},
		"components":    {Dir: "/tmp/x", Binary: "/bin/true", Components: 1},
		"log format":    {Dir: "/tmp/x", Binary: "/bin/true", NodeLogFormat: "xml"},
		"negative node": {Dir: "/tmp/x", Binary: "/bin/true", Nodes: -1},
	} {
		if err := o.normalize(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", name, err)
		}
	}
	o := Options{Dir: "rel", Binary: "bin/panvault"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(o.Dir) || !filepath.IsAbs(o.Binary) || o.Components != 2 || o.NodeLogFormat != "json" || o.Log == nil {
		t.Fatalf("defaults not applied: %+v", o)
	}
}

func TestStateRoundTripAndIDs(t *testing.T) {
	dir := t.TempDir()
	if s, err := readState(dir); s != nil || err != nil {
		t.Fatalf("empty dir: %v %v", s, err)
	}
	s := &state{Version: stateVersion}
	for range 3 {
		if _, err := s.newNode(nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Nodes[1].Removed = true
	if _, err := s.newNode(nil); err != nil {
		t.Fatal(err)
	}
	if s.Nodes[3].ID != "node4" {
		t.Fatalf("ids are never reused: got %s", s.Nodes[3].ID)
	}
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		for _, a := range []string{n.APIAddr, n.RaftAddr} {
			if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
				t.Fatalf("address %q repeated or not loopback", a)
			}
			seen[a] = true
		}
	}
	if err := s.write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil || len(got.Nodes) != 4 || got.NextID != 4 || !got.Nodes[1].Removed || got.Nodes[2].APIAddr != s.Nodes[2].APIAddr {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFileName), []byte(`{"version": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(dir); !errors.Is(err, ErrMismatch) {
		t.Fatalf("unknown version: %v", err)
	}
}

// The export line survives a POSIX shell: values with spaces and quotes come
// back unchanged.
func TestEnvExportsShellSafe(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	e := Env{Addr: "127.0.0.1:1,127.0.0.1:2", CACert: "/tmp/a dir/ca.crt", Cert: "/tmp/it's/c.crt", Key: "/tmp/$HOME/k"}
	script := e.Exports() + `; printf '%s\n' "$PANVAULT_ADDR" "$PANVAULT_CACERT" "$PANVAULT_CERT" "$PANVAULT_KEY"`
	out, err := exec.Command(sh, "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{e.Addr, e.CACert, e.Cert, e.Key}, "\n") + "\n"
	if string(out) != want {
		t.Fatalf("shell read back %q, want %q", out, want)
	}
	if !strings.HasPrefix(e.Exports(), "export PANVAULT_ADDR=127.0.0.1:1,127.0.0.1:2 ") {
		t.Fatalf("plain values should stay unquoted: %s", e.Exports())
	}
}

func TestLockDirExclusive(t *testing.T) {
	dir := t.TempDir()
	f, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	f.Close()
	g, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	g.Close()
}

func TestNodeConfigEncodesDurationsAsText(t *testing.T) {
	var c nodeConfig
	c.NodeID = "node1"
	c.JoinTimeout = durationString(90e9)
	c.Raft.SnapshotThreshold = 0
	b, err := c.encode()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `join_timeout = "1m30s"`) || strings.Contains(s, "snapshot_threshold") || strings.Contains(s, "shutdown_timeout") {
		t.Fatalf("encoded config:\n%s", s)
	}
}
