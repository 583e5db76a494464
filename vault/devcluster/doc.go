// Package devcluster runs a local panvault cluster of real processes: one
// `panvault server` child process per node, each with its own SoftHSM token
// directory, on 127.0.0.1. `panvault dev` uses it, and so do the end-to-end
// tests and local benchmarks.
//
// # Why real processes
//
// SoftHSM reads SOFTHSM2_CONF once per process and a PKCS#11 module is
// initialised once per process, so nodes with separate HSMs need separate
// processes; and what an operator runs (the binary, its strict config file,
// its signal handling, its logs on disk) is what should be tested. The
// orchestrator itself never opens an HSM: every step on a token (creating it,
// generating master-key components, loading the master key) runs as a child
// `panvault` process with that node's SOFTHSM2_CONF.
//
// # Layout of a cluster directory
//
//	DIR/devcluster.json   node ids and addresses (the source of truth on restart)
//	DIR/devcluster.lock   held while a Cluster runs (one orchestrator per DIR)
//	DIR/ca/               dev CA: ca.crt, ca.key, node-*, admin-admin.*, client-payments.*
//	DIR/mk/               master-key components (dev only: kept to set up added nodes)
//	DIR/custodians/       key files of the dev custodians alice, bob and carol (dev only)
//	DIR/client.env        export PANVAULT_ADDR=... (client identity)
//	DIR/admin.env         the same with the admin identity
//	DIR/nodeN/panvault.toml, pin, so-pin, softhsm/, data/, node.log
//
// Start on a directory that already holds a cluster restarts the same cluster:
// tokens, CA, certificates, master key, Raft data and addresses are reused.
// Node addresses never change once chosen, because peers record Raft
// addresses in the replicated configuration; a port taken by another program
// is reported, not silently replaced, except on a node's very first start.
//
// # Provisioning
//
// After the nodes are up, Start creates (idempotently, through the admin API)
// the keys and schemes listed in DefaultKeys and DefaultSchemes, so a client
// can tokenize at once, and registers the dev custodians (DevCustodians,
// quorum DevQuorum) with Ed25519 key files in DIR/custodians/, so that
// ceremonies can be tried at once. A restarted cluster keeps its registry.
//
// # Processes
//
// Children run in their own process group (a Ctrl-C in the terminal reaches
// the orchestrator only, which then stops the nodes in order: SIGTERM, then
// SIGKILL after Options.StopTimeout). On Linux a child also gets SIGTERM if
// the orchestrator dies. Each node's stdout and stderr are appended to its
// node.log.
//
// A Cluster is safe for concurrent use.
package devcluster
