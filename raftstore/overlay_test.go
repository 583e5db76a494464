package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newHeldFSM opens an FSM whose background committer never fires on its
// own (hour-long interval, large bounds), so a test decides when the
// state DB is written.
func newHeldFSM(t testing.TB, path string, keys int) (*fsm, *fatalRecorder) {
	t.Helper()
	rec := newFatalRecorder()
	f, err := newFSM(path, stateDBOptions{timeout: time.Second, mmapSize: 16 << 20, commitInterval: time.Hour, commitKeys: keys},
		hclog.NewNullLogger(), rec.hook, newWatchHub())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.close() })
	return f, rec
}

// copyFile copies a state DB as a crash would leave it: whatever the last
// commit wrote. Nothing writes the file while the copy runs (the
// committer is held).
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func stateOf(t *testing.T, f *fsm, bucket string) string {
	t.Helper()
	var out []string
	err := f.read(func(v *stateView) error {
		kvs, more := v.scan(bucket, nil, nil, 1000)
		if more {
			t.Error("more than 1000 keys")
		}
		for _, kv := range kvs {
			out = append(out, string(kv.Key)+"="+string(kv.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(out)
}

// TestStateCommitCrashReplay: applied writes not yet committed to the
// state DB are lost by a crash, and replaying the raft log entries after
// the state DB's applied index rebuilds exactly the same state.
func TestStateCommitCrashReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	f, rec := newHeldFSM(t, path, 1<<20)
	logs := []*raft.Log{
		entryLog(t, 1, []Op{Put("b", []byte("a"), []byte("1")), Put("b", []byte("b"), []byte("2"))}),
		entryLog(t, 2, []Op{PutIfAbsent("b", []byte("c"), []byte("3"))}, []Op{Delete("b", []byte("a"))}),
	}
	f.ApplyBatch(logs[:1])
	if err := f.commitState(); err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch(logs[1:])
	f.ApplyBatch([]*raft.Log{entryLog(t, 3, []Op{CompareAndSet("b", []byte("b"), []byte("2"), []byte("two"))})})
	want := "[b=two c=3]"
	if got := stateOf(t, f, "b"); got != want || f.applied.Load() != 3 {
		t.Fatalf("live state %s at %d, want %s at 3", got, f.applied.Load(), want)
	}

	crashed := filepath.Join(dir, "crashed.db")
	copyFile(t, path, crashed)
	g, grec := newHeldFSM(t, crashed, 1<<20)
	if g.applied.Load() != 1 || stateOf(t, g, "b") != "[a=1 b=2]" {
		t.Fatalf("crashed state %s at %d, want the first commit", stateOf(t, g, "b"), g.applied.Load())
	}
	// Raft replays from its last snapshot: entry 1 is skipped, 2 and 3
	// are applied again with the same results.
	resp := g.ApplyBatch(append(append([]*raft.Log{}, logs...),
		entryLog(t, 3, []Op{CompareAndSet("b", []byte("b"), []byte("2"), []byte("two"))})))
	if resp[0] != errReplayed || results(t, resp[2])[0].GetFailedOp() != -1 {
		t.Fatalf("replay responses %v", resp)
	}
	if got := stateOf(t, g, "b"); got != want || g.applied.Load() != 3 {
		t.Fatalf("replayed state %s at %d, want %s at 3", got, g.applied.Load(), want)
	}
	// A committed state survives as it is.
	if err := f.commitState(); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.db")
	copyFile(t, path, again)
	h, hrec := newHeldFSM(t, again, 1<<20)
	if got := stateOf(t, h, "b"); got != want || h.applied.Load() != 3 {
		t.Fatalf("committed state %s at %d", got, h.applied.Load())
	}
	if rec.count()+grec.count()+hrec.count() != 0 {
		t.Fatal("fatal hook called")
	}
}

// TestStateViewMergesOverlay: reads see the overlay over the state DB:
// overridden values, deletions, new keys, and scans in key order with
// paging and prefixes.
func TestStateViewMergesOverlay(t *testing.T) {
	f, _ := newHeldFSM(t, filepath.Join(t.TempDir(), "state.db"), 1<<20)
	var ops []Op
	for i := 1; i <= 5; i++ {
		ops = append(ops, Put("b", key(i), val(i)))
	}
	ops = append(ops, Put("other", key(3), []byte("x")))
	f.ApplyBatch([]*raft.Log{entryLog(t, 1, ops)})
	if err := f.commitState(); err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch([]*raft.Log{entryLog(t, 2,
		[]Op{Delete("b", key(2))}, []Op{Put("b", key(3), []byte("new"))}, []Op{Put("b", key(6), val(6))},
		[]Op{Put("b", []byte("j"), []byte("before"))}, []Op{Delete("b", key(9))})})
	// The deleted key 2 is gone although bbolt still holds it.
	if got, want := stateOf(t, f, "b"), "[j=before k000001=v000001 k000003=new k000004=v000004 k000005=v000005 k000006=v000006]"; got != want {
		t.Fatalf("scan %s, want %s", got, want)
	}
	err := f.read(func(v *stateView) error {
		if _, ok := v.get("b", key(2)); ok {
			t.Error("deleted key found")
		}
		if x, ok := v.get("b", key(3)); !ok || string(x) != "new" {
			t.Errorf("overridden key: %q %v", x, ok)
		}
		if x, ok := v.get("other", key(3)); !ok || string(x) != "x" {
			t.Errorf("other bucket: %q %v", x, ok)
		}
		// Pages of two, continuing after the last key.
		var all []string
		var after []byte
		for {
			kvs, more := v.scan("b", []byte("k"), after, 2)
			for _, kv := range kvs {
				all = append(all, string(kv.Key))
			}
			if !more {
				break
			}
			after = kvs[len(kvs)-1].Key
		}
		if got := fmt.Sprint(all); got != "[k000001 k000003 k000004 k000005 k000006]" {
			t.Errorf("paged scan %s", got)
		}
		if kvs, _ := v.scan("none", nil, nil, 10); len(kvs) != 0 {
			t.Errorf("scan of a missing bucket: %v", kvs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The same after committing everything.
	before := stateOf(t, f, "b")
	if err := f.commitState(); err != nil {
		t.Fatal(err)
	}
	if after := stateOf(t, f, "b"); after != before {
		t.Fatalf("state changed by the commit: %s, was %s", after, before)
	}
}

// TestStateCommitBounds: pending keys beyond the bound make the committer
// write at once, and beyond twice the bound the state machine writes
// them itself before returning (memory stays bounded).
func TestStateCommitBounds(t *testing.T) {
	f, _ := newHeldFSM(t, filepath.Join(t.TempDir(), "state.db"), 10)
	put := func(idx uint64, n int) {
		var cmds [][]Op
		for i := range n {
			cmds = append(cmds, []Op{Put("b", []byte(fmt.Sprintf("%d-%d", idx, i)), []byte("v"))})
		}
		f.ApplyBatch([]*raft.Log{entryLog(t, idx, cmds...)})
	}
	put(1, 45)
	if f.stateCommits.Load() == 0 || diskApplied(f) != 1 {
		t.Fatalf("45 pending keys with a bound of 10: commits %d, disk index %d", f.stateCommits.Load(), diskApplied(f))
	}
	put(2, 12)
	deadline := time.Now().Add(10 * time.Second)
	for diskApplied(f) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("12 pending keys with a bound of 10 not committed; disk index %d", diskApplied(f))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func diskApplied(f *fsm) uint64 {
	f.ovMu.RLock()
	defer f.ovMu.RUnlock()
	return f.diskApplied
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestSnapshotCarriesOverlay: a snapshot taken while writes are only in
// memory contains them, and restoring it elsewhere gives the same state.
func TestSnapshotCarriesOverlay(t *testing.T) {
	f, _ := newHeldFSM(t, filepath.Join(t.TempDir(), "state.db"), 1<<20)
	f.ApplyBatch([]*raft.Log{entryLog(t, 1, []Op{Put("b", key(1), val(1))}, []Op{Put("b", key(2), val(2))})})
	f.ApplyBatch([]*raft.Log{entryLog(t, 2, []Op{Delete("b", key(1))})})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	g, _ := newHeldFSM(t, filepath.Join(t.TempDir(), "state.db"), 1<<20)
	// Pending writes of the restored node belong to the replaced state.
	g.ApplyBatch([]*raft.Log{entryLog(t, 1, []Op{Put("b", key(7), val(7))})})
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if got, want := stateOf(t, g, "b"), stateOf(t, f, "b"); got != want || got != "[k000002=v000002]" || g.applied.Load() != 2 {
		t.Fatalf("restored %s at %d, want %s at 2", got, g.applied.Load(), want)
	}
}
