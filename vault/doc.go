// Package vault is panvault's domain layer: token schemes, tokenization and
// detokenization, the key registry, signatures, and the gRPC services over
// them. It joins the HSM boundary (package keys), the replicated store
// (package raftstore) and the public API (proto/panvault/v1).
//
// # Why it looks like this
//
// Everything secret happens in the HSM of the node that answers, and
// everything durable goes through Raft. A node therefore needs nothing from
// its peers but the replicated state: wrapped key blobs (loaded into its own
// HSM by a watch on the "keys" bucket, and lazily on first use), scheme
// definitions, and token records holding AES-256-GCM ciphertexts of PANs.
// Everything random, secret or clock-dependent (token digits, nonces, the
// seal, fingerprints, creation and expiry times) is done before a proposal;
// the state machine only checks conditions and writes bytes. See
// docs/vault-design.md for buckets and flows.
//
// # Guarantees
//
//   - A vaulted Tokenize answers only after its token record is committed by
//     a majority. A deterministic scheme returns the existing token of a PAN
//     (HMAC fingerprint index, key in the HSM). With a request id, a retry
//     returns the first result, also after a leader change: the idempotency
//     record is written in the same atomic command as the token.
//   - Detokenize is linearizable unless the request asks for a stale read; a
//     stale miss is confirmed with the leader before NOT_FOUND. Expired and
//     deleted tokens are NOT_FOUND. Once DeleteToken is acknowledged, no
//     linearizable read on any node returns the PAN.
//   - FF1 schemes store nothing: tokenize and detokenize need no Raft write;
//     concurrent single calls are coalesced into HSM batches.
//
// # The gRPC edge
//
// NewGRPCServer serves TokenService, SigningService, AdminService and
// ClusterService over mutual TLS 1.3, plus health and reflection. A caller's
// identity is its certificate's URI SAN (else CN); roles come from a
// pki.Authorizer: client (tokens and signatures) and admin (everything).
// Every error is mapped to a gRPC status in one table (status.go), with
// google.rpc.BadRequest field violations for bad input. No error message,
// log line or panic report contains a PAN: masked forms only.
//
// Card security codes are never modelled, so never accepted: TokenService
// also refuses requests carrying unknown fields.
package vault
