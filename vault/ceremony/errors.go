package ceremony

import "errors"

// Sentinel errors. Every error this package returns wraps one of them with
// %w; callers test with errors.Is. Messages never contain key bytes,
// component values or private-key material; they may contain custodian
// names, proposal ids, key fingerprints and KCVs.
var (
	// ErrInvalid: a value (proposal, parameter, custodian, registry) breaks
	// a rule of this package: a name's format, a length, a range.
	ErrInvalid = errors.New("ceremony: invalid value")
	// ErrMalformed: bytes given to a Parse function are not in the
	// canonical encoding: wrong prefix, truncated, trailing bytes, unknown
	// kind or status, an over-long field.
	ErrMalformed = errors.New("ceremony: malformed encoding")
	// ErrUnsupportedKey: a public or private key is not Ed25519 or ECDSA
	// P-256, or its encoding is not canonical.
	ErrUnsupportedKey = errors.New("ceremony: unsupported key")
	// ErrBadSignature: a signature does not verify over the expected
	// message with the expected key.
	ErrBadSignature = errors.New("ceremony: signature does not verify")
	// ErrUnknownCustodian: no registered custodian has that name.
	ErrUnknownCustodian = errors.New("ceremony: unknown custodian")
	// ErrUnknownKey: the signing key is not the one registered for the
	// named custodian.
	ErrUnknownKey = errors.New("ceremony: key not registered for this custodian")
	// ErrCustodianExists: a custodian of that name, or with that public
	// key, is already registered.
	ErrCustodianExists = errors.New("ceremony: custodian already registered")
	// ErrQuorum: a quorum rule would be broken (M < 2, M > N, or a change
	// that leaves fewer custodians than M).
	ErrQuorum = errors.New("ceremony: quorum rule violated")
	// ErrQuorumUnreachable: not enough custodians are left who may approve
	// the proposal to reach M approvals.
	ErrQuorumUnreachable = errors.New("ceremony: quorum can no longer be reached")
	// ErrSelfApproval: the proposer tried to approve their own proposal.
	ErrSelfApproval = errors.New("ceremony: proposer may not approve own proposal")
	// ErrDuplicateApproval: the custodian has already approved this proposal.
	ErrDuplicateApproval = errors.New("ceremony: custodian already approved")
	// ErrAlreadyVoted: the custodian has already rejected this proposal, or
	// tried to reject one they approved.
	ErrAlreadyVoted = errors.New("ceremony: custodian already voted")
	// ErrExpired: the proposal's expiry has passed.
	ErrExpired = errors.New("ceremony: proposal expired")
	// ErrNotExpired: Expire was called before the expiry, or on a proposal
	// that has its quorum (a ready proposal does not expire).
	ErrNotExpired = errors.New("ceremony: proposal not expired")
	// ErrClosed: the proposal was already executed, failed, rejected or
	// expired; nothing more can happen to it.
	ErrClosed = errors.New("ceremony: proposal closed")
	// ErrNotReady: the proposal does not have M valid approvals.
	ErrNotReady = errors.New("ceremony: quorum not reached")
	// ErrWrongProposal: an approval, rejection or log entry names another
	// proposal than the one it is applied to.
	ErrWrongProposal = errors.New("ceremony: different proposal")
	// ErrChain: the ceremony log's hash chain is broken (an entry was
	// altered, removed, reordered or inserted).
	ErrChain = errors.New("ceremony: log hash chain broken")
	// ErrReplay: the ceremony log is well chained but its steps do not
	// follow the ceremony rules.
	ErrReplay = errors.New("ceremony: log does not replay")
	// ErrKeyFile: a custodian key file cannot be created or read, has
	// unsafe permissions, or does not hold a single supported private key.
	ErrKeyFile = errors.New("ceremony: custodian key file")
)
