package raftstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
)

// Member is one server of the Raft configuration.
type Member struct {
	ID      string
	Address string
	Voter   bool
}

// Status describes this node.
type Status struct {
	ID                string
	Address           string
	Role              string // "Leader", "Follower", "Candidate" or "Shutdown"
	Term              uint64
	CommitIndex       uint64
	AppliedIndex      uint64 // reflected in the state DB
	LastLogIndex      uint64
	LastSnapshotIndex uint64
	LeaderID          string
	LeaderAddress     string
}

// Status returns this node's view of itself and the leader.
func (s *Store) Status() Status {
	la, li := s.raft.LeaderWithID()
	st := Status{
		ID:            s.cfg.NodeID,
		Address:       s.Addr(),
		Role:          s.raft.State().String(),
		Term:          s.raft.CurrentTerm(),
		CommitIndex:   s.raft.CommitIndex(),
		AppliedIndex:  s.fsm.applied.Load(),
		LastLogIndex:  s.raft.LastIndex(),
		LeaderID:      string(li),
		LeaderAddress: string(la),
	}
	if v, err := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64); err == nil {
		st.LastSnapshotIndex = v
	}
	return st
}

// Leader returns the current leader's id and address ("" if unknown).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader right now (without
// confirming it with a quorum).
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Members returns the latest Raft configuration.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return nil, fmt.Errorf("raftstore: configuration: %w", err)
	}
	servers := f.Configuration().Servers
	out := make([]Member, len(servers))
	for i, srv := range servers {
		out[i] = Member{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter}
	}
	return out, nil
}

// Bootstrap makes this node a one-member cluster if it has no Raft state
// yet; with existing state it does nothing (restarts may call it freely).
// Bootstrap exactly one node of a new cluster and Join the others.
func (s *Store) Bootstrap(ctx context.Context) error {
	has, err := raft.HasExistingState(s.logs, s.bolt, s.snaps)
	if err != nil {
		return fmt.Errorf("raftstore: bootstrap: %w", err)
	}
	if has {
		return nil
	}
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.Addr()),
	}}})
	if err := waitFuture(ctx, f); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("raftstore: bootstrap: %w", err)
	}
	return nil
}

// Join adds server id at addr as a voter, through the leader (forwarded if
// this node is a follower). Joining an id that is already a voter at the
// same address is a no-op. An id already bound to another address, or an
// address already used by another id, is ErrMemberConflict: to move a node
// to a new address, Remove it and Join it again (its data may be kept).
// The leader first proves that addr answers mutual TLS with a certificate
// of the cluster CA (ErrPeerUnreachable otherwise), so a mistyped address
// or a foreign node never becomes a voter.
func (s *Store) Join(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("%w: join needs an id and an address", ErrInvalidConfig)
	}
	return s.onLeader(ctx,
		func() error { return s.joinLocal(ctx, id, addr) },
		func(cl raftpb.ForwardClient) error {
			_, err := cl.Join(ctx, &raftpb.JoinRequest{Id: id, Address: addr, Forwarded: true})
			return err
		})
}

// RequestJoin asks the cluster member at peerAddr to add this node (the
// member forwards to its leader). Used by a new node that knows one peer.
func (s *Store) RequestJoin(ctx context.Context, peerAddr string) error {
	cl, err := s.peers.get(peerAddr)
	if err != nil {
		return err
	}
	if err := s.mux.ping(ctx, peerAddr); err != nil {
		return err
	}
	if _, err := cl.Join(ctx, &raftpb.JoinRequest{Id: s.cfg.NodeID, Address: s.Addr()}); err != nil {
		if sentinel, ok := fromStatus(err); ok {
			return sentinel
		}
		return fmt.Errorf("raftstore: request join: %w", err)
	}
	return nil
}

func (s *Store) joinLocal(ctx context.Context, id, addr string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	cf := s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return err
	}
	for _, srv := range cf.Configuration().Servers {
		sameID, sameAddr := string(srv.ID) == id, string(srv.Address) == addr
		switch {
		case sameID && sameAddr && srv.Suffrage == raft.Voter:
			return nil
		case sameID && sameAddr:
			// A non-voter with the same identity: promote below.
		case sameID:
			return fmt.Errorf("%w: id %q is a member at another address", ErrMemberConflict, id)
		case sameAddr:
			return fmt.Errorf("%w: address %s belongs to member %q", ErrMemberConflict, addr, srv.ID)
		}
	}
	if err := s.mux.ping(ctx, addr); err != nil {
		return err
	}
	f := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("raftstore: add voter: %w", err)
	}
	s.logger.Info("member added", "member", id, "address", addr)
	return nil
}

// Remove takes server id out of the configuration, through the leader.
// Removing an id that is not a member is a no-op. Removing the leader
// itself makes it step down. Never reuse a removed id for a node whose
// data was wiped.
func (s *Store) Remove(ctx context.Context, id string) error {
	return s.onLeader(ctx,
		func() error { return s.removeLocal(ctx, id) },
		func(cl raftpb.ForwardClient) error {
			_, err := cl.Remove(ctx, &raftpb.RemoveRequest{Id: id, Forwarded: true})
			return err
		})
}

func (s *Store) removeLocal(ctx context.Context, id string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	cf := s.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return err
	}
	found := false
	for _, srv := range cf.Configuration().Servers {
		if string(srv.ID) == id {
			found = true
		}
	}
	if !found {
		return nil
	}
	f := s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("raftstore: remove server: %w", err)
	}
	s.logger.Info("member removed", "member", id)
	return nil
}

// TransferLeadership asks the leader to hand leadership to targetID (or,
// if empty, to the most up-to-date follower). It returns when raft reports
// the transfer done or ctx ends (raft's transfer can stall; see DESIGN.md).
func (s *Store) TransferLeadership(ctx context.Context, targetID string) error {
	return s.onLeader(ctx,
		func() error { return s.transferLocal(ctx, targetID) },
		func(cl raftpb.ForwardClient) error {
			_, err := cl.TransferLeadership(ctx, &raftpb.TransferRequest{TargetId: targetID, Forwarded: true})
			return err
		})
}

func (s *Store) transferLocal(ctx context.Context, targetID string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if targetID == s.cfg.NodeID {
		return nil
	}
	var f raft.Future
	if targetID == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		cf := s.raft.GetConfiguration()
		if err := waitFuture(ctx, cf); err != nil {
			return err
		}
		var addr raft.ServerAddress
		for _, srv := range cf.Configuration().Servers {
			if string(srv.ID) == targetID {
				addr = srv.Address
			}
		}
		if addr == "" {
			return fmt.Errorf("%w: %q", ErrUnknownMember, targetID)
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(targetID), addr)
	}
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("raftstore: leadership transfer: %w", err)
	}
	return nil
}

// onLeader runs local on the leader or remote against it, retrying while
// leadership moves, until ctx ends. Membership operations are idempotent,
// so retrying after a lost connection is safe.
func (s *Store) onLeader(ctx context.Context, local func() error, remote func(raftpb.ForwardClient) error) error {
	var last error = ErrNoLeader
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(min(time.Duration(attempt)*20*time.Millisecond, 250*time.Millisecond)):
			case <-ctx.Done():
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
			case <-s.closed:
				return ErrClosed
			}
		}
		if s.isClosed() {
			return ErrClosed
		}
		var err error
		if s.IsLeader() {
			err = local()
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				err = fmt.Errorf("%w: %w", ErrNotLeader, err)
			}
			if err == nil || !errors.Is(err, ErrNotLeader) {
				return err
			}
		} else {
			addr, id := s.raft.LeaderWithID()
			if addr == "" || string(id) == s.cfg.NodeID {
				last = ErrNoLeader
				continue
			}
			cl, cerr := s.peers.get(string(addr))
			if cerr != nil {
				return cerr
			}
			err = remote(cl)
			if err == nil {
				return nil
			}
			if sentinel, ok := fromStatus(err); ok {
				if !errors.Is(sentinel, ErrNotLeader) {
					return sentinel
				}
				err = sentinel
			}
		}
		last = err
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
		}
	}
}

func (s *Store) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return s.cfg.ApplyTimeout
}

// waitFuture waits for a raft future or ctx, whichever ends first.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
