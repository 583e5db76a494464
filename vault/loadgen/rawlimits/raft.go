package rawlimits

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/panvault/panvault/raftstore"
)

// RaftRun is one measurement of RaftApply: Concurrency goroutines each
// applying entries of PerEntry commands, one entry at a time.
type RaftRun struct {
	Concurrency int
	PerEntry    int
}

// RaftOptions configure RaftApply. Zero fields take the defaults.
type RaftOptions struct {
	// Dir holds the nodes' Raft logs; it should be on the disk the vault's
	// data live on. Default: a new directory in os.TempDir(), removed
	// afterwards.
	Dir string
	// Duration is the time of each run (default 3s).
	Duration time.Duration
	// Runs are measured in order on one cluster. Default: 1 caller with 1
	// command per entry (commit latency), 64 callers with 1, 64 callers
	// with 64.
	Runs []RaftRun
	// CommandSize is the bytes of one command (default 128, about one
	// tokenization record).
	CommandSize int
	// PlainTCP drops TLS between the nodes. By default they use mutual TLS
	// 1.3 from package pki, as raftstore does.
	PlainTCP bool
}

// RaftResult is the outcome of one RaftRun. Rate counts entries (one Apply
// each); CommandsPerSec is Rate.PerSec × PerEntry.
type RaftResult struct {
	RaftRun
	TLS            bool // nodes used mutual TLS
	Rate           Rate
	CommandsPerSec float64
}

// RaftApply measures hashicorp/raft alone: three nodes on 127.0.0.1 over
// TCP (mutual TLS unless PlainTCP), raft-boltdb log and stable stores with
// the options raftstore uses (fsync on every append: never NoSync), batched
// apply, and an in-memory FSM that only counts commands. Every Apply waits
// for commit by a majority and application on the leader, as an
// acknowledged vault write does. What raftstore and the vault add (group
// commit, bbolt state, HSM calls) comes on top of this.
func RaftApply(ctx context.Context, opts RaftOptions) (results []RaftResult, err error) {
	if opts.Duration == 0 {
		opts.Duration = 3 * time.Second
	}
	if len(opts.Runs) == 0 {
		opts.Runs = []RaftRun{{1, 1}, {64, 1}, {64, 64}}
	}
	if opts.CommandSize == 0 {
		opts.CommandSize = 128
	}
	if opts.Duration < 0 || opts.CommandSize < 1 || opts.CommandSize > 64<<10 {
		return nil, fmt.Errorf("%w: raft duration %v, command size %d", ErrInvalidOptions, opts.Duration, opts.CommandSize)
	}
	for _, r := range opts.Runs {
		if r.Concurrency < 1 || r.Concurrency > 4096 || r.PerEntry < 1 || r.PerEntry*opts.CommandSize > 1<<20 {
			return nil, fmt.Errorf("%w: raft run %+v", ErrInvalidOptions, r)
		}
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "rawlimits-raft-"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProbe, err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	c, err := startRaftCluster(ctx, dir, 3, !opts.PlainTCP)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, c.close()) }()

	for _, run := range opts.Runs {
		entry := make([]byte, 4+run.PerEntry*opts.CommandSize)
		binary.BigEndian.PutUint32(entry, uint32(run.PerEntry))
		before := c.leaderFSM.commands.Load()
		rate, err := timed(ctx, opts.Duration, run.Concurrency, func(ctx context.Context, _ int, _ int64) error {
			f := c.leader.Apply(entry, 10*time.Second)
			if err := f.Error(); err != nil {
				return err
			}
			if r, ok := f.Response().(error); ok {
				return r
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("raft %d callers × %d per entry: %w", run.Concurrency, run.PerEntry, err)
		}
		// An Apply returns once the leader's FSM applied its entry, and the
		// callers are done: the FSM saw exactly the measured commands.
		if got, want := c.leaderFSM.commands.Load()-before, uint64(rate.Ops)*uint64(run.PerEntry); got != want {
			return nil, fmt.Errorf("%w: raft fsm applied %d commands, callers saw %d", ErrProbe, got, want)
		}
		results = append(results, RaftResult{RaftRun: run, TLS: !opts.PlainTCP, Rate: rate, CommandsPerSec: rate.PerSec * float64(run.PerEntry)})
	}
	return results, nil
}

// countFSM counts commands: an entry is a 4-byte big-endian command count
// followed by the commands. Deterministic, no I/O. Safe for concurrent use.
type countFSM struct {
	commands atomic.Uint64
}

func (f *countFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) < 4 {
		return fmt.Errorf("%w: short entry at index %d", ErrProbe, l.Index)
	}
	f.commands.Add(uint64(binary.BigEndian.Uint32(l.Data)))
	return nil
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.commands.Load()), nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.commands.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type countSnapshot uint64

func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s))
	if _, err := sink.Write(b[:]); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// raftNode is one member of the probe cluster.
type raftNode struct {
	r     *raft.Raft
	fsm   *countFSM
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
}

type raftCluster struct {
	nodes     []*raftNode
	leader    *raft.Raft
	leaderFSM *countFSM
}

// startRaftCluster starts n nodes in dir, bootstraps them and waits for a
// leader.
func startRaftCluster(ctx context.Context, dir string, n int, useTLS bool) (c *raftCluster, err error) {
	var serverTLS, clientTLS *tls.Config
	if useTLS {
		if serverTLS, clientTLS, err = probeTLS("rawlimits-raft"); err != nil {
			return nil, err
		}
	}
	c = &raftCluster{}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.close())
		}
	}()
	var servers []raft.Server
	for i := range n {
		id := fmt.Sprintf("raw%d", i)
		nd := &raftNode{fsm: &countFSM{}}
		c.nodes = append(c.nodes, nd)
		stream, err := newStreamLayer(serverTLS, clientTLS)
		if err != nil {
			return nil, fmt.Errorf("%w: listen: %w", ErrProbe, err)
		}
		nd.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
		})
		path := filepath.Join(dir, id)
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProbe, err)
		}
		// raftstore's options: map freelist not synced, fsync on.
		nd.store, err = raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(path, "raft.db"),
			BoltOptions: &bolt.Options{
				Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("%w: raft log: %w", ErrProbe, err)
		}
		logs, err := raft.NewLogCache(raftstore.LogCacheEntries, nd.store) // as raftstore runs
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProbe, err)
		}
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(id)
		// raftstore's defaults.
		rc.HeartbeatTimeout, rc.ElectionTimeout = time.Second, time.Second
		rc.LeaderLeaseTimeout, rc.CommitTimeout = 500*time.Millisecond, 50*time.Millisecond
		rc.BatchApplyCh = true
		rc.SnapshotThreshold = 1 << 62 // no snapshot during a probe
		rc.Logger = hclog.NewNullLogger()
		nd.r, err = raft.NewRaft(rc, nd.fsm, logs, nd.store, raft.NewDiscardSnapshotStore(), nd.trans)
		if err != nil {
			return nil, fmt.Errorf("%w: raft: %w", ErrProbe, err)
		}
		servers = append(servers, raft.Server{ID: rc.LocalID, Address: nd.trans.LocalAddr()})
	}
	if err := c.nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return nil, fmt.Errorf("%w: bootstrap: %w", ErrProbe, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.leader == nil {
		for _, nd := range c.nodes {
			if nd.r.State() == raft.Leader {
				c.leader, c.leaderFSM = nd.r, nd.fsm
			}
		}
		if c.leader != nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: no raft leader after 20s", ErrProbe)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrProbe, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Every member has joined the configuration's commit before measuring.
	if err := c.leader.Barrier(10 * time.Second).Error(); err != nil {
		return nil, fmt.Errorf("%w: barrier: %w", ErrProbe, err)
	}
	return c, nil
}

// close shuts every node down and closes its stores.
func (c *raftCluster) close() error {
	var errs []error
	for _, nd := range c.nodes {
		if nd.r != nil {
			errs = append(errs, nd.r.Shutdown().Error())
		}
		if nd.trans != nil {
			errs = append(errs, nd.trans.Close())
		}
		if nd.store != nil {
			errs = append(errs, nd.store.Close())
		}
	}
	c.nodes = nil
	return errors.Join(errs...)
}
