package devcluster

import "errors"

// Sentinel errors; every error of this package wraps one with %w, or the
// error of the operating system or gRPC call that failed.
var (
	// ErrInvalidOptions: Options are missing a field or out of range.
	ErrInvalidOptions = errors.New("devcluster: invalid options")
	// ErrMismatch: the directory holds a cluster that differs from what was
	// asked (for example another number of nodes).
	ErrMismatch = errors.New("devcluster: existing cluster differs")
	// ErrLocked: another orchestrator runs a cluster in this directory.
	ErrLocked = errors.New("devcluster: directory in use by another orchestrator")
	// ErrStep: a setup step run as a child process failed.
	ErrStep = errors.New("devcluster: setup step failed")
	// ErrNodeExited: a node process exited while it was expected to run.
	ErrNodeExited = errors.New("devcluster: node process exited")
	// ErrNotReady: a node did not become ready (serving, with a leader) in time.
	ErrNotReady = errors.New("devcluster: node not ready")
	// ErrNoNode: a node index is out of range, the node was removed, or no
	// node is running.
	ErrNoNode = errors.New("devcluster: no such node")
	// ErrRunning: the node is already running.
	ErrRunning = errors.New("devcluster: node already running")
	// ErrClosed: the cluster was stopped.
	ErrClosed = errors.New("devcluster: cluster stopped")
)
