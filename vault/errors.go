package vault

import "errors"

// Sentinel errors of package vault. Returned errors wrap them with %w (often
// together with a sentinel of keys, raftstore, scheme or card); status.go maps
// each to one gRPC code. Messages are lower-case and never contain a PAN, a
// token, key material or a PIN.
var (
	// ErrInvalidConfig: New was given an unusable Config.
	ErrInvalidConfig = errors.New("vault: invalid config")
	// ErrClosed: the node is shut down.
	ErrClosed = errors.New("vault: node closed")
	// ErrInvalidArgument: a request field is malformed (the error usually
	// carries a *card.RuleError naming the field).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrOversizedBatch: a batch holds more items than MaxBatchItems.
	ErrOversizedBatch = errors.New("oversized batch")
	// ErrSchemeNotFound: no scheme has this name.
	ErrSchemeNotFound = errors.New("scheme not found")
	// ErrKeyNotFound: no key (or key version) has this name.
	ErrKeyNotFound = errors.New("key not found")
	// ErrTokenNotFound: the token does not exist in its scheme (never
	// created, deleted, or not a token of this scheme).
	ErrTokenNotFound = errors.New("token not found")
	// ErrTokenExpired: the token existed but its TTL has passed. Reported as
	// NOT_FOUND, like a missing token.
	ErrTokenExpired = errors.New("token expired")
	// ErrAlreadyExists: a scheme or key of that name exists with a different
	// definition, or a request id was already used for a different request.
	ErrAlreadyExists = errors.New("already exists")
	// ErrWrongPurpose: a key exists but its type or purpose does not fit the
	// use (a scheme naming a signing key, Sign with an AES key).
	ErrWrongPurpose = errors.New("key has the wrong type or purpose")
	// ErrKeyState: the key version's state forbids the operation (Sign with a
	// decrypt-only version, anything with a retired one).
	ErrKeyState = errors.New("key version state does not allow this operation")
	// ErrKeyUnavailable: the key version cannot be loaded into this node's
	// HSM (wrapped under another master key, master key missing). The node
	// needs its master key fixed; other nodes may serve the request.
	ErrKeyUnavailable = errors.New("key not usable on this node")
	// ErrWrongMode: the operation does not apply to the scheme's mode
	// (DeleteToken on an FF1 scheme).
	ErrWrongMode = errors.New("operation does not apply to this scheme mode")
	// ErrTokenSpace: no unused token was found after several draws.
	ErrTokenSpace = errors.New("no unused token found; the scheme's token space is crowded")
	// ErrStaleReadTooOld: a STALE read was refused because this node has
	// not heard from the Raft leader within Config.MaxStaleness, so its
	// local state may be arbitrarily old. Retry, or read linearizably.
	ErrStaleReadTooOld = errors.New("stale read refused: this node has lost contact with the leader")
	// ErrUnsupported: a valid request this version does not implement.
	ErrUnsupported = errors.New("not supported")
	// ErrCorruptRecord: a stored record does not decode, or a sealed PAN
	// does not authenticate. Never caused by client input.
	ErrCorruptRecord = errors.New("stored record corrupt")
)
