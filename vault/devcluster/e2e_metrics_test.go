package devcluster_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/devcluster"
	"github.com/panvault/panvault/vault/pki"
)

// scrapeMetrics reads every running node's /metrics over mutual TLS with
// the admin certificate, writes each body under dir (so that the PAN scan
// covers them) and checks that exactly one node reports leadership and
// every node reports its raftstore counters. A request without a client
// certificate is refused.
func scrapeMetrics(t *testing.T, c *devcluster.Cluster, dir string) {
	t.Helper()
	env := c.AdminEnv()
	tc, err := pki.LoadClientTLS(env.Cert, env.Key, env.CACert)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	leaders, first := 0, ""
	for _, n := range c.Nodes() {
		if !n.Running || n.MetricsAddr == "" {
			continue
		}
		resp, err := hc.Get("https://" + n.MetricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("%s metrics: %v", n.ID, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s metrics: status %d, %v", n.ID, resp.StatusCode, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "metrics-"+n.ID+".txt"), body, 0o600); err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = n.MetricsAddr
		}
		text := string(body)
		if strings.Contains(text, "\npanvault_raft_leader 1\n") {
			leaders++
		}
		for _, want := range []string{`panvault_raftstore_total{counter="applied_commands"}`, "panvault_raft_applied_index ", "go_goroutines "} {
			if !strings.Contains(text, want) {
				t.Fatalf("%s metrics lack %s", n.ID, want)
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes report leadership in their metrics, want 1", leaders)
	}
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS13}}}
	if resp, err := anon.Get("https://" + first + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatalf("metrics served without a client certificate: status %d", resp.StatusCode)
	}
}
