package vault_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/panvault/panvault/vault"
)

// gatherValue scrapes n's collector through a registry (as /metrics does)
// and returns the value of metric name with label=value (no label when
// label is empty).
func gatherValue(t *testing.T, n *vault.Node, name, label, value string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n.MetricsCollector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestMetricsCollector: the collector passes the registry's consistency
// checks and reports leadership, applied index and raftstore counters, and
// a key's re-encryption job with its progress.
func TestMetricsCollector(t *testing.T) {
	c, cs := ceremonyCluster(t, fastJobs)
	ctx := ctxT(t)
	lead := c.LeaderIndex(t)
	leaders := 0.0
	for _, nd := range c.Nodes {
		v, ok := gatherValue(t, nd.Vault, "panvault_raft_leader", "", "")
		if !ok {
			t.Fatalf("%s: no panvault_raft_leader", nd.ID)
		}
		leaders += v
		if a, ok := gatherValue(t, nd.Vault, "panvault_raft_applied_index", "", ""); !ok || a < 1 {
			t.Fatalf("%s: applied index %v %v", nd.ID, a, ok)
		}
	}
	if leaders != 1 {
		t.Fatalf("%v nodes report leadership", leaders)
	}
	if v, ok := gatherValue(t, c.Nodes[lead].Vault, "panvault_raftstore_total", "counter", "leader_entries"); !ok || v < 1 {
		t.Fatalf("leader's leader_entries: %v %v", v, ok)
	}

	tokenizeSeq(ctx, t, c, 0, vault.DevSchemeVaulted, 0, 20)
	runCeremony(ctx, t, c, 0, rotate(vault.DevKeyPAN), cs[0], cs[1])
	waitReencrypted(ctx, t, c, 1, vault.DevKeyPAN, 2)
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" reports the finished job", func() bool {
			v, ok := gatherValue(t, nd.Vault, "panvault_reencrypt_job_done", "key", vault.DevKeyPAN)
			return ok && v == 1
		})
		if v, _ := gatherValue(t, nd.Vault, "panvault_reencrypt_job_records", "count", "visited"); v < 20 {
			t.Fatalf("%s: job visited %v records, want at least the 20 tokenized", nd.ID, v)
		}
	}
	// The ceremony above was proposed through n0: an audited call.
	if v, ok := gatherValue(t, c.Nodes[0].Vault, "panvault_audit_total", "counter", "entries"); !ok || v < 1 {
		t.Fatalf("n0 audit entries: %v %v", v, ok)
	}
	if v, ok := gatherValue(t, c.Nodes[0].Vault, "panvault_audit_total", "counter", "syncs"); !ok || v < 1 {
		t.Fatalf("n0 audit syncs: %v %v", v, ok)
	}
	var reenc float64
	for _, nd := range c.Nodes {
		v, _ := gatherValue(t, nd.Vault, "panvault_reencrypt_records_total", "key", vault.DevKeyPAN)
		reenc += v
	}
	if reenc < 20 {
		t.Fatalf("re-encrypted %v records over all nodes, want at least 20", reenc)
	}
}
