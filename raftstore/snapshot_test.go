package raftstore

import (
	"bytes"
	"testing"
	"time"
)

func TestSnapshotInstallAndRestart(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{tweak: func(cfg *Config) {
		cfg.TrailingLogs = 5
		cfg.SnapshotThreshold = 1 << 20 // only forced snapshots
	}})
	ctx := ctxT(t, 60*time.Second)
	leader := c.leader(t)

	const n = 200
	batch := make([][]Op, n)
	for i := range n {
		batch[i] = []Op{Put("snap", key(i), val(i))}
	}
	if _, errs := leader.s.ProposeBatch(ctx, batch); errs[0] != nil || errs[n-1] != nil {
		t.Fatalf("writes: %v %v", errs[0], errs[n-1])
	}
	// Enough separate entries that the log is compacted past them.
	for i := range 20 {
		if _, err := leader.s.Propose(ctx, Put("snap", []byte("seq"), val(i))); err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(t)
	for _, nd := range c.nodes {
		if err := nd.s.Snapshot(); err != nil {
			t.Fatalf("%s snapshot: %v", nd.id, err)
		}
	}
	if st := leader.s.Status(); st.LastSnapshotIndex == 0 {
		t.Fatalf("no snapshot recorded: %+v", st)
	}

	// A fourth node can only catch up through InstallSnapshot.
	n4 := startNode(t, c.ca, "n4", c.o)
	c.nodes = append(c.nodes, n4)
	if err := n4.s.RequestJoin(ctx, c.followers(t)[0].s.Addr()); err != nil {
		t.Fatalf("join n4: %v", err)
	}
	c.waitConverged(t)
	if got := n4.s.Metrics().Restores; got == 0 {
		t.Fatal("n4 caught up without restoring a snapshot")
	}
	assertSameState(t, leader, n4, "snap")
	// And it keeps applying new writes after the restore.
	if _, err := n4.s.Propose(ctx, Put("snap", []byte("after"), []byte("restore"))); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := n4.s.Get(ctx, "snap", []byte("after"), Linearizable); err != nil || !ok || string(v) != "restore" {
		t.Fatalf("n4 read after restore: %v %v", ok, err)
	}

	// Restart a follower from its data directory: it keeps its state, does
	// not reload the older snapshot over it, and rejoins replication.
	f := c.followers(t)[0]
	c.waitConverged(t)
	appliedBefore := f.s.AppliedIndex()
	f.restart(t)
	if got := f.s.AppliedIndex(); got < appliedBefore {
		t.Fatalf("restart lost applied index: %d < %d", got, appliedBefore)
	}
	if got := f.s.Metrics().Restores; got != 0 {
		t.Fatalf("restart restored a snapshot over a newer state db (%d)", got)
	}
	if v, ok, err := f.s.Get(ctx, "snap", key(7), Stale); err != nil || !ok || !bytes.Equal(v, val(7)) {
		t.Fatalf("restarted node lost data: %v %v", ok, err)
	}
	if _, _, err := f.s.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.leader(t).s.Propose(ctx, Put("snap", []byte("post-restart"), []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.s.Get(ctx, "snap", []byte("post-restart"), Linearizable); err != nil || !ok {
		t.Fatalf("restarted node missed a new write: %v %v", ok, err)
	}
	assertSameState(t, c.leader(t), f, "snap")
}

func assertSameState(t *testing.T, a, b *testNode, bucket string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	ka, _, err := a.s.Scan(ctx, bucket, ScanOptions{Limit: MaxScanLimit, Mode: Linearizable})
	if err != nil {
		t.Fatal(err)
	}
	kb, _, err := b.s.Scan(ctx, bucket, ScanOptions{Limit: MaxScanLimit, Mode: Linearizable})
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != len(kb) {
		t.Fatalf("%s has %d keys, %s has %d", a.id, len(ka), b.id, len(kb))
	}
	for i := range ka {
		if !bytes.Equal(ka[i].Key, kb[i].Key) || !bytes.Equal(ka[i].Value, kb[i].Value) {
			t.Fatalf("%s and %s differ at entry %d", a.id, b.id, i)
		}
	}
}
