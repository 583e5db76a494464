package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
	bolt "go.etcd.io/bbolt"
)

// errReplayed is the response to a log entry whose effects the state DB
// already holds (a restart replays the log from the last snapshot). No
// proposer waits for such an entry.
var errReplayed = errors.New("raftstore: entry already applied")

// fsm is the deterministic state machine. Raft calls ApplyBatch, Snapshot
// and Restore from one goroutine; readers use read concurrently. mu guards
// the db pointer: readers and commits hold it shared, Restore holds it
// exclusively while it swaps the file. Applied writes live in the mem
// overlay until the committer writes them to bbolt (overlay.go).
type fsm struct {
	mu   sync.RWMutex
	db   *bolt.DB
	path string
	opts stateDBOptions

	logger hclog.Logger
	fatal  func(error)
	hub    *watchHub

	applied  atomic.Uint64 // highest log index applied (in mem or bbolt)
	stopped  atomic.Bool   // set after a fatal error
	restores atomic.Uint64 // number of Restore calls that succeeded

	entries      atomic.Uint64 // command log entries applied (for stats/tests)
	commands     atomic.Uint64 // commands applied
	stateCommits atomic.Uint64 // bbolt transactions that committed overlays

	ovMu        sync.RWMutex
	mem         *overlay // writes applied since the last commit started
	frozen      *overlay // writes being committed, or nil
	diskApplied uint64   // applied index stored in bbolt; ovMu

	commitMu   sync.Mutex // one commit (or restore swap) at a time
	commitReq  chan struct{}
	commitStop chan struct{}
	commitDone chan struct{}

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced whenever applied advances
}

func newFSM(path string, opts stateDBOptions, logger hclog.Logger, fatal func(error), hub *watchHub) (*fsm, error) {
	opts = opts.withDefaults()
	db, applied, err := openStateDB(path, opts)
	if err != nil {
		return nil, err
	}
	f := &fsm{db: db, path: path, opts: opts, logger: logger, fatal: fatal, hub: hub, waitCh: make(chan struct{}),
		mem: newOverlay(applied), diskApplied: applied}
	f.applied.Store(applied)
	f.startCommitter()
	return f, nil
}

// appliedChanged returns a channel closed at the next advance of applied.
func (f *fsm) appliedChanged() <-chan struct{} {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	return f.waitCh
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.waitMu.Lock()
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.waitMu.Unlock()
}

// stop records a fatal error and calls the fatal hook. Every later entry is
// refused so that a node whose hook returns cannot drift from its peers.
func (f *fsm) stop(err error) {
	if f.stopped.CompareAndSwap(false, true) {
		f.logger.Error("state machine stopped", "error", err)
		f.fatal(err)
	}
}

// Apply implements raft.FSM for completeness; raft uses ApplyBatch.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies the command entries of a batch atomically to the
// in-memory overlay (conditions are checked against the overlays and the
// state DB) and advances the applied index; the committer writes the
// overlay to bbolt later (overlay.go). It returns one response per log:
// []*raftpb.Result for a command entry, nil for a configuration entry, an
// error if the entry was already applied or the machine stopped.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	fail := func(err error) []interface{} {
		for i := range resp {
			resp[i] = err
		}
		return resp
	}
	if f.stopped.Load() {
		return fail(ErrStopped)
	}
	ch := newChangeSet(f.hub)
	batch := newOverlay(0)
	var last uint64
	var entries, commands uint64
	err := func() error {
		f.mu.RLock()
		defer f.mu.RUnlock()
		if f.db == nil {
			return ErrClosed
		}
		// Only this goroutine changes mem, and only under ovMu held
		// exclusively: reading the layers it took here needs no lock.
		f.ovMu.RLock()
		layers := f.layersLocked()
		f.ovMu.RUnlock()
		tx, err := f.db.Begin(false)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		view := &stateView{layers: append([]*overlay{batch}, layers...), tx: tx}
		applied := f.applied.Load()
		for i, l := range logs {
			if l.Index <= applied {
				resp[i] = errReplayed
				continue
			}
			switch l.Type {
			case raft.LogCommand:
				e, err := decodeEntry(l.Data)
				if err != nil {
					return fmt.Errorf("log index %d: %w", l.Index, err)
				}
				results := make([]*raftpb.Result, len(e.GetCommands()))
				for j, c := range e.GetCommands() {
					r, err := applyCommand(view, batch, c, ch)
					if err != nil {
						return fmt.Errorf("log index %d command %d: %w", l.Index, j, err)
					}
					results[j] = r
				}
				resp[i] = results
				entries++
				commands += uint64(len(results))
			case raft.LogConfiguration:
				// Membership lives in raft's own log and snapshots.
			default:
				return fmt.Errorf("%w: log index %d has unexpected type %s", ErrStateCorrupt, l.Index, l.Type)
			}
			last = l.Index
		}
		return nil
	}()
	if errors.Is(err, ErrClosed) {
		return fail(ErrClosed)
	}
	if err != nil {
		f.stop(err)
		return fail(ErrStopped)
	}
	if last == 0 {
		return resp
	}
	f.ovMu.Lock()
	for k, e := range batch.m {
		f.mem.put(k, e)
	}
	f.mem.index = last
	pending, pendingBytes := len(f.mem.m), f.mem.bytes
	f.ovMu.Unlock()
	f.entries.Add(entries)
	f.commands.Add(commands)
	f.setApplied(last)
	ch.publish(last)
	switch {
	case pending >= 2*f.opts.commitKeys || pendingBytes >= 2*f.opts.commitBytes:
		// The committer is behind: commit here, holding raft's FSM
		// goroutine back, so memory stays bounded.
		if err := f.commitState(); err != nil {
			f.stop(err)
		}
	case pending >= f.opts.commitKeys || pendingBytes >= f.opts.commitBytes:
		f.requestCommit()
	}
	return resp
}

// errUnknownOp is fatal: a newer node wrote an op this node cannot apply.
var errUnknownOp = errors.New("raftstore: unknown op type in log")

type pendingWrite struct {
	value   []byte
	present bool
}

// applyCommand checks every condition of c against the state as the ops
// would see it one after another (later ops see earlier ops' writes), and
// writes to batch only if all pass. A returned error is an I/O or format
// failure (fatal); a failed condition is a Result.
func applyCommand(v *stateView, batch *overlay, c *raftpb.Command, ch *changeSet) (*raftpb.Result, error) {
	for i, op := range c.GetOps() {
		switch op.GetType() {
		case raftpb.OpType_OP_TYPE_PUT, raftpb.OpType_OP_TYPE_PUT_IF_ABSENT,
			raftpb.OpType_OP_TYPE_DELETE, raftpb.OpType_OP_TYPE_COMPARE_AND_SET:
		default:
			return nil, fmt.Errorf("%w: op %d type %d", errUnknownOp, i, int32(op.GetType()))
		}
	}
	if err := validateCommand(c); err != nil {
		// Deterministic on every node: reject, write nothing.
		return &raftpb.Result{Status: raftpb.Status_STATUS_INVALID, FailedOp: -1}, nil
	}
	overlay := make(map[string]pendingWrite, len(c.GetOps()))
	keys := make([]string, len(c.GetOps()))
	lookup := func(i int, op *raftpb.Op) ([]byte, bool) {
		if w, ok := overlay[keys[i]]; ok {
			return w.value, w.present
		}
		return v.get(op.GetBucket(), op.GetKey())
	}
	results := make([]*raftpb.OpResult, len(c.GetOps()))
	for i, op := range c.GetOps() {
		keys[i] = ovKey(op.GetBucket(), op.GetKey())
		cur, present := lookup(i, op)
		r := &raftpb.OpResult{Existed: present}
		results[i] = r
		ok := true
		switch op.GetType() {
		case raftpb.OpType_OP_TYPE_PUT_IF_ABSENT:
			ok = !present
		case raftpb.OpType_OP_TYPE_COMPARE_AND_SET:
			if op.GetExpectAbsent() {
				ok = !present
			} else {
				ok = present && bytes.Equal(cur, op.GetExpected())
			}
		}
		if !ok {
			if present {
				r.Existing = bytes.Clone(cur)
			}
			return &raftpb.Result{Status: raftpb.Status_STATUS_CONDITION_FAILED, FailedOp: int32(i), Ops: results[:i+1]}, nil
		}
		if op.GetType() == raftpb.OpType_OP_TYPE_DELETE {
			overlay[keys[i]] = pendingWrite{}
		} else {
			overlay[keys[i]] = pendingWrite{value: nonNil(op.GetValue()), present: true}
		}
	}
	for i, op := range c.GetOps() {
		if op.GetType() == raftpb.OpType_OP_TYPE_DELETE {
			batch.put(keys[i], ovEntry{deleted: true})
		} else {
			batch.put(keys[i], ovEntry{value: nonNil(op.GetValue())})
		}
		ch.add(op.GetBucket(), op.GetKey())
	}
	return &raftpb.Result{Status: raftpb.Status_STATUS_APPLIED, FailedOp: -1, Ops: results}, nil
}

// nonNil maps a nil value to an empty one: bbolt stores empty values, and
// Get distinguishes "absent" from "empty".
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func (f *fsm) close() error {
	f.stopCommitter()
	var errs []error
	if !f.stopped.Load() {
		// Not needed for safety (the raft log replays the rest), but a
		// clean stop leaves nothing to replay.
		if err := f.commitState(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db != nil {
		errs = append(errs, f.db.Close())
		f.db = nil
	}
	return errors.Join(errs...)
}
