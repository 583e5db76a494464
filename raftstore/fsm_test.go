package raftstore

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
	"google.golang.org/protobuf/proto"
)

func newTestFSM(t testing.TB, path string) (*fsm, *fatalRecorder) {
	t.Helper()
	rec := newFatalRecorder()
	f, err := newFSM(path, stateDBOptions{timeout: time.Second, mmapSize: 16 << 20}, hclog.NewNullLogger(), rec.hook, newWatchHub())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	return f, rec
}

func entryLog(t testing.TB, index uint64, cmds ...[]Op) *raft.Log {
	t.Helper()
	pcs := make([]*raftpb.Command, len(cmds))
	for i, c := range cmds {
		pcs[i] = commandToProto(c)
	}
	data, err := encodeEntry(pcs)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func results(t testing.TB, resp interface{}) []*raftpb.Result {
	t.Helper()
	rs, ok := resp.([]*raftpb.Result)
	if !ok {
		t.Fatalf("response %T (%v), want results", resp, resp)
	}
	return rs
}

func getLocal(t testing.TB, f *fsm, bucket, k string) ([]byte, bool) {
	t.Helper()
	var v []byte
	var found bool
	err := f.read(func(sv *stateView) error {
		if x, ok := sv.get(bucket, []byte(k)); ok {
			v, found = bytes.Clone(x), true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, found
}

func TestFSMReplayIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f, rec := newTestFSM(t, path)
	logs := []*raft.Log{
		entryLog(t, 1, []Op{Put("b", []byte("k"), []byte("1"))}),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		entryLog(t, 3, []Op{PutIfAbsent("b", []byte("p"), []byte("first"))}),
	}
	resp := f.ApplyBatch(logs)
	if len(resp) != 3 || resp[1] != nil || results(t, resp[2])[0].GetStatus() != raftpb.Status_STATUS_APPLIED || f.applied.Load() != 3 {
		t.Fatalf("first apply: %v applied=%d", resp, f.applied.Load())
	}
	// The same entries again (raft replaying after a restart) change nothing.
	replay := []*raft.Log{
		entryLog(t, 1, []Op{Put("b", []byte("k"), []byte("changed"))}),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		entryLog(t, 3, []Op{PutIfAbsent("b", []byte("p"), []byte("second"))}),
		entryLog(t, 4, []Op{Put("b", []byte("q"), []byte("new"))}),
	}
	resp = f.ApplyBatch(replay)
	for i := range 3 {
		if resp[i] != errReplayed {
			t.Fatalf("replayed entry %d answered %v", i, resp[i])
		}
	}
	if v, _ := getLocal(t, f, "b", "k"); string(v) != "1" {
		t.Fatal("replayed put changed the state")
	}
	if v, _ := getLocal(t, f, "b", "q"); string(v) != "new" {
		t.Fatal("new entry after replayed ones not applied")
	}
	// The applied index survives a reopen.
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	g, _ := newTestFSM(t, path)
	if g.applied.Load() != 4 {
		t.Fatalf("reopened applied index %d, want 4", g.applied.Load())
	}
	if rec.count() != 0 {
		t.Fatal("fatal hook called")
	}
}

func TestFSMCommandSemantics(t *testing.T) {
	f, rec := newTestFSM(t, filepath.Join(t.TempDir(), "state.db"))
	resp := f.ApplyBatch([]*raft.Log{entryLog(t, 1,
		// Later ops see earlier ops of the same command: the second
		// put-if-absent on the same key fails, so nothing is written.
		[]Op{PutIfAbsent("b", []byte("k"), []byte("a")), PutIfAbsent("b", []byte("k"), []byte("b"))},
		// Independent command in the same entry: applied.
		[]Op{Put("b", []byte("x"), nil), Delete("b", []byte("nothing"))},
		// Delete then put-if-absent of the same key succeeds.
		[]Op{Put("c", []byte("d"), []byte("1")), Delete("c", []byte("d")), PutIfAbsent("c", []byte("d"), []byte("2"))},
	)})
	rs := results(t, resp[0])
	if rs[0].GetStatus() != raftpb.Status_STATUS_CONDITION_FAILED || rs[0].GetFailedOp() != 1 ||
		!bytes.Equal(rs[0].GetOps()[1].GetExisting(), []byte("a")) {
		t.Fatalf("command 0: %v", rs[0])
	}
	if _, found := getLocal(t, f, "b", "k"); found {
		t.Fatal("failed command wrote its first op")
	}
	if rs[1].GetStatus() != raftpb.Status_STATUS_APPLIED || rs[1].GetOps()[1].GetExisted() {
		t.Fatalf("command 1: %v", rs[1])
	}
	if v, found := getLocal(t, f, "b", "x"); !found || len(v) != 0 {
		t.Fatal("empty value not stored as present")
	}
	if v, _ := getLocal(t, f, "c", "d"); string(v) != "2" || rs[2].GetStatus() != raftpb.Status_STATUS_APPLIED {
		t.Fatalf("command 2: %v", rs[2])
	}
	// A command breaking limits inside the log is rejected the same way on
	// every node, not fatal.
	bad := &raftpb.Command{Ops: []*raftpb.Op{{Type: raftpb.OpType_OP_TYPE_PUT, Bucket: "no spaces", Key: []byte("k")}}}
	data, _ := proto.Marshal(&raftpb.Entry{Version: entryVersion, Commands: []*raftpb.Command{bad}})
	rs = results(t, f.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: data}})[0])
	if rs[0].GetStatus() != raftpb.Status_STATUS_INVALID {
		t.Fatalf("invalid command: %v", rs[0])
	}
	if rec.count() != 0 {
		t.Fatal("fatal hook called")
	}
}

func TestFSMFatalCases(t *testing.T) {
	unknownOp, _ := proto.Marshal(&raftpb.Entry{Version: entryVersion, Commands: []*raftpb.Command{
		{Ops: []*raftpb.Op{{Type: raftpb.OpType(99), Bucket: "b", Key: []byte("k")}}}}})
	newVersion, _ := proto.Marshal(&raftpb.Entry{Version: entryVersion + 1})
	cases := map[string]struct {
		data []byte
		want error
	}{
		"unknown version": {newVersion, ErrStateCorrupt},
		"unknown op type": {unknownOp, errUnknownOp},
		"garbage":         {[]byte{0xff, 0xff, 0xff}, ErrStateCorrupt},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f, rec := newTestFSM(t, filepath.Join(t.TempDir(), "state.db"))
			good := entryLog(t, 1, []Op{Put("b", []byte("k"), []byte("v"))})
			resp := f.ApplyBatch([]*raft.Log{good, {Index: 2, Type: raft.LogCommand, Data: tc.data}})
			if rec.count() != 1 || !errors.Is(rec.errs[0], tc.want) {
				t.Fatalf("fatal calls %d, errs %v", rec.count(), rec.errs)
			}
			if resp[0] != ErrStopped || resp[1] != ErrStopped {
				t.Fatalf("responses %v", resp)
			}
			// The whole batch was rolled back and later entries are refused.
			if _, found := getLocal(t, f, "b", "k"); found || f.applied.Load() != 0 {
				t.Fatal("state changed by a batch with a fatal entry")
			}
			if r := f.ApplyBatch([]*raft.Log{entryLog(t, 3, []Op{Put("b", []byte("z"), nil)})}); r[0] != ErrStopped {
				t.Fatalf("stopped FSM applied: %v", r[0])
			}
		})
	}
	t.Run("io failure", func(t *testing.T) {
		f, rec := newTestFSM(t, filepath.Join(t.TempDir(), "state.db"))
		if err := f.db.Close(); err != nil { // the file vanishes under the FSM
			t.Fatal(err)
		}
		resp := f.ApplyBatch([]*raft.Log{entryLog(t, 1, []Op{Put("b", []byte("k"), []byte("v"))})})
		if rec.count() != 1 || resp[0] != ErrStopped {
			t.Fatalf("fatal calls %d, resp %v", rec.count(), resp[0])
		}
	})
}

// TestFatalHookInCluster drives an unknown envelope version through real
// raft: every node's hook fires and proposals stop succeeding.
func TestFatalHookInCluster(t *testing.T) {
	ca := newTestCA(t, "ca")
	n := startNode(t, ca, "solo", clusterOpts{})
	ctx := ctxT(t, 20*time.Second)
	if err := n.s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	// Bootstrap again (restart path) is a no-op.
	if err := n.s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.s.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.Propose(ctx, Put("b", []byte("k"), []byte("v"))); err != nil {
		t.Fatal(err)
	}
	data, _ := proto.Marshal(&raftpb.Entry{Version: 7})
	if err := n.s.raft.Apply(data, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.fatals.ch:
		if !errors.Is(err, ErrStateCorrupt) {
			t.Fatalf("fatal error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fatal hook not called")
	}
	if _, err := n.s.Propose(ctx, Put("b", []byte("k2"), []byte("v"))); !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, ErrStopped) {
		t.Fatalf("propose on a stopped node: %v", err)
	}
}

// enteredCtx reports, once, when its Done channel is first asked for. In
// coalescer.do that happens in the select that waits for the round, after
// the caller has joined it under c.mu: a caller whose enteredCtx has fired
// is committed to a round.
type enteredCtx struct {
	context.Context
	once    sync.Once
	entered chan<- struct{}
}

func (c *enteredCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.entered <- struct{}{} })
	return c.Context.Done()
}

func TestCoalescerNeverJoinsAnOlderRound(t *testing.T) {
	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	// Never leave the coalescer's loop blocked in fn if the test fails.
	t.Cleanup(releaseAll)
	started := make(chan struct{}, 2)
	var calls atomic.Uint64
	c := &coalescer{timeout: time.Minute, fn: func(ctx context.Context) (uint64, error) {
		n := calls.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}}
	ctx := ctxT(t, 10*time.Second)
	first := make(chan uint64, 1)
	go func() { v, _ := c.do(ctx); first <- v }()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("round 1 never started")
	}
	// Round 1 is running; these arrive later and must share round 2.
	const late = 8
	entered := make(chan struct{}, late)
	later := make(chan uint64, late)
	for range late {
		go func() {
			v, _ := c.do(&enteredCtx{Context: ctx, entered: entered})
			later <- v
		}()
	}
	// Release round 1 only once every late caller has joined a round.
	for i := range late {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatalf("only %d of %d late callers joined a round", i, late)
		}
	}
	releaseAll()
	if v := <-first; v != 1 {
		t.Fatalf("first caller got round %d", v)
	}
	for range late {
		if v := <-later; v != 2 {
			t.Fatalf("late caller got round %d, want 2", v)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d rounds, want 2", calls.Load())
	}
}

func TestSubscriptionOverflowBecomesRescan(t *testing.T) {
	h := newWatchHub()
	sub := h.subscribe("b")
	defer sub.Close()
	ch := newChangeSet(h)
	for i := range maxPendingKeys + 10 {
		ch.add("b", key(i))
		ch.add("other", key(i))
	}
	// The consumer is not reading: the first event may already sit in the
	// channel; everything else must collapse into one rescan.
	ch.publish(41)
	ch2 := newChangeSet(h)
	ch2.add("b", []byte("late"))
	ch2.publish(42)
	// Expect: a rescan (the overflow), and the later change either folded
	// into a rescan at 42 or delivered as its own event after it.
	deadline := time.After(5 * time.Second)
	sawRescan := false
	for {
		select {
		case ev := <-sub.C:
			if ev.Bucket != "b" {
				t.Fatalf("event for %q", ev.Bucket)
			}
			if len(ev.Keys) > maxPendingKeys {
				t.Fatalf("event with %d keys exceeds the bound", len(ev.Keys))
			}
			if ev.Rescan {
				if ev.Index < 41 {
					t.Fatalf("rescan at %d", ev.Index)
				}
				sawRescan = true
				if ev.Index == 42 {
					return
				}
				continue
			}
			if sawRescan && len(ev.Keys) == 1 && string(ev.Keys[0]) == "late" && ev.Index == 42 {
				return
			}
		case <-deadline:
			t.Fatalf("no rescan / late event (rescan seen: %v)", sawRescan)
		}
	}
}
