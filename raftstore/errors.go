package raftstore

import "errors"

// Sentinel errors. Callers test them with errors.Is; returned errors wrap
// them with context that never contains keys or values.
var (
	// ErrNotLeader: the operation needs the leader and this node is not it.
	// A proposal rejected with ErrNotLeader was not applied.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrNoLeader: no leader was known before the deadline. Not applied.
	ErrNoLeader = errors.New("raftstore: no leader")
	// ErrUnknownOutcome: the command may or may not have been applied
	// (leadership lost, connection lost or deadline passed after the command
	// left this node). Retry with the same idempotency key.
	ErrUnknownOutcome = errors.New("raftstore: outcome unknown")
	// ErrNotApplied: the command was refused before it entered the log
	// (for example the leader's queue was full). Safe to retry.
	ErrNotApplied = errors.New("raftstore: command not applied")
	// ErrClosed: the store is shut down. A proposal that gets ErrClosed
	// without ErrUnknownOutcome was not applied.
	ErrClosed = errors.New("raftstore: store closed")
	// ErrInvalidCommand: the command breaks a limit (bucket name, key or
	// value size, number of ops) or has no ops.
	ErrInvalidCommand = errors.New("raftstore: invalid command")
	// ErrInvalidConfig: Open was given an unusable Config.
	ErrInvalidConfig = errors.New("raftstore: invalid config")
	// ErrMemberConflict: a join names an id already bound to another
	// address, or an address already used by another id.
	ErrMemberConflict = errors.New("raftstore: member conflict")
	// ErrUnknownMember: the named server is not in the configuration.
	ErrUnknownMember = errors.New("raftstore: unknown member")
	// ErrPeerUnreachable: a joining peer could not be reached over mutual
	// TLS (wrong CA, wrong address, not running).
	ErrPeerUnreachable = errors.New("raftstore: peer unreachable")
	// ErrStopped: the state machine stopped after a fatal error; the node
	// must be restarted (and repaired) before it serves again.
	ErrStopped = errors.New("raftstore: state machine stopped")
	// ErrStateCorrupt: the state file or a snapshot is not what this
	// package wrote.
	ErrStateCorrupt = errors.New("raftstore: state corrupt")
)
