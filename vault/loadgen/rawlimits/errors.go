package rawlimits

import "errors"

// Sentinel errors; every error of this package wraps one with %w.
var (
	// ErrInvalidOptions: an option is out of range.
	ErrInvalidOptions = errors.New("rawlimits: invalid options")
	// ErrProbe: a probe could not set up or an operation under measurement
	// failed, so its figure would be meaningless.
	ErrProbe = errors.New("rawlimits: probe failed")
)
