package raftstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A data directory held by a running node cannot be opened a second time:
// the bbolt lock wait is bounded by OpenTimeout instead of hanging.
func TestOpenLockedDataDirTimesOut(t *testing.T) {
	ca := newTestCA(t, "ca")
	n := startNode(t, ca, "n1", clusterOpts{})
	cfg := n.cfg
	cfg.BindAddr = "127.0.0.1:0"
	cfg.OpenTimeout = 200 * time.Millisecond
	start := time.Now()
	s, err := Open(cfg)
	if err == nil {
		_ = s.Shutdown()
		t.Fatal("second Open of a locked data dir succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open blocked for %v", d)
	}
}

// A state DB whose raft log was lost must not be served (it may belong to
// another history); the operator wipes the node and joins it as a new id.
func TestOpenRefusesStateWithoutRaftLog(t *testing.T) {
	ca := newTestCA(t, "ca")
	n := startNode(t, ca, "n1", clusterOpts{})
	ctx := ctxT(t, 20*time.Second)
	if err := n.s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.s.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.Propose(ctx, Put("b", []byte("k"), []byte("v"))); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(n.dir, raftFileName)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(n.cfg)
	if err == nil {
		_ = s.Shutdown()
	}
	if !errors.Is(err, ErrStateCorrupt) {
		t.Fatalf("open with lost raft log: %v", err)
	}
	// Shutdown stays idempotent on the old handle.
	if err := n.s.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

// HasState: no file, and a log file a node opened but never wrote to (it
// never bootstrapped or joined), are not state; a bootstrapped node's log
// is, also after a clean shutdown.
func TestHasStateNeedsAnEntryOrATerm(t *testing.T) {
	ca := newTestCA(t, "ca")
	if had, err := HasState(t.TempDir()); had || err != nil {
		t.Fatalf("empty dir: %v, %v", had, err)
	}
	n := startNode(t, ca, "n1", clusterOpts{})
	if err := n.s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(n.dir, raftFileName)); err != nil || fi.Size() == 0 {
		t.Fatalf("the never-used node left no log file to check: %v", err)
	}
	if had, err := HasState(n.dir); had || err != nil {
		t.Fatalf("a node that never bootstrapped or joined: %v, %v", had, err)
	}
	n.restart(t)
	ctx := ctxT(t, 20*time.Second)
	if err := n.s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.s.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if had, err := HasState(n.dir); !had || err != nil {
		t.Fatalf("a bootstrapped node: %v, %v", had, err)
	}
}
