package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
	"google.golang.org/protobuf/proto"
)

// Group commit. Proposals wait in a bounded queue; one committer goroutine
// takes up to MaxBatchCommands commands or MaxBatchBytes bytes into a batch
// as soon as a slot is free, and a deliverer goroutine per batch either
// appends it as ONE Raft entry (on the leader) or forwards it in one RPC to
// the leader. The first slot is taken at once; the others (up to
// MaxInflightBatches) only by a batch of at least minParallel commands, so
// a small batch waits for the one in flight and grows meanwhile. The batch
// size thus adapts to load: one command per entry when idle, tens under
// unary concurrency (one entry in flight: fewest fsyncs per command),
// pipelined entries of hundreds under batch requests.
//
// Outcome rules, which callers rely on for retries:
//   - a proposal still queued when its context ends is removed and reported
//     as ErrNotApplied wrapping the context error;
//   - once taken by the committer, only the batch's fate decides; a caller
//     whose context ends first gets ErrUnknownOutcome;
//   - raft's ErrNotLeader (never appended) is retried, on the new leader;
//   - ErrLeadershipLost, raft shutdown, or a lost connection to the leader
//     after sending are ErrUnknownOutcome.

const (
	propQueued int32 = iota
	propTaken
	propAbandoned
)

type proposal struct {
	cmd        *raftpb.Command
	size       int
	leaderOnly bool // forwarded by a follower: never forward again
	state      atomic.Int32
	done       chan propOutcome
}

type propOutcome struct {
	res *raftpb.Result
	err error
}

func (p *proposal) finish(r *raftpb.Result, err error) {
	p.done <- propOutcome{res: r, err: err}
}

// committer is the group-commit engine of one Store. Safe for concurrent use.
type committer struct {
	s     *Store
	queue chan *proposal
	slots chan struct{}
	freed chan struct{} // signalled when a slot is released
	// minParallel is the smallest batch sent while another is in flight.
	minParallel int
	stop        chan struct{}

	sealMu sync.RWMutex
	sealed bool

	runDone    chan struct{}
	raftDown   chan struct{} // closed by Store.Shutdown once raft has stopped
	deliverers sync.WaitGroup

	entries   atomic.Uint64 // raft entries this node appended as leader
	forwarded atomic.Uint64 // forward RPCs this node sent
}

func newCommitter(s *Store) *committer {
	c := &committer{
		s:     s,
		queue: make(chan *proposal, s.cfg.QueueSize),
		slots: make(chan struct{}, s.cfg.MaxInflightBatches),
		freed: make(chan struct{}, 1),
		// A quarter of a full batch: unary traffic from tens of clients
		// stays below it (one batch in flight), backlogs of batch
		// requests reach it at once (pipelined).
		minParallel: max(s.cfg.MaxBatchCommands/4, 1),
		stop:        make(chan struct{}),
		runDone:     make(chan struct{}),
		raftDown:    make(chan struct{}),
	}
	go c.run()
	return c
}

// enqueue blocks while the queue is full (back-pressure) until ctx ends.
func (c *committer) enqueue(ctx context.Context, p *proposal) error {
	c.sealMu.RLock()
	defer c.sealMu.RUnlock()
	if c.sealed {
		return ErrClosed
	}
	select {
	case c.queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())
	case <-c.stop:
		return ErrClosed
	}
}

func (c *committer) wait(ctx context.Context, p *proposal) propOutcome {
	select {
	case o := <-p.done:
		return o
	case <-ctx.Done():
	}
	if p.state.CompareAndSwap(propQueued, propAbandoned) {
		return propOutcome{err: fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())}
	}
	select {
	case o := <-p.done:
		return o
	default:
		return propOutcome{err: fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())}
	}
}

func (c *committer) run() {
	defer close(c.runDone)
	var carry *proposal
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-c.queue:
			case <-c.stop:
				return
			}
		}
		pending, size := []*proposal{first}, first.size
		full := func() bool {
			return len(pending) >= c.s.cfg.MaxBatchCommands || size >= c.s.cfg.MaxBatchBytes
		}
		// Wait for a slot. A second batch goes out while one is in flight
		// only once it has at least minParallel commands: small batches
		// wait for the one in flight and grow meanwhile (fewer, larger
		// entries: fewer fsyncs per command), large backlogs are pipelined.
		for {
			inflight := len(c.slots)
			if inflight == 0 || (inflight < cap(c.slots) && (len(pending) >= c.minParallel || full())) {
				break
			}
			queue := c.queue
			if full() || carry != nil {
				queue = nil // take no more; wait for a slot
			}
			select {
			case <-c.freed:
			case p := <-queue:
				if size+p.size > c.s.cfg.MaxBatchBytes {
					carry = p
					continue
				}
				pending = append(pending, p)
				size += p.size
			case <-c.stop:
				for _, p := range pending {
					c.failQueued(p, ErrClosed)
				}
				c.failQueued(carry, ErrClosed)
				return
			}
		}
		c.slots <- struct{}{} // never blocks: only this goroutine adds
		batch := make([]*proposal, 0, len(pending)+8)
		size = 0
		take := func(p *proposal) {
			if p.state.CompareAndSwap(propQueued, propTaken) {
				batch = append(batch, p)
				size += p.size
			}
		}
		for _, p := range pending {
			take(p)
		}
	fill:
		for carry == nil && len(batch) < c.s.cfg.MaxBatchCommands {
			select {
			case p := <-c.queue:
				if len(batch) > 0 && size+p.size > c.s.cfg.MaxBatchBytes {
					carry = p
					break fill
				}
				take(p)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			c.release()
			continue
		}
		c.deliverers.Add(1)
		go func() {
			defer c.deliverers.Done()
			defer c.release()
			c.deliver(batch)
		}()
	}
}

// release frees a slot and wakes the committer if it waits for one.
func (c *committer) release() {
	<-c.slots
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

func (c *committer) failQueued(p *proposal, err error) {
	if p != nil && p.state.CompareAndSwap(propQueued, propTaken) {
		p.finish(nil, err)
	}
}

// shutdown stops taking proposals and fails the queued ones with ErrClosed.
// Batches in flight finish on their own (raft shutdown answers them).
func (c *committer) shutdown() {
	close(c.stop)
	c.sealMu.Lock()
	c.sealed = true
	c.sealMu.Unlock()
	<-c.runDone
	for {
		select {
		case p := <-c.queue:
			c.failQueued(p, ErrClosed)
		default:
			return
		}
	}
}

func (c *committer) deliver(batch []*proposal) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.ApplyTimeout)
	defer cancel()
	pending := batch
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			wait := min(time.Duration(attempt)*10*time.Millisecond, 200*time.Millisecond)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			case <-c.stop:
			}
		}
		select {
		case <-c.stop:
			// Everything still pending was definitely not appended.
			finishAll(pending, nil, ErrClosed)
			return
		default:
		}
		if ctx.Err() != nil {
			finishAll(pending, nil, fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err()))
			return
		}
		if c.s.raft.State() == raft.Leader {
			pending = c.applyLocal(ctx, pending)
			continue
		}
		fwd := pending[:0:0]
		for _, p := range pending {
			if p.leaderOnly {
				p.finish(nil, ErrNotLeader)
			} else {
				fwd = append(fwd, p)
			}
		}
		pending = fwd
		if len(pending) == 0 {
			return
		}
		addr, id := c.s.raft.LeaderWithID()
		if addr == "" || string(id) == c.s.cfg.NodeID {
			continue
		}
		pending = c.forward(ctx, string(addr), pending)
	}
}

func finishAll(ps []*proposal, r *raftpb.Result, err error) {
	for _, p := range ps {
		p.finish(r, err)
	}
}

// applyLocal appends ps as one entry. It returns the proposals that were
// definitely not appended and may be retried.
func (c *committer) applyLocal(ctx context.Context, ps []*proposal) []*proposal {
	cmds := make([]*raftpb.Command, len(ps))
	for i, p := range ps {
		cmds[i] = p.cmd
	}
	data, err := encodeEntry(cmds)
	if err != nil {
		finishAll(ps, nil, fmt.Errorf("%w: encode: %w", ErrInvalidCommand, err))
		return nil
	}
	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	f := c.s.raft.Apply(data, timeout)
	err = c.waitApply(f)
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader):
		return ps
	case errors.Is(err, raft.ErrEnqueueTimeout):
		finishAll(ps, nil, fmt.Errorf("%w: %w", ErrNotApplied, err))
		return nil
	default:
		finishAll(ps, nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, err))
		return nil
	}
	c.entries.Add(1)
	switch r := f.Response().(type) {
	case []*raftpb.Result:
		if len(r) != len(ps) {
			finishAll(ps, nil, fmt.Errorf("%w: %d results for %d commands", ErrUnknownOutcome, len(r), len(ps)))
			return nil
		}
		for i, p := range ps {
			p.finish(r[i], nil)
		}
	case error:
		// Committed, but this node's state machine did not apply it.
		finishAll(ps, nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, r))
	default:
		finishAll(ps, nil, fmt.Errorf("%w: unexpected apply response %T", ErrUnknownOutcome, r))
	}
	return nil
}

// waitApply waits for an apply future. A future still buffered in raft's
// apply channel when raft shuts down is never answered, so once raft is
// down an unanswered future counts as ErrRaftShutdown (outcome unknown).
// The goroutine blocked on such a future is abandoned; that only happens
// at shutdown.
func (c *committer) waitApply(f raft.ApplyFuture) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-c.raftDown:
		select {
		case err := <-errc:
			return err
		case <-time.After(100 * time.Millisecond):
			return raft.ErrRaftShutdown
		}
	}
}

// forward sends ps to the leader in one RPC. It returns the proposals the
// leader refused because it is no longer leader (never appended).
func (c *committer) forward(ctx context.Context, addr string, ps []*proposal) []*proposal {
	cl, err := c.s.peers.get(addr)
	if err != nil {
		finishAll(ps, nil, err)
		return nil
	}
	if !c.s.peers.ready(ctx, addr, 200*time.Millisecond) {
		return ps // not sent: retry, perhaps with another leader
	}
	req := &raftpb.ProposeRequest{Commands: make([]*raftpb.Command, len(ps))}
	for i, p := range ps {
		req.Commands[i] = p.cmd
	}
	c.forwarded.Add(1)
	resp, err := cl.Propose(ctx, req)
	if err != nil {
		if sentinel, ok := fromStatus(err); ok {
			switch {
			case errors.Is(sentinel, ErrNotLeader):
				return ps
			case errors.Is(sentinel, ErrInvalidCommand):
				finishAll(ps, nil, sentinel)
				return nil
			}
		}
		finishAll(ps, nil, fmt.Errorf("%w: forward to leader: %w", ErrUnknownOutcome, err))
		return nil
	}
	outs := resp.GetOutcomes()
	if len(outs) != len(ps) {
		finishAll(ps, nil, fmt.Errorf("%w: leader sent %d outcomes for %d commands", ErrUnknownOutcome, len(outs), len(ps)))
		return nil
	}
	var retry []*proposal
	for i, o := range outs {
		p := ps[i]
		switch o.GetError() {
		case raftpb.ProposeError_PROPOSE_ERROR_UNSPECIFIED:
			if o.GetResult() == nil {
				p.finish(nil, fmt.Errorf("%w: leader sent no result", ErrUnknownOutcome))
			} else {
				p.finish(o.GetResult(), nil)
			}
		case raftpb.ProposeError_PROPOSE_ERROR_NOT_LEADER:
			retry = append(retry, p)
		case raftpb.ProposeError_PROPOSE_ERROR_INVALID:
			p.finish(nil, fmt.Errorf("%w (from leader: %s)", ErrInvalidCommand, o.GetDetail()))
		case raftpb.ProposeError_PROPOSE_ERROR_NOT_APPLIED:
			p.finish(nil, fmt.Errorf("%w (from leader: %s)", ErrNotApplied, o.GetDetail()))
		default:
			p.finish(nil, fmt.Errorf("%w (from leader: %s)", ErrUnknownOutcome, o.GetDetail()))
		}
	}
	return retry
}

// submitMany validates, enqueues and waits for every command. Results and
// errors are index-aligned with cmds.
func (s *Store) submitMany(ctx context.Context, cmds []*raftpb.Command, leaderOnly bool) ([]*raftpb.Result, []error) {
	results := make([]*raftpb.Result, len(cmds))
	errs := make([]error, len(cmds))
	props := make([]*proposal, len(cmds))
	for i, cmd := range cmds {
		if err := validateCommand(cmd); err != nil {
			errs[i] = err
			continue
		}
		p := &proposal{cmd: cmd, size: proto.Size(cmd), leaderOnly: leaderOnly, done: make(chan propOutcome, 1)}
		if err := s.commit.enqueue(ctx, p); err != nil {
			errs[i] = err
			continue
		}
		props[i] = p
	}
	for i, p := range props {
		if p == nil {
			continue
		}
		o := s.commit.wait(ctx, p)
		results[i], errs[i] = o.res, o.err
	}
	return results, errs
}

// Propose applies ops as one atomic command through the leader (forwarded
// if this node is a follower, coalesced with concurrent proposals) and
// returns its Result once the command is committed and applied on the node
// that appended it. A failed condition is a Result with Applied false and a
// nil error. Errors: ErrInvalidCommand; ErrNotApplied, ErrNoLeader or
// ErrClosed (not applied, safe to retry); ErrUnknownOutcome (may have been
// applied: retry only idempotently). Context deadlines are honoured.
func (s *Store) Propose(ctx context.Context, ops ...Op) (Result, error) {
	rs, errs := s.submitMany(ctx, []*raftpb.Command{commandToProto(ops)}, false)
	if errs[0] != nil {
		return Result{}, errs[0]
	}
	return resultFromProto(rs[0]), nil
}

// ProposeBatch proposes several independent commands at once (each atomic
// on its own) and returns index-aligned results and errors.
func (s *Store) ProposeBatch(ctx context.Context, cmds [][]Op) ([]Result, []error) {
	pcs := make([]*raftpb.Command, len(cmds))
	for i, ops := range cmds {
		pcs[i] = commandToProto(ops)
	}
	rs, errs := s.submitMany(ctx, pcs, false)
	out := make([]Result, len(cmds))
	for i := range rs {
		if errs[i] == nil {
			out[i] = resultFromProto(rs[i])
		}
	}
	return out, errs
}
