package loadgen

import "errors"

// Sentinel errors; every error of this package wraps one with %w. Messages
// never contain a PAN or a token.
var (
	// ErrInvalidOptions: an Options field or argument is out of range.
	ErrInvalidOptions = errors.New("loadgen: invalid options")
	// ErrNoTargets: Run or Prefill was given no connection.
	ErrNoTargets = errors.New("loadgen: no target connections")
	// ErrSetup: preparing a run (for example the detokenize token pool)
	// failed, so nothing was measured.
	ErrSetup = errors.New("loadgen: setup failed")
	// ErrMatrix: a matrix description or its results are inconsistent.
	ErrMatrix = errors.New("loadgen: invalid matrix")
)
