package vault

import "errors"

// Sentinel errors of custodian ceremonies, key versions and their jobs.
// status.go maps each to one gRPC code and reason.
var (
	// ErrCustodiansNotInitialised: no custodian registry exists yet
	// (InitCustodians has not run), so no ceremony can be proposed.
	ErrCustodiansNotInitialised = errors.New("custodians not initialised")
	// ErrCustodiansInitialised: InitCustodians was called on a cluster that
	// already has a (different) registry.
	ErrCustodiansInitialised = errors.New("custodians already initialised; change them with ceremonies")
	// ErrCeremonyNotFound: no ceremony has this id.
	ErrCeremonyNotFound = errors.New("ceremony not found")
	// ErrCeremonyRequired: a key-management change that needs a custodian
	// ceremony was asked for directly (CreateKey once custodians exist).
	ErrCeremonyRequired = errors.New("this change needs a custodian ceremony")
	// ErrKeyVersionRetired: the key version is below the key's minimum
	// decryption version (retired): it no longer decrypts or verifies.
	ErrKeyVersionRetired = errors.New("key version retired")
	// ErrKeyVersionDestroyed: the key version was destroyed; what it
	// protected can no longer be recovered.
	ErrKeyVersionDestroyed = errors.New("key version destroyed")
	// ErrReencryptPending: versions cannot be retired while stored
	// ciphertexts still use them (the re-encryption job has not finished).
	ErrReencryptPending = errors.New("re-encryption to that version has not finished")
	// ErrMasterKeyNotStaged: a master-key rotation needs the new master key
	// staged on every voting node first.
	ErrMasterKeyNotStaged = errors.New("new master key not staged on every node")
	// ErrConflict: a replicated compare-and-set kept failing because of
	// concurrent changes; retry.
	ErrConflict = errors.New("concurrent change; retry")
)
