// Package rawlimits measures the raw limits under panvault's workloads, so
// that BENCHMARKS.md can say how close the vault gets to what its parts allow
// on the same machine in the same run:
//
//   - FsyncLatency: append + fdatasync on a file (the floor under every
//     acknowledged write; the vault never skips it).
//   - HSMRates: SoftHSM through package keys' public API (session pool,
//     unwrapped session-object keys): ECDSA P-256 sign, AES-ECB over 1 and
//     256 blocks, AES-GCM seal and open of 128 bytes, from one goroutine and from
//     GOMAXPROCS goroutines.
//   - GRPCRoundTrip: grpc.health.v1 Check against a bare server over mutual
//     TLS 1.3 on loopback (package pki's policy), 1 and 64 callers.
//   - RaftApply: hashicorp/raft alone on three nodes over loopback (mutual
//     TLS by default), raft-boltdb with fsync, an in-memory FSM; one command
//     per entry and 64 per entry.
//
// Measure runs any subset one after the other and names the figures as
// loadgen.RawLimit values (the names loadgen.DefaultMatrix refers to).
//
// Probes report what they measured; none decides pass or fail. A probe whose
// operation fails returns an error wrapping ErrProbe instead of a figure, since
// a rate measured with failures is no limit. Nothing here weakens a
// guarantee to look faster: no NoSync, real fsync, real TLS.
//
// SoftHSM is configured once per process (package softhsm), so HSMRates uses
// the process's environment and a throwaway token in it. The probes' result
// types are plain values; the functions may run concurrently with each other
// only at the price of measuring each other.
package rawlimits
