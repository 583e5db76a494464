package raftstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
)

// Store is one node of the replicated store. All methods are safe for
// concurrent use. Shutdown is idempotent; after it every method returns
// ErrClosed (or a zero value).
type Store struct {
	cfg    Config
	logger hclog.Logger

	fsm   *fsm
	hub   *watchHub
	bolt  *raftboltdb.BoltStore
	logs  raft.LogStore
	snaps *raft.FileSnapshotStore
	mux   *mux
	trans pipelineTransport
	// stable is the StableStore raft writes its term and vote to (s.bolt
	// behind a gate, stablegate.go).
	stable *stableGate
	raft   *raft.Raft

	peers        *peerClients
	grpc         *grpc.Server
	commit       *committer
	leaderRead   *coalescer
	followerRead *coalescer
	barrierTerm  atomic.Uint64

	readErrMu sync.Mutex
	readErr   error

	closed      chan struct{}
	closeOnce   sync.Once
	shutdownErr error
	grpcDone    chan struct{}
}

// Open starts a node: it opens (or creates) the data directory, binds the
// listener and starts raft. A node with no state waits to be bootstrapped
// (Bootstrap) or added by a cluster member (Join / RequestJoin).
func Open(cfg Config) (*Store, error) {
	c, cerr := cfg.withDefaults()
	if cerr != nil {
		return nil, cerr
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: data dir: %w", err)
	}
	logger := c.Logger.With("node", c.NodeID)
	var err error
	s := &Store{cfg: c, logger: logger, hub: newWatchHub(), closed: make(chan struct{}), grpcDone: make(chan struct{})}
	var cleanup []func()
	opened := false
	defer func() {
		if !opened {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	opts := stateDBOptions{timeout: c.OpenTimeout, mmapSize: c.InitialMmapSize,
		commitInterval: c.StateCommitInterval, commitKeys: c.StateCommitKeys, commitBytes: c.StateCommitBytes}
	if s.fsm, err = newFSM(statePath(c.DataDir), opts, logger.Named("fsm"), c.Fatal, s.hub); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = s.fsm.close() })

	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(c.DataDir, raftFileName),
		BoltOptions: &bolt.Options{
			Timeout:        c.OpenTimeout,
			NoFreelistSync: true,
			FreelistType:   bolt.FreelistMapType,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open raft log: %w", err)
	}
	cleanup = append(cleanup, func() { _ = s.bolt.Close() })
	if s.logs, err = raft.NewLogCache(LogCacheEntries, s.bolt); err != nil {
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	if s.snaps, err = raft.NewFileSnapshotStoreWithLogger(c.DataDir, c.RetainSnapshots, logger.Named("snapshot")); err != nil {
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotInterval = c.SnapshotInterval
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.TrailingLogs = c.TrailingLogs
	rc.BatchApplyCh = true
	rc.Logger = logger.Named("raft")
	if rc.NoSnapshotRestoreOnStart, err = s.checkStartState(); err != nil {
		return nil, err
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	if s.mux, err = newMux(c.BindAddr, c.AdvertiseAddr, c.ServerTLS, c.ClientTLS, c.VerifyPeer, logger.Named("mux")); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, s.mux.close)
	s.trans = pipelineTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.mux.raftL,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger.Named("raft-net"),
	})}
	cleanup = append(cleanup, func() { _ = s.trans.Close() })

	s.stable = &stableGate{StableStore: s.bolt}
	if s.raft, err = raft.NewRaft(rc, s.fsm, s.logs, s.stable, s.snaps, s.trans); err != nil {
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}

	s.peers = newPeerClients(s.mux, c.MaxBatchBytes+(1<<20))
	s.leaderRead = &coalescer{fn: s.leaderReadIndex, timeout: c.ApplyTimeout}
	s.followerRead = &coalescer{fn: s.followerReadIndex, timeout: c.ApplyTimeout}
	s.commit = newCommitter(s)
	s.grpc = newForwardGRPCServer(s)
	go func() {
		defer close(s.grpcDone)
		_ = s.grpc.Serve(s.mux.fwdL)
	}()
	logger.Info("raftstore node started", "address", s.Addr(), "applied_index", s.fsm.applied.Load())
	opened = true
	return s, nil
}

// checkStartState compares the state DB with the raft log and snapshots.
// It returns whether raft may skip restoring its latest snapshot (the
// state DB already covers it), and refuses combinations that would let the
// node serve a state from another history.
func (s *Store) checkStartState() (skipRestore bool, err error) {
	applied := s.fsm.applied.Load()
	var snapIndex uint64
	snaps, err := s.snaps.List()
	if err != nil {
		return false, fmt.Errorf("raftstore: list snapshots: %w", err)
	}
	if len(snaps) > 0 {
		snapIndex = snaps[0].Index
	}
	lastLog, err := s.bolt.LastIndex()
	if err != nil {
		return false, fmt.Errorf("raftstore: raft log: %w", err)
	}
	if applied > max(lastLog, snapIndex) {
		return false, fmt.Errorf("%w: state db applied index %d is beyond the raft log (%d) and snapshots (%d); "+
			"the raft files were lost: wipe the data directory and join as a new node id", ErrStateCorrupt, applied, lastLog, snapIndex)
	}
	return len(snaps) > 0 && snapIndex <= applied, nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Addr returns the address peers use to reach this node (Raft and
// forwarding share it).
func (s *Store) Addr() string { return s.mux.advertise.String() }

// ID returns this node's id.
func (s *Store) ID() string { return s.cfg.NodeID }

// Shutdown stops the node: queued proposals fail with ErrClosed, proposals
// in flight get their outcome (or ErrUnknownOutcome), raft stops, files
// close. It does not leave the cluster (see Remove). Idempotent.
func (s *Store) Shutdown() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.commit.shutdown()
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		close(s.commit.raftDown)
		s.peers.close()
		s.commit.deliverers.Wait()
		s.grpc.Stop()
		<-s.grpcDone
		if err := s.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport close: %w", err))
		}
		s.mux.close()
		s.hub.closeAll()
		s.stable.close()
		if err := s.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft log close: %w", err))
		}
		if err := s.fsm.close(); err != nil {
			errs = append(errs, fmt.Errorf("state db close: %w", err))
		}
		s.shutdownErr = errors.Join(errs...)
		s.logger.Info("raftstore node stopped")
	})
	return s.shutdownErr
}

// Subscribe reports changes to bucket (see Subscription). To load a bucket
// and then follow it without a gap: Subscribe first, then Scan.
func (s *Store) Subscribe(bucket string) *Subscription {
	return s.hub.subscribe(bucket)
}

// Snapshot forces a snapshot now (normally taken by SnapshotThreshold and
// SnapshotInterval). Having nothing new to snapshot is not an error.
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return nil
}

// AppliedIndex is the highest log index reflected in this node's state DB.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// Metrics are counters since Open, for tests, benchmarks and dashboards.
type Metrics struct {
	AppliedEntries  uint64 // command log entries applied by the state machine
	AppliedCommands uint64 // commands in those entries
	LeaderEntries   uint64 // entries this node appended as leader via group commit
	ForwardRPCs     uint64 // proposal batches forwarded to a leader
	Restores        uint64 // snapshots restored into the state DB
	StateCommits    uint64 // bbolt transactions writing applied state
}

// Metrics returns the current counters.
func (s *Store) Metrics() Metrics {
	return Metrics{
		AppliedEntries:  s.fsm.entries.Load(),
		AppliedCommands: s.fsm.commands.Load(),
		LeaderEntries:   s.commit.entries.Load(),
		ForwardRPCs:     s.commit.forwarded.Load(),
		Restores:        s.fsm.restores.Load(),
		StateCommits:    s.fsm.stateCommits.Load(),
	}
}

// WaitForLeader blocks until a leader is known and returns it.
func (s *Store) WaitForLeader(ctx context.Context) (id, addr string, err error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if a, i := s.raft.LeaderWithID(); a != "" {
			return string(i), string(a), nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", "", fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-s.closed:
			return "", "", ErrClosed
		}
	}
}
