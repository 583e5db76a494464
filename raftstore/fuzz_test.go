package raftstore

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzApplyEntry feeds arbitrary log payloads to the state machine: it must
// never panic, must answer every entry, and must either apply the entry or
// stop through the fatal hook, never half-apply it.
func FuzzApplyEntry(f *testing.F) {
	seed := func(cmds ...*raftpb.Command) []byte {
		b, _ := proto.Marshal(&raftpb.Entry{Version: entryVersion, Commands: cmds})
		return b
	}
	f.Add(seed(commandToProto([]Op{PutIfAbsent("tokens", []byte("T"), []byte("rec")), PutIfAbsent("fp", []byte("H"), []byte("T"))})))
	f.Add(seed(commandToProto([]Op{CompareAndSet("b", []byte("k"), nil, []byte("v")), Delete("b", []byte("k"))})))
	f.Add(seed(&raftpb.Command{Ops: []*raftpb.Op{{Type: 42, Bucket: "b", Key: []byte("k")}}}))
	v2, _ := proto.Marshal(&raftpb.Entry{Version: 2})
	f.Add(v2)
	f.Add([]byte{})
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		path := filepath.Join(dir, "state"+strconv.Itoa(n)+".db")
		t.Cleanup(func() { _ = os.Remove(path) })
		st, rec := newTestFSM(t, path)
		resp := st.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: data}})
		if len(resp) != 1 {
			t.Fatalf("%d responses", len(resp))
		}
		switch r := resp[0].(type) {
		case []*raftpb.Result:
			if rec.count() != 0 || st.applied.Load() != 1 {
				t.Fatal("applied and stopped at once")
			}
			var e raftpb.Entry
			if err := proto.Unmarshal(data, &e); err != nil || len(r) != len(e.GetCommands()) {
				t.Fatalf("%d results for %d commands", len(r), len(e.GetCommands()))
			}
		case error:
			if r != ErrStopped || rec.count() != 1 || st.applied.Load() != 0 {
				t.Fatalf("error %v with %d fatal calls, applied %d", r, rec.count(), st.applied.Load())
			}
		default:
			t.Fatalf("response %T", r)
		}
	})
}
