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
// and Restore from one goroutine; readers use view concurrently. mu guards
// the db pointer: readers hold it shared, Restore holds it exclusively while
// it swaps the file.
type fsm struct {
	mu   sync.RWMutex
	db   *bolt.DB
	path string
	opts stateDBOptions

	logger hclog.Logger
	fatal  func(error)
	hub    *watchHub

	applied  atomic.Uint64 // highest log index reflected in db
	stopped  atomic.Bool   // set after a fatal error
	restores atomic.Uint64 // number of Restore calls that succeeded

	entries  atomic.Uint64 // command log entries applied (for stats/tests)
	commands atomic.Uint64 // commands applied

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced whenever applied advances
}

func newFSM(path string, opts stateDBOptions, logger hclog.Logger, fatal func(error), hub *watchHub) (*fsm, error) {
	db, applied, err := openStateDB(path, opts)
	if err != nil {
		return nil, err
	}
	f := &fsm{db: db, path: path, opts: opts, logger: logger, fatal: fatal, hub: hub, waitCh: make(chan struct{})}
	f.applied.Store(applied)
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

// ApplyBatch applies the command entries of a batch in one bbolt
// transaction together with the new applied index. It returns one response
// per log: []*raftpb.Result for a command entry, nil for a configuration
// entry, an error if the entry was already applied or the machine stopped.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	if f.stopped.Load() {
		for i := range resp {
			resp[i] = ErrStopped
		}
		return resp
	}
	ch := newChangeSet(f.hub)
	var last uint64
	var entries, commands uint64
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		for i := range resp {
			resp[i] = ErrClosed
		}
		return resp
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			return fmt.Errorf("%w: meta bucket missing", ErrStateCorrupt)
		}
		applied := readApplied(meta)
		buckets := make(map[string]*bolt.Bucket)
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
					r, err := applyCommand(tx, buckets, c, ch)
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
		if last > applied {
			return writeApplied(meta, last)
		}
		return nil
	})
	if err != nil {
		f.stop(err)
		for i := range resp {
			resp[i] = ErrStopped
		}
		return resp
	}
	if last > 0 {
		f.entries.Add(entries)
		f.commands.Add(commands)
		f.setApplied(last)
		ch.publish(last)
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
// writes only if all pass. A returned error is an I/O or format failure
// (fatal); a failed condition is a Result.
func applyCommand(tx *bolt.Tx, buckets map[string]*bolt.Bucket, c *raftpb.Command, ch *changeSet) (*raftpb.Result, error) {
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
	bucket := func(name string) *bolt.Bucket {
		if b, ok := buckets[name]; ok {
			return b
		}
		b := tx.Bucket(userBucketName(name))
		if b != nil {
			buckets[name] = b
		}
		return b
	}
	overlay := make(map[string]pendingWrite, len(c.GetOps()))
	lookup := func(op *raftpb.Op) ([]byte, bool) {
		if w, ok := overlay[op.GetBucket()+"\x00"+string(op.GetKey())]; ok {
			return w.value, w.present
		}
		b := bucket(op.GetBucket())
		if b == nil {
			return nil, false
		}
		v := b.Get(op.GetKey())
		return v, v != nil
	}
	results := make([]*raftpb.OpResult, len(c.GetOps()))
	for i, op := range c.GetOps() {
		cur, present := lookup(op)
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
		k := op.GetBucket() + "\x00" + string(op.GetKey())
		if op.GetType() == raftpb.OpType_OP_TYPE_DELETE {
			overlay[k] = pendingWrite{}
		} else {
			overlay[k] = pendingWrite{value: nonNil(op.GetValue()), present: true}
		}
	}
	for _, op := range c.GetOps() {
		if op.GetType() == raftpb.OpType_OP_TYPE_DELETE {
			if b := bucket(op.GetBucket()); b != nil {
				if err := b.Delete(op.GetKey()); err != nil {
					return nil, err
				}
			}
		} else {
			b := bucket(op.GetBucket())
			if b == nil {
				var err error
				if b, err = tx.CreateBucket(userBucketName(op.GetBucket())); err != nil {
					return nil, err
				}
				buckets[op.GetBucket()] = b
			}
			if err := b.Put(op.GetKey(), nonNil(op.GetValue())); err != nil {
				return nil, err
			}
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

// view runs fn in a read transaction on the current state DB.
func (f *fsm) view(fn func(tx *bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return ErrClosed
	}
	return f.db.View(fn)
}

func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}
