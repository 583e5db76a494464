package vault

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Prometheus metrics of a node. The collector reads the node's counters
// and local state when scraped, so nothing on the request path updates a
// metric. Labels are key names and ceremony entry types: never card data,
// never secret.

var (
	descReencrypted = prometheus.NewDesc("panvault_reencrypt_records_total",
		"Token records re-encrypted to a newer key version by this node.", []string{"key"}, nil)
	descJobRecords = prometheus.NewDesc("panvault_reencrypt_job_records",
		"Progress of each key's re-encryption job (replicated state): records visited so far and records in its schemes when it started.", []string{"key", "count"}, nil)
	descJobDone = prometheus.NewDesc("panvault_reencrypt_job_done",
		"1 when the key's re-encryption job has finished, 0 while it runs.", []string{"key"}, nil)
	descCryptoperiod = prometheus.NewDesc("panvault_key_cryptoperiod_elapsed",
		"1 when the key's latest version is past its cryptoperiod (rotation due).", []string{"key"}, nil)
	descCeremonySteps = prometheus.NewDesc("panvault_ceremony_steps_total",
		"Ceremony log entries committed by this node.", []string{"type"}, nil)
	descRetokenized = prometheus.NewDesc("panvault_retokenized_total",
		"FF1 tokens migrated to a newer key version by this node.", nil, nil)
	descLeader = prometheus.NewDesc("panvault_raft_leader",
		"1 while this node is the Raft leader.", nil, nil)
	descApplied = prometheus.NewDesc("panvault_raft_applied_index",
		"Highest Raft log index reflected in this node's state.", nil, nil)
	descAudit = prometheus.NewDesc("panvault_audit_total",
		"Audit log since the node started: entries written and fdatasyncs (group commit: entries per sync); files rotated and rotations that failed (the log kept its file); anchors recorded through Raft and anchor proposals that failed (tried again at the next interval).", []string{"counter"}, nil)
	descStore = prometheus.NewDesc("panvault_raftstore_total",
		"Raftstore counters since the node started: applied entries and commands, entries appended as leader, proposal batches forwarded to a leader, snapshot restores, state commits.", []string{"counter"}, nil)
)

// nodeCollector is the prometheus.Collector of a Node. Safe for concurrent
// use.
type nodeCollector struct{ n *Node }

// MetricsCollector returns a collector of n's metrics, to register with a
// prometheus.Registry.
func (n *Node) MetricsCollector() prometheus.Collector { return nodeCollector{n} }

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReencrypted, descJobRecords, descJobDone, descCryptoperiod,
		descCeremonySteps, descRetokenized, descLeader, descApplied, descStore, descAudit} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	s := n.KeyMetrics()
	for k, v := range s.Reencrypted {
		ch <- prometheus.MustNewConstMetric(descReencrypted, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range s.CryptoperiodElapsed {
		ch <- prometheus.MustNewConstMetric(descCryptoperiod, prometheus.GaugeValue, boolFloat(v), k)
	}
	for k, v := range s.CeremonySteps {
		ch <- prometheus.MustNewConstMetric(descCeremonySteps, prometheus.CounterValue, float64(v), k)
	}
	ch <- prometheus.MustNewConstMetric(descRetokenized, prometheus.CounterValue, float64(s.Retokenized))

	st := n.store
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, boolFloat(st.IsLeader()))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.AppliedIndex()))
	m := st.Metrics()
	for name, v := range map[string]uint64{
		"applied_entries": m.AppliedEntries, "applied_commands": m.AppliedCommands, "leader_entries": m.LeaderEntries,
		"forward_rpcs": m.ForwardRPCs, "restores": m.Restores, "state_commits": m.StateCommits,
	} {
		ch <- prometheus.MustNewConstMetric(descStore, prometheus.CounterValue, float64(v), name)
	}

	if n.audit != nil {
		as := n.audit.Stats()
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(as.Entries), "entries")
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(as.Syncs), "syncs")
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(as.Rotations), "rotations")
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(as.RotateFailures), "rotate_failures")
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(n.anchors.Load()), "anchors")
		ch <- prometheus.MustNewConstMetric(descAudit, prometheus.CounterValue, float64(n.anchorFailures.Load()), "anchor_failures")
	}

	// Re-encryption jobs from this node's copy of the replicated state.
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	// A closing node fails the scan: the other metrics stand.
	_ = n.scanAll(ctx, bucketReencrypt, nil, raftstore.Stale, func(kvs []raftstore.KV) bool {
		for _, kv := range kvs {
			job := &vaultpb.ReencryptJob{}
			if decodeRecord(kv.Value, job) != nil {
				continue
			}
			key := string(kv.Key)
			ch <- prometheus.MustNewConstMetric(descJobRecords, prometheus.GaugeValue, float64(job.GetVisited()), key, "visited")
			ch <- prometheus.MustNewConstMetric(descJobRecords, prometheus.GaugeValue, float64(job.GetTotal()), key, "total")
			ch <- prometheus.MustNewConstMetric(descJobDone, prometheus.GaugeValue, boolFloat(job.GetDone()), key)
		}
		return true
	})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
