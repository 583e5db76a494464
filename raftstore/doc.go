// Package raftstore is a replicated, linearizable key-value store built on
// hashicorp/raft.
//
// Why it exists: the vault must never lose an acknowledged write and must
// answer reads that reflect every acknowledged write, on any node, while
// holding far more records than fit in memory. raftstore provides exactly
// that and nothing domain-specific: it knows nothing of cards or keys and
// imports no other package of this module.
//
// What it offers:
//
//   - Propose applies a Command, a short list of ops (Put, PutIfAbsent,
//     Delete, CompareAndSet) over named buckets, atomically: every condition
//     is checked first and if one fails nothing of the command is written;
//     the Result names the failing op and carries the existing value.
//   - Group commit: concurrent proposals are coalesced by one committer
//     goroutine into a single Raft log entry; followers forward proposals to
//     the leader (and coalesce too).
//   - Get, GetMany and Scan read either linearizably (the leader confirms its
//     leadership; a follower asks the leader for its commit index, one round
//     trip shared by concurrent reads, and waits until it has applied that
//     far) or stale (local state only).
//   - Subscribe reports changes to named buckets asynchronously, so a caller
//     can react to replicated data (for example load a new wrapped key into
//     its HSM) outside the state machine.
//   - Membership: Bootstrap, Join, RequestJoin, Remove, TransferLeadership,
//     Status, Members.
//
// Storage: the Raft log and stable store are raft-boltdb files, snapshots a
// file snapshot store, and the applied state a bbolt file of its own. The
// applied index is stored in the state file in the same transaction as the
// writes it covers, so a restarted node skips log entries already applied
// instead of applying them twice, and does not reload a snapshot older than
// its state. Applied writes are grouped in memory and committed to the state
// file (fsynced) every StateCommitInterval, so a state commit serves many
// Raft entries; reads see them at once, and the Raft log, durable on a
// majority before anything is applied, is their write-ahead log.
//
// Transport: one TCP port per node carries both Raft and the forwarding
// RPCs. Every connection is mutual TLS 1.3; after the handshake a single
// protocol byte routes it to the Raft transport or to the forwarding gRPC
// server. A peer whose certificate does not chain to the configured CA fails
// the handshake.
//
// Determinism: the state machine never reads the clock, draws randomness or
// calls out of the process. A local I/O failure while applying, or an entry
// this version does not understand, calls the Fatal hook (by default: log
// and exit) rather than letting the node diverge from its peers.
//
// Values may be ciphertext of sensitive data: this package never logs keys
// or values, and its errors never contain them.
//
// See DESIGN.md in this directory for the reasons behind each choice.
package raftstore
