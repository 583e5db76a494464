package raftstore

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// fsmSnapshot streams a consistent read transaction of the state DB. It is
// taken on raft's FSM goroutine (so it matches the applied index exactly)
// and persisted concurrently with later applies, which bbolt's MVCC allows.
// Safe for the concurrent use raft makes of it (Persist, then Release).
type fsmSnapshot struct {
	tx *bolt.Tx
}

// Snapshot implements raft.FSM. It first commits the overlay, so that the
// state DB holds exactly what was applied (raft labels the snapshot with
// the last applied index).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.commitState(); err != nil {
		f.stop(err)
		return nil, ErrStopped
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return nil, ErrClosed
	}
	if f.stopped.Load() {
		return nil, ErrStopped
	}
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 1<<20)
	if _, err := s.tx.WriteTo(w); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: snapshot persist: %w", err)
	}
	if err := w.Flush(); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: snapshot persist: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore implements raft.FSM: the stream (a state DB written by Persist) is
// written to a temporary file, fsynced and validated, then renamed over the
// state DB, which is reopened. A failure before the swap leaves the old
// state in place and is returned; a failure after closing the old DB is
// fatal, since the node would be left without state.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + restoreSuffix
	if err := writeFileSync(tmp, rc); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	applied, err := readStateApplied(tmp, f.opts)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: %w", err)
	}

	// No commit may run while the file is swapped; what was applied but
	// not committed belongs to the state being replaced.
	f.commitMu.Lock()
	defer f.commitMu.Unlock()
	f.mu.Lock()
	f.ovMu.Lock()
	f.mem, f.frozen = newOverlay(applied), nil
	f.diskApplied = applied
	f.ovMu.Unlock()
	if f.db != nil {
		if err := f.db.Close(); err != nil {
			f.mu.Unlock()
			f.stop(fmt.Errorf("raftstore: restore: close state db: %w", err))
			return ErrStopped
		}
		f.db = nil
	}
	err = os.Rename(tmp, f.path)
	if err == nil {
		err = syncDir(filepath.Dir(f.path))
	}
	var db *bolt.DB
	if err == nil {
		db, _, err = openStateDB(f.path, f.opts)
	}
	if err != nil {
		f.mu.Unlock()
		f.stop(fmt.Errorf("raftstore: restore: swap state db: %w", err))
		return ErrStopped
	}
	f.db = db
	f.mu.Unlock()

	f.restores.Add(1)
	f.setApplied(applied)
	f.hub.rescanAll(applied)
	f.logger.Info("state restored from snapshot", "applied_index", applied)
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, stateFileMode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, bufio.NewReaderSize(r, 1<<20)); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
