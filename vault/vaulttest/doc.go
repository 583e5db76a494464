// Package vaulttest starts in-process panvault clusters for tests and
// benchmarks, with the real dependencies: a SoftHSM token per node (master
// key loaded from shared custodian components), raftstore over mutual TLS on
// 127.0.0.1, bbolt in temporary directories, and each node's gRPC server on
// 127.0.0.1 with mutual TLS 1.3 from an in-memory CA.
//
// StartCluster(t, 3) returns a running cluster; Setup creates the dev keys
// and schemes (vault.DevSetup); Tokens, Signing, Admin and ClusterAdmin give
// gRPC clients of any node as the client or admin identity; StopNode and
// RestartNode take a node down and bring it back on the same addresses.
// Clock lets tests move every node's clock forward (token TTLs).
// InitCustodians registers three custodians (Ed25519 key files in temporary
// directories, quorum 2) as `panvault dev` does; a Custodian approves or
// rejects ceremonies the way the CLI does (fetch the canonical proposal,
// compute its transcript hash locally, sign). Options.Tune adjusts each
// node's vault.Config (job intervals, re-encryption rate).
//
// Without SoftHSM the test is skipped, except under CI=true where it fails
// (see softhsm/softhsmtest).
package vaulttest
