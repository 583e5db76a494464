package raftstore

import (
	"runtime"
	"sync"

	"github.com/hashicorp/raft"
)

// stableGate is the StableStore raft uses (raft-boltdb underneath), closed
// by Shutdown after raft stopped and before the bolt file closes.
//
// Why: hashicorp/raft v1.7.3 answers heartbeats on the transport's
// connection goroutine (processHeartbeat), which Raft.Shutdown does not
// wait for. A heartbeat that passed its shutdown check just before
// Shutdown can reach setCurrentTerm after the file closed, and raft panics
// on any stable-store error ("failed to save current term: database not
// open"), taking the process down on a clean stop (seen in tests).
//
// The gate waits for calls in progress before it closes. A call after
// that can only come from such a goroutine of a raft that has stopped: it
// ends that goroutine (runtime.Goexit, deferred calls run, nothing is
// answered: to the leader it is a lost message) instead of returning an
// error raft would panic on. Safe for concurrent use.
type stableGate struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

// enter admits a call, or ends the calling goroutine once closed. The
// caller must call g.mu.RUnlock when admitted.
func (g *stableGate) enter() {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		runtime.Goexit()
	}
}

func (g *stableGate) Set(k, v []byte) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.Set(k, v)
}

func (g *stableGate) Get(k []byte) ([]byte, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.Get(k)
}

func (g *stableGate) SetUint64(k []byte, v uint64) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.SetUint64(k, v)
}

func (g *stableGate) GetUint64(k []byte) (uint64, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.StableStore.GetUint64(k)
}

// close waits for calls in progress and refuses every later one.
func (g *stableGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
