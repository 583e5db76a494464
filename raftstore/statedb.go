package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Layout of the state DB: one top-level bucket per user bucket, named
// userPrefix+name, and one meta bucket holding the applied index. The
// prefixes keep user names from ever colliding with the meta bucket.
var (
	metaBucket     = []byte("m")
	userPrefix     = "u/"
	keyApplied     = []byte("applied")
	keyFormat      = []byte("format")
	stateFormatV1  = []byte{1}
	stateFileMode  = os.FileMode(0o600)
	restoreSuffix  = ".restore"
	stateFileName  = "state.db"
	raftFileName   = "raft.db"
	snapshotSubdir = "snapshots"
)

func userBucketName(name string) []byte { return []byte(userPrefix + name) }

type stateDBOptions struct {
	timeout  time.Duration
	mmapSize int
	// Grouped commits of the applied state (Config.StateCommit*).
	commitInterval time.Duration
	commitKeys     int
	commitBytes    int
}

// withDefaults fills in the grouped-commit bounds left zero.
func (o stateDBOptions) withDefaults() stateDBOptions {
	if o.commitInterval <= 0 {
		o.commitInterval = defaultStateCommitInterval
	}
	if o.commitKeys <= 0 {
		o.commitKeys = defaultStateCommitKeys
	}
	if o.commitBytes <= 0 {
		o.commitBytes = defaultStateCommitBytes
	}
	return o
}

func (o stateDBOptions) bolt() *bolt.Options {
	return &bolt.Options{
		Timeout: o.timeout,
		// The freelist is rebuilt on open instead of written on every commit:
		// cheaper commits on a large file. Sync stays on (never NoSync).
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: o.mmapSize,
	}
}

// openStateDB opens (creating if needed) a state DB and returns its applied
// index.
func openStateDB(path string, o stateDBOptions) (*bolt.DB, uint64, error) {
	db, err := bolt.Open(path, stateFileMode, o.bolt())
	if err != nil {
		return nil, 0, fmt.Errorf("raftstore: open state db: %w", err)
	}
	var applied uint64
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			var err error
			if meta, err = tx.CreateBucket(metaBucket); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, stateFormatV1); err != nil {
				return err
			}
		}
		if f := meta.Get(keyFormat); len(f) != 1 || f[0] != stateFormatV1[0] {
			return fmt.Errorf("%w: unknown state format", ErrStateCorrupt)
		}
		applied = readApplied(meta)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, 0, fmt.Errorf("raftstore: init state db: %w", err)
	}
	return db, applied, nil
}

// readStateApplied opens a DB file just long enough to read its format and
// applied index (used to validate a snapshot before swapping it in).
func readStateApplied(path string, o stateDBOptions) (uint64, error) {
	opts := o.bolt()
	opts.ReadOnly = true
	db, err := bolt.Open(path, stateFileMode, opts)
	if err != nil {
		return 0, fmt.Errorf("%w: snapshot is not a state db: %w", ErrStateCorrupt, err)
	}
	defer db.Close()
	var applied uint64
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			return fmt.Errorf("%w: snapshot has no meta bucket", ErrStateCorrupt)
		}
		if f := meta.Get(keyFormat); len(f) != 1 || f[0] != stateFormatV1[0] {
			return fmt.Errorf("%w: snapshot has an unknown state format", ErrStateCorrupt)
		}
		applied = readApplied(meta)
		return nil
	})
	return applied, err
}

func readApplied(meta *bolt.Bucket) uint64 {
	v := meta.Get(keyApplied)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func writeApplied(meta *bolt.Bucket, idx uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], idx)
	return meta.Put(keyApplied, b[:])
}

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func statePath(dataDir string) string { return filepath.Join(dataDir, stateFileName) }

// HasState reports whether dataDir holds the Raft state of a node that has
// been a member: a Raft log with an entry or a term above zero. Its
// replicated state may then name things, such as a rotated master key, its
// configuration does not, and peers know it by its Raft address. A log file
// that a node created but never wrote (it failed before it bootstrapped or
// joined, for example on a taken port) is not state. It opens the log
// read-only: call it while no process holds the node's store.
func HasState(dataDir string) (bool, error) {
	path := filepath.Join(dataDir, raftFileName)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("raftstore: %w", err)
	case fi.Size() == 0:
		return false, nil
	}
	bs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		return false, fmt.Errorf("raftstore: open %s: %w", path, err)
	}
	defer bs.Close()
	// raft's own test, as Bootstrap uses it; snapshots need a log or a term.
	had, err := raft.HasExistingState(bs, bs, raft.NewDiscardSnapshotStore())
	if err != nil {
		return false, fmt.Errorf("raftstore: read %s: %w", path, err)
	}
	return had, nil
}
