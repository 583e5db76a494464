package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestClusterReplicationAndReads(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 30*time.Second)
	leader := c.leader(t)
	fs := c.followers(t)
	if len(fs) != 2 {
		t.Fatalf("want 2 followers, got %d", len(fs))
	}

	// A subscription on a follower learns about replicated writes.
	sub := fs[1].s.Subscribe("wkeys")
	defer sub.Close()

	// Proposals through the leader and through each follower.
	proposers := []*testNode{leader, fs[0], fs[1]}
	for i := range 30 {
		n := proposers[i%3]
		res, err := n.s.Propose(ctx, Put("things", key(i), val(i)))
		if err != nil {
			t.Fatalf("propose %d via %s: %v", i, n.id, err)
		}
		if !res.Applied || res.FailedOp != -1 || len(res.Ops) != 1 || res.Ops[0].Existed {
			t.Fatalf("propose %d: unexpected result %+v", i, res)
		}
		// Linearizable read on every node right after the acknowledgement.
		for _, m := range c.nodes {
			v, ok, err := m.s.Get(ctx, "things", key(i), Linearizable)
			if err != nil || !ok || !bytes.Equal(v, val(i)) {
				t.Fatalf("read %d on %s after ack via %s: found=%v err=%v", i, m.id, n.id, ok, err)
			}
		}
	}

	// put-if-absent collision returns the existing value and writes nothing
	// of the command, including its other ops (atomicity).
	res, err := fs[0].s.Propose(ctx,
		PutIfAbsent("other", []byte("fresh"), []byte("x")),
		PutIfAbsent("things", key(3), []byte("intruder")),
		Put("idem", []byte("req-1"), []byte("tok")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || res.FailedOp != 1 {
		t.Fatalf("collision: want FailedOp 1, got %+v", res)
	}
	if ex, ok := res.Existing(); !ok || !bytes.Equal(ex, val(3)) {
		t.Fatalf("collision: existing value not returned (found=%v)", ok)
	}
	for _, m := range c.nodes {
		if _, ok, err := m.s.Get(ctx, "other", []byte("fresh"), Linearizable); err != nil || ok {
			t.Fatalf("%s: failed command wrote op 0 (found=%v err=%v)", m.id, ok, err)
		}
		if _, ok, err := m.s.Get(ctx, "idem", []byte("req-1"), Linearizable); err != nil || ok {
			t.Fatalf("%s: failed command wrote op 2 (found=%v err=%v)", m.id, ok, err)
		}
		if v, _, _ := m.s.Get(ctx, "things", key(3), Linearizable); !bytes.Equal(v, val(3)) {
			t.Fatalf("%s: collision overwrote the existing value", m.id)
		}
	}

	// The tokenize shape: three ops applied together.
	res, err = fs[1].s.Propose(ctx,
		PutIfAbsent("tokens", []byte("T1"), []byte("rec")),
		PutIfAbsent("fp", []byte("H1"), []byte("T1")),
		Put("idem", []byte("R1"), []byte("T1")))
	if err != nil || !res.Applied || len(res.Ops) != 3 {
		t.Fatalf("tokenize command: res=%+v err=%v", res, err)
	}
	items, err := fs[0].s.GetMany(ctx, "fp", [][]byte{[]byte("H1"), []byte("H2")}, Linearizable)
	if err != nil || len(items) != 2 || !items[0].Found || !bytes.Equal(items[0].Value, []byte("T1")) || items[1].Found {
		t.Fatalf("GetMany: %+v err=%v", items, err)
	}

	// Compare-and-set: wrong expectation fails with the current value.
	res, err = leader.s.Propose(ctx, CompareAndSet("things", key(5), []byte("nope"), []byte("new")))
	if err != nil || res.Applied {
		t.Fatalf("CAS mismatch applied: %+v %v", res, err)
	}
	if ex, ok := res.Existing(); !ok || !bytes.Equal(ex, val(5)) {
		t.Fatal("CAS mismatch did not return the current value")
	}
	res, err = fs[0].s.Propose(ctx, CompareAndSet("things", key(5), val(5), []byte("new")))
	if err != nil || !res.Applied {
		t.Fatalf("CAS match: %+v %v", res, err)
	}
	res, err = fs[0].s.Propose(ctx, CompareAndSet("things", []byte("absent"), nil, []byte("a")))
	if err != nil || !res.Applied {
		t.Fatalf("CAS expect-absent: %+v %v", res, err)
	}

	// Delete reports existence; once acknowledged no node returns the value.
	res, err = fs[1].s.Propose(ctx, Delete("tokens", []byte("T1")))
	if err != nil || !res.Applied || !res.Ops[0].Existed {
		t.Fatalf("delete: %+v %v", res, err)
	}
	for _, m := range c.nodes {
		if _, ok, err := m.s.Get(ctx, "tokens", []byte("T1"), Linearizable); err != nil || ok {
			t.Fatalf("%s returned a deleted value (err=%v)", m.id, err)
		}
	}
	res, err = leader.s.Propose(ctx, Delete("tokens", []byte("T1")))
	if err != nil || !res.Applied || res.Ops[0].Existed {
		t.Fatalf("second delete: %+v %v", res, err)
	}

	// Invalid commands are refused before the log.
	if _, err := leader.s.Propose(ctx, Put("bad bucket", []byte("k"), nil)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("bad bucket: %v", err)
	}
	if _, err := fs[0].s.Propose(ctx); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("empty command: %v", err)
	}

	// Stale reads converge to the same state.
	c.waitConverged(t)
	for _, m := range c.nodes {
		kvs, more, err := m.s.Scan(ctx, "things", ScanOptions{Prefix: []byte("k0000"), Limit: 5, Mode: Stale})
		if err != nil || len(kvs) != 5 || !more || !bytes.Equal(kvs[0].Key, key(0)) {
			t.Fatalf("%s stale scan: n=%d more=%v err=%v", m.id, len(kvs), more, err)
		}
		kvs2, _, err := m.s.Scan(ctx, "things", ScanOptions{Prefix: []byte("k0000"), After: kvs[4].Key, Limit: 100, Mode: Stale})
		if err != nil || len(kvs2) != 25 || !bytes.Equal(kvs2[0].Key, key(5)) || !bytes.Equal(kvs2[0].Value, []byte("new")) {
			t.Fatalf("%s stale scan page 2: n=%d err=%v", m.id, len(kvs2), err)
		}
		v, ok, err := m.s.Get(ctx, "things", key(29), Stale)
		if err != nil || !ok || !bytes.Equal(v, val(29)) {
			t.Fatalf("%s stale get: %v %v", m.id, ok, err)
		}
	}

	// The watch saw the write with its key.
	if _, err := leader.s.Propose(ctx, Put("wkeys", []byte("wk1"), []byte("blob"))); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-sub.C:
		if ev.Bucket != "wkeys" || ev.Rescan || len(ev.Keys) != 1 || string(ev.Keys[0]) != "wk1" {
			t.Fatalf("unexpected event %+v", ev)
		}
		if v, ok, _ := fs[1].s.Get(ctx, "wkeys", []byte("wk1"), Stale); !ok || string(v) != "blob" {
			t.Fatal("event delivered before the write was readable")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}

	// Joining an existing member again (same id and address) is a no-op;
	// the same id at another address is a conflict.
	before, err := leader.s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []*testNode{leader, fs[0]} {
		if err := via.s.Join(ctx, fs[1].id, fs[1].s.Addr()); err != nil {
			t.Fatalf("re-join via %s: %v", via.id, err)
		}
	}
	if err := fs[0].s.Join(ctx, fs[1].id, "127.0.0.1:1"); !errors.Is(err, ErrMemberConflict) {
		t.Fatalf("join with another address: %v", err)
	}
	after, err := leader.s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 3 || len(after) != 3 {
		t.Fatalf("members before %d after %d", len(before), len(after))
	}
	st := fs[0].s.Status()
	if st.Role != "Follower" || st.LeaderID != leader.id || st.AppliedIndex == 0 || st.Term == 0 || st.CommitIndex < st.AppliedIndex {
		t.Fatalf("status: %+v", st)
	}
}

func TestGroupCommitCoalesces(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 30*time.Second)
	leader := c.leader(t)
	c.waitConverged(t)
	startIndex := leader.s.raft.LastIndex()
	startCmds := leader.s.Metrics().AppliedCommands

	const workers, perWorker = 64, 8
	errc := make(chan error, workers)
	for w := range workers {
		n := c.nodes[w%3]
		go func() {
			for i := range perWorker {
				k := w*perWorker + i
				res, err := n.s.Propose(ctx, PutIfAbsent("gc", key(k), val(k)))
				if err == nil && !res.Applied {
					err = errors.New("not applied")
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatalf("worker: %v", err)
		}
	}
	const total = workers * perWorker
	entries := leader.s.raft.LastIndex() - startIndex
	if entries == 0 || entries > total/4 {
		t.Fatalf("%d commands took %d raft entries; group commit should need far fewer", total, entries)
	}
	c.waitConverged(t)
	for _, n := range c.nodes {
		if got := n.s.Metrics().AppliedCommands - startCmds; n == leader && got != total {
			t.Fatalf("leader applied %d commands, want %d", got, total)
		}
		kvs, _, err := n.s.Scan(ctx, "gc", ScanOptions{Limit: MaxScanLimit, Mode: Stale})
		if err != nil || len(kvs) != total {
			t.Fatalf("%s holds %d keys, want %d (err %v)", n.id, len(kvs), total, err)
		}
	}
	t.Logf("group commit: %d commands in %d raft entries", total, entries)
}

func TestFollowerReadIndexCoalesces(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 30*time.Second)
	f := c.followers(t)[0]
	if _, err := c.leader(t).s.Propose(ctx, Put("r", []byte("k"), []byte("v"))); err != nil {
		t.Fatal(err)
	}
	startRounds := f.s.followerRead.rounds.Load()
	const workers, perWorker = 32, 10
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for range perWorker {
				if _, ok, err := f.s.Get(ctx, "r", []byte("k"), Linearizable); err != nil || !ok {
					errc <- errors.Join(err, errors.New("value missing"))
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	rounds := f.s.followerRead.rounds.Load() - startRounds
	if rounds == 0 || rounds > workers*perWorker/2 {
		t.Fatalf("%d reads used %d read-index round trips", workers*perWorker, rounds)
	}
	t.Logf("%d linearizable follower reads, %d read-index round trips", workers*perWorker, rounds)
}
