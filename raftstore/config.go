package raftstore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Limits on commands, checked before a command is proposed and again by the
// state machine (where a violation is a deterministic rejection, never a
// fatal error).
const (
	MaxOpsPerCommand = 256
	MaxBucketName    = 64
	MaxKeySize       = 512
	MaxValueSize     = 16 << 10
	// MaxScanLimit caps one Scan page.
	MaxScanLimit = 10000
	// LogCacheEntries is how many recent Raft entries a node keeps in
	// memory for replication and apply: entries are up to MaxBatchBytes
	// (batch workloads make ~100 KiB ones; 512 held 60 MB of heap per node).
	LogCacheEntries = 128
	// MaxGetMany caps the keys of one GetMany.
	MaxGetMany = 10000
)

var bucketNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Config configures a Store. NodeID, BindAddr, DataDir, ServerTLS and
// ClientTLS are required; every other field has a default.
type Config struct {
	// NodeID is this node's permanent Raft server id. Never reuse an id
	// after its data directory was wiped: peers would take the empty node
	// for the one they knew and count its vote.
	NodeID string
	// BindAddr is the TCP address to listen on ("127.0.0.1:0" picks a port).
	BindAddr string
	// AdvertiseAddr is the address peers dial; defaults to the bound address.
	AdvertiseAddr string
	// DataDir holds raft.db, state.db and snapshots/. Created if missing.
	DataDir string

	// ServerTLS must require and verify client certificates
	// (tls.RequireAndVerifyClientCert with ClientCAs). ClientTLS must carry
	// this node's certificate and the RootCAs to verify peers. Both are
	// cloned and forced to TLS 1.3.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// VerifyPeer, if set, is called with the verified leaf certificate of
	// every peer, on accepted and dialled connections; an error closes the
	// connection. Use it when the CA also issues certificates that are not
	// cluster nodes (for example API clients): any certificate accepted here
	// may propose writes and change membership through the forward service.
	VerifyPeer func(leaf *x509.Certificate) error

	// Logger receives raft's and this package's logs. Defaults to hclog on
	// stderr at Info.
	Logger hclog.Logger
	// Fatal is called when the state machine cannot go on (local I/O error,
	// unknown entry version or op type). Default: log and os.Exit(2). When it
	// returns (tests), the state machine refuses every later entry.
	Fatal func(error)

	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 50ms
	SnapshotInterval   time.Duration // default 2m
	SnapshotThreshold  uint64        // default 8192 entries
	TrailingLogs       uint64        // default 10240 entries
	RetainSnapshots    int           // default 2

	// Group commit. MaxBatchCommands and MaxBatchBytes bound one Raft
	// entry; QueueSize bounds proposals waiting for the committer;
	// MaxInflightBatches bounds batches submitted but not yet answered.
	MaxBatchCommands   int // default 1024
	MaxBatchBytes      int // default 1 MiB
	QueueSize          int // default 4096
	MaxInflightBatches int // default 2

	// ApplyTimeout bounds how long one batch may wait for a leader and for
	// commit, and how long one shared read-index round may take.
	ApplyTimeout time.Duration // default 10s
	// OpenTimeout bounds waiting for another process's lock on a bbolt file.
	OpenTimeout time.Duration // default 5s
	// InitialMmapSize for the state DB: a snapshot's long read transaction
	// blocks writers only when the file outgrows the mapping, so map
	// generously (virtual memory, not RAM). Default 1 GiB.
	InitialMmapSize int

	// Grouped state commits: applied writes are kept in memory (and
	// served from there) until one bbolt transaction, fsynced, writes them
	// with the applied index, every StateCommitInterval or sooner once
	// StateCommitKeys keys or StateCommitBytes bytes are pending. The raft
	// log, fsynced on a majority before anything is applied, covers the
	// gap after a crash (see DESIGN.md). Larger bounds: fewer bbolt
	// commits, more memory and more log to replay after a crash.
	StateCommitInterval time.Duration // default 1s
	StateCommitKeys     int           // default 16384
	StateCommitBytes    int           // default 16 MiB
}

// Defaults of the grouped state commit.
const (
	defaultStateCommitInterval = time.Second
	defaultStateCommitKeys     = 1 << 14
	defaultStateCommitBytes    = 16 << 20
)

func (c *Config) withDefaults() (Config, error) {
	out := *c
	switch {
	case out.NodeID == "":
		return out, fmt.Errorf("%w: NodeID is empty", ErrInvalidConfig)
	case out.BindAddr == "":
		return out, fmt.Errorf("%w: BindAddr is empty", ErrInvalidConfig)
	case out.DataDir == "":
		return out, fmt.Errorf("%w: DataDir is empty", ErrInvalidConfig)
	case out.ServerTLS == nil:
		return out, fmt.Errorf("%w: ServerTLS is nil", ErrInvalidConfig)
	case out.ClientTLS == nil:
		return out, fmt.Errorf("%w: ClientTLS is nil", ErrInvalidConfig)
	case out.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return out, fmt.Errorf("%w: ServerTLS.ClientAuth must be RequireAndVerifyClientCert", ErrInvalidConfig)
	case out.ServerTLS.ClientCAs == nil && out.ServerTLS.GetConfigForClient == nil:
		return out, fmt.Errorf("%w: ServerTLS.ClientCAs is nil", ErrInvalidConfig)
	case len(out.ClientTLS.Certificates) == 0 && out.ClientTLS.GetClientCertificate == nil:
		return out, fmt.Errorf("%w: ClientTLS has no client certificate", ErrInvalidConfig)
	case out.ClientTLS.InsecureSkipVerify:
		return out, fmt.Errorf("%w: ClientTLS.InsecureSkipVerify is set", ErrInvalidConfig)
	}
	out.ServerTLS = out.ServerTLS.Clone()
	out.ServerTLS.MinVersion = tls.VersionTLS13
	out.ClientTLS = out.ClientTLS.Clone()
	out.ClientTLS.MinVersion = tls.VersionTLS13

	if out.Logger == nil {
		out.Logger = hclog.New(&hclog.LoggerOptions{Name: "raftstore", Level: hclog.Info, Output: os.Stderr})
	}
	if out.Fatal == nil {
		logger := out.Logger
		out.Fatal = func(err error) {
			logger.Error("raftstore: fatal error, stopping the process", "error", err)
			os.Exit(2)
		}
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur(&out.HeartbeatTimeout, time.Second)
	setDur(&out.ElectionTimeout, time.Second)
	setDur(&out.LeaderLeaseTimeout, 500*time.Millisecond)
	setDur(&out.CommitTimeout, 50*time.Millisecond)
	setDur(&out.SnapshotInterval, 2*time.Minute)
	setDur(&out.ApplyTimeout, 10*time.Second)
	setDur(&out.OpenTimeout, 5*time.Second)
	if out.SnapshotThreshold == 0 {
		out.SnapshotThreshold = 8192
	}
	if out.TrailingLogs == 0 {
		out.TrailingLogs = 10240
	}
	setInt(&out.RetainSnapshots, 2)
	setInt(&out.MaxBatchCommands, 1024)
	setInt(&out.MaxBatchBytes, 1<<20)
	setInt(&out.QueueSize, 4096)
	setInt(&out.MaxInflightBatches, 2)
	setInt(&out.InitialMmapSize, 1<<30)
	if out.LeaderLeaseTimeout > out.HeartbeatTimeout {
		return out, fmt.Errorf("%w: LeaderLeaseTimeout exceeds HeartbeatTimeout", ErrInvalidConfig)
	}
	return out, nil
}
