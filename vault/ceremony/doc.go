// Package ceremony is the custodian and ceremony domain of panvault: who
// the key custodians are, what they approve, how approvals are checked and
// counted, and the append-only, hash-chained log of every step. It is pure
// Go over values: no clock, no network, no HSM, no storage. Package vault
// stores its values as bytes in replicated state and drives it.
//
// # Why
//
// Key-management operations that can expose or destroy card data (creating,
// rotating, retiring and destroying keys, pointing a token scheme at
// another key, replacing the master key) and the changes to who may allow
// them (custodians, quorum) must never be in one person's hands. PCI DSS
// asks for dual control (no single person can carry out the operation,
// 3.6.1.2 / 3.7.6) and split knowledge (no single person knows a whole key:
// the master key is the XOR of components held by different custodians).
// Here every such operation is a Proposal that M of the N registered
// custodians approve by signing it with their own key (kept in their own
// PKCS#11 token, or a key file in dev mode); the vault checks the
// signatures and carries the proposal out through Raft.
//
// # What is signed, and why domain separation
//
// A proposal has one canonical encoding, specified by hand in FORMAT.md
// (length-prefixed fields in a fixed order, behind the prefix
// "panvault-ceremony-v1"), deliberately not a protobuf marshal: protobuf
// does not promise one encoding per message across versions and
// implementations, and what a custodian signs must be reproducible byte
// for byte by anyone, forever. Its SHA-256 is the transcript hash; the
// proposal id is the first 16 hex digits of that hash, so an id can be
// neither chosen nor predicted apart from the content (a random nonce is
// part of it).
//
// Custodians sign short messages that begin with a prefix naming their
// purpose ("panvault-ceremony-approval-v1", "...-rejection-v1",
// "panvault-custodian-ack-v1") followed by the transcript hash and the id.
// Because each prefix names exactly one purpose, a signature made for one
// thing can never be presented as another: an approval is not a
// rejection, a registration is not an approval, and nothing signed for
// panvault is valid in any other protocol that uses the same key, nor the
// other way round.
//
// # The rules (see Approve and Reject)
//
//   - Only registered custodians vote, with the key they registered.
//   - A signature counts only over this proposal's transcript.
//   - Each custodian counts once; a custodian approves or rejects, not both.
//   - The proposer may not approve their own proposal. Control groups that
//     let a requester approve their own request turn "two people" into
//     "one person and one helper"; here the proposer is never one of the M.
//   - M >= 2 always (MinQuorum), M <= N, and a change that would leave
//     fewer than M custodians is refused.
//   - Proposals expire (MinTTL..MaxTTL); an expired proposal takes no more
//     votes. One whose M approvals all came in time is still carried out.
//   - A proposal is rejected once enough custodians reject it that M
//     approvals can no longer be reached, or when its proposer withdraws
//     it. One custodian alone cannot stop what M others approve (unless
//     M == N), just as one alone cannot approve.
//   - Custodians register with a signed acknowledgement of their duties
//     (Duties, PCI DSS 3.7.8), which the registry keeps.
//
// # Driving it from the vault
//
// Everything clock-dependent or random happens before a replicated write:
// the vault reads its clock once and passes it as now, and NewProposal
// reads the nonce from crypto/rand. The transition functions (Propose,
// Approve, Reject, Expire, Execute, Fail) are then deterministic: given the
// same registry, state, vote and time they give the same result on every
// node and in every replay. Each returns the new State (and, for Execute,
// Registry) and an unchained LogEntry; the caller links it with Chain and
// writes state, registry and log entry in one atomic compare-and-set, so
// that the log order is the order of decisions and Replay can audit them.
//
// # Concurrency
//
// All types are plain values and every function is free of shared state:
// values are safe for concurrent reads, and no function modifies its
// arguments. FileSigner is safe for concurrent use; ChainVerifier is not.
// Serialising the decisions themselves (two approvals of one proposal at
// once) is the caller's job: compare-and-set on the stored state.
package ceremony
