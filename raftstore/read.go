package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
)

// ReadMode selects the consistency of a read.
type ReadMode int

const (
	// Linearizable reads reflect every write acknowledged before the read
	// started, on any node.
	Linearizable ReadMode = iota
	// Stale reads use this node's local state only: fastest, possibly
	// behind. A caller that needs "not found" to be authoritative should
	// confirm a stale miss with a Linearizable read.
	Stale
)

// Item is one GetMany answer.
type Item struct {
	Value []byte
	Found bool
}

// KV is one Scan answer.
type KV struct {
	Key   []byte
	Value []byte
}

// ScanOptions bounds a Scan: keys with Prefix, strictly after After (for
// paging), at most Limit (1..MaxScanLimit) of them.
type ScanOptions struct {
	Prefix []byte
	After  []byte
	Limit  int
	Mode   ReadMode
}

// coalescer shares one execution of fn among concurrent callers. A caller
// never joins a round that started before it arrived (that round might
// reflect an older state); it waits for the next one, which starts as soon
// as the current one ends. Safe for concurrent use.
type coalescer struct {
	fn func(ctx context.Context) (uint64, error)
	// timeout bounds one round (it serves callers with different deadlines).
	timeout time.Duration

	mu      sync.Mutex
	running bool
	next    *round
	rounds  atomic.Uint64 // executions of fn, for tests and metrics
}

type round struct {
	done chan struct{}
	val  uint64
	err  error
}

func (c *coalescer) do(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	if c.next == nil {
		c.next = &round{done: make(chan struct{})}
	}
	r := c.next
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.val, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *coalescer) loop() {
	for {
		c.mu.Lock()
		r := c.next
		c.next = nil
		if r == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		c.rounds.Add(1)
		r.val, r.err = c.fn(ctx)
		cancel()
		close(r.done)
	}
}

// leaderReadIndex returns an index covering every write committed before
// it was called, after proving this node is still the leader. After an
// election it first commits a barrier in the new term, since until an
// entry of its own term commits a new leader's commit index can lag.
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	term := s.raft.CurrentTerm()
	if s.barrierTerm.Load() != term {
		timeout := s.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(dl), time.Millisecond)
		}
		if err := waitFuture(ctx, s.raft.Barrier(timeout)); err != nil {
			return 0, fmt.Errorf("raftstore: read barrier: %w", err)
		}
		s.barrierTerm.Store(term)
	}
	idx := s.raft.CommitIndex()
	if err := waitFuture(ctx, s.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("raftstore: verify leader: %w", err)
	}
	return idx, nil
}

// followerReadIndex asks the leader for its read index: one RPC shared by
// all reads that arrived while the previous one was in flight.
func (s *Store) followerReadIndex(ctx context.Context) (uint64, error) {
	addr, id := s.raft.LeaderWithID()
	if addr == "" {
		return 0, ErrNoLeader
	}
	if string(id) == s.cfg.NodeID {
		return 0, ErrNotLeader // stale view of ourselves; caller retries
	}
	cl, err := s.peers.get(string(addr))
	if err != nil {
		return 0, err
	}
	resp, err := cl.ReadIndex(ctx, &raftpb.ReadIndexRequest{})
	if err != nil {
		if sentinel, ok := fromStatus(err); ok {
			return 0, sentinel
		}
		return 0, fmt.Errorf("raftstore: read index from leader: %w", err)
	}
	return resp.GetIndex(), nil
}

// ReadBarrier returns once this node has applied every write committed
// before the call (a linearizable read point). Reads issued afterwards on
// this node see those writes.
func (s *Store) ReadBarrier(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			wait := min(time.Duration(attempt)*5*time.Millisecond, 100*time.Millisecond)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return fmt.Errorf("raftstore: linearizable read: %w (last error: %w)", ctx.Err(), lastErr(s))
			case <-s.closed:
				return ErrClosed
			}
		}
		if s.isClosed() {
			return ErrClosed
		}
		var idx uint64
		var err error
		if s.raft.State() == raft.Leader {
			idx, err = s.leaderRead.do(ctx)
		} else {
			idx, err = s.followerRead.do(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("raftstore: linearizable read: %w", err)
			}
			s.setLastReadErr(err)
			if errors.Is(err, ErrClosed) {
				return err
			}
			continue // leadership moved or leader unreachable: retry
		}
		return s.waitApplied(ctx, idx)
	}
}

func lastErr(s *Store) error {
	s.readErrMu.Lock()
	defer s.readErrMu.Unlock()
	if s.readErr == nil {
		return ErrNoLeader
	}
	return s.readErr
}

func (s *Store) setLastReadErr(err error) {
	s.readErrMu.Lock()
	s.readErr = err
	s.readErrMu.Unlock()
}

// maxGapScan bounds the log entries inspected by waitApplied.
const maxGapScan = 256

// waitApplied waits until the state DB reflects log index idx. Raft does
// not pass no-op and barrier entries to the state machine, so when raft has
// dispatched everything up to idx and every entry between the state's
// applied index and idx is of such a type (or already compacted into a
// snapshot the state includes), the state is current as well.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed := s.fsm.appliedChanged()
		applied := s.fsm.applied.Load()
		if applied >= idx {
			return nil
		}
		if s.fsm.stopped.Load() {
			return ErrStopped
		}
		if s.raft.AppliedIndex() >= idx && idx-applied <= maxGapScan && s.onlyNonStateEntries(applied+1, idx) {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(2 * time.Millisecond)
		} else {
			timer.Reset(2 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("raftstore: waiting for index %d (applied %d): %w", idx, applied, ctx.Err())
		case <-s.closed:
			return ErrClosed
		}
	}
}

func (s *Store) onlyNonStateEntries(from, to uint64) bool {
	var l raft.Log
	for i := from; i <= to; i++ {
		if err := s.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted: covered by a snapshot the state includes
			}
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

func (s *Store) readPoint(ctx context.Context, mode ReadMode) error {
	switch mode {
	case Linearizable:
		return s.ReadBarrier(ctx)
	case Stale:
		if s.isClosed() {
			return ErrClosed
		}
		return nil
	}
	return fmt.Errorf("raftstore: unknown read mode %d", int(mode))
}

// Get returns the value of key in bucket. found is false if absent.
func (s *Store) Get(ctx context.Context, bucket string, key []byte, mode ReadMode) (value []byte, found bool, err error) {
	if err := s.readPoint(ctx, mode); err != nil {
		return nil, false, err
	}
	err = s.fsm.read(func(v *stateView) error {
		if val, ok := v.get(bucket, key); ok {
			value, found = bytes.Clone(val), true
		}
		return nil
	})
	return value, found, err
}

// GetMany returns one Item per key, from one consistent view of the state
// after one read point.
func (s *Store) GetMany(ctx context.Context, bucket string, keys [][]byte, mode ReadMode) ([]Item, error) {
	if len(keys) > MaxGetMany {
		return nil, fmt.Errorf("%w: %d keys, at most %d", ErrInvalidCommand, len(keys), MaxGetMany)
	}
	if err := s.readPoint(ctx, mode); err != nil {
		return nil, err
	}
	out := make([]Item, len(keys))
	err := s.fsm.read(func(v *stateView) error {
		for i, k := range keys {
			if val, ok := v.get(bucket, k); ok {
				out[i] = Item{Value: bytes.Clone(val), Found: true}
			}
		}
		return nil
	})
	return out, err
}

// Scan returns up to opt.Limit pairs of bucket in key order; more is true
// when further keys match (continue with After set to the last key). Meant
// for small buckets (schemes, wrapped keys) and startup loads.
func (s *Store) Scan(ctx context.Context, bucket string, opt ScanOptions) (kvs []KV, more bool, err error) {
	if opt.Limit <= 0 || opt.Limit > MaxScanLimit {
		return nil, false, fmt.Errorf("%w: scan limit %d not in 1..%d", ErrInvalidCommand, opt.Limit, MaxScanLimit)
	}
	if err := s.readPoint(ctx, opt.Mode); err != nil {
		return nil, false, err
	}
	err = s.fsm.read(func(v *stateView) error {
		kvs, more = v.scan(bucket, opt.Prefix, opt.After, opt.Limit)
		return nil
	})
	return kvs, more, err
}

// LastLeaderContact returns how long ago this node last heard from the Raft
// leader: zero on the leader itself (a deposed leader steps down within
// LeaderLeaseTimeout), ok false when it knows no leader or has never heard
// from one. Stale readers use it to bound how far behind their local state
// may be.
func (s *Store) LastLeaderContact() (since time.Duration, ok bool) {
	if s.raft.State() == raft.Leader {
		return 0, true
	}
	if addr, _ := s.raft.LeaderWithID(); addr == "" {
		return 0, false
	}
	t := s.raft.LastContact()
	if t.IsZero() {
		return 0, false
	}
	return time.Since(t), true
}
