package raftstore

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// pipelinePair is a leader-side NetworkTransport and a follower-side one
// that answers every AppendEntries with Success=false, over loopback TCP.
func pipelinePair(t *testing.T) (leader *raft.NetworkTransport, follower raft.ServerAddress) {
	t.Helper()
	f, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(); _ = f.Close() })
	go func() {
		for rpc := range f.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
		}
	}()
	return l, f.LocalAddr()
}

// sendN sends n pipelined AppendEntries and reports on done when all
// returned.
func sendN(p raft.AppendPipeline, n int, done chan<- error) {
	for i := 0; i < n; i++ {
		if _, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, new(raft.AppendEntriesResponse)); err != nil {
			done <- err
			return
		}
	}
	done <- nil
}

// TestPipelineDeadlockReproduces shows the upstream hang the wrapper exists
// for: after the reader of a raw NetworkTransport pipeline stops (as raft's
// pipelineDecode does on Success=false), the next sends block until Close.
// If this ever stops blocking, upstream fixed it and the wrapper can go.
func TestPipelineDeadlockReproduces(t *testing.T) {
	l, addr := pipelinePair(t)
	p, err := l.AppendEntriesPipeline("f", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go sendN(p, 3, done)
	select {
	case err := <-done:
		t.Fatalf("raw pipeline did not block with no reader (err=%v): the upstream deadlock is gone", err)
	case <-time.After(time.Second):
	}
	_ = p.Close() // unblocks the sender with ErrPipelineShutdown
	if err := <-done; err == nil {
		t.Fatal("sender unblocked by Close reported success")
	}
}

// TestDrainingPipelineNeverBlocksSender: the same sequence through the
// wrapper Store uses. Responses read before the reader left arrive in
// order; sends after it left return; Close returns.
func TestDrainingPipelineNeverBlocksSender(t *testing.T) {
	l, addr := pipelinePair(t)
	p, err := pipelineTransport{l}.AppendEntriesPipeline("f", addr)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]*raft.AppendEntriesRequest, 3)
	for i := range reqs {
		reqs[i] = &raft.AppendEntriesRequest{Term: 1, PrevLogEntry: uint64(i + 1)}
		if _, err := p.AppendEntries(reqs[i], new(raft.AppendEntriesResponse)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range reqs {
		select {
		case f := <-p.Consumer():
			if f.Request() != reqs[i] {
				t.Fatalf("response %d is for request with PrevLogEntry %d", i, f.Request().PrevLogEntry)
			}
			if f.Error() != nil || f.Response().Success {
				t.Fatalf("response %d: err=%v success=%v, want the follower's refusal", i, f.Error(), f.Response().Success)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("response %d never arrived", i)
		}
	}
	// The reader is gone now; the sender must not wait on it.
	done := make(chan error, 1)
	go sendN(p, 50, done)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("send blocked with no reader: deadlock")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
