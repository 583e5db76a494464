package raftstore

import (
	"path/filepath"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestStableGate: calls pass through while open; after close a call ends
// its goroutine (its deferred calls run, it never returns) instead of
// reaching the closed file, whose error raft would panic on.
func TestStableGate(t *testing.T) {
	b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(t.TempDir(), "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	g := &stableGate{StableStore: b}
	if err := g.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if v, err := g.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("get: %d %v", v, err)
	}
	g.close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	returned, deferred := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(deferred)
		returned <- g.SetUint64([]byte("CurrentTerm"), 8)
	}()
	<-deferred
	select {
	case err := <-returned:
		t.Fatalf("a call after close returned (%v): raft would panic on its error", err)
	default:
	}
}
