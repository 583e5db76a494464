package devcluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

// Only the last run's section of a node's log counts: an address taken in
// an earlier run is not picked again because of it.
func TestTakenAddrsReadsTheLastRun(t *testing.T) {
	log := filepath.Join(t.TempDir(), "node.log")
	body := "\n" + startMarker + " node3 at T1\n" +
		`{"err":"listen metrics_addr 127.0.0.1:41521: listen tcp 127.0.0.1:41521: bind: address already in use"}` + "\n" +
		"\n" + startMarker + " node3 at T2\n" +
		`{"err":"raft store: listen tcp 127.0.0.1:20001: bind: address already in use"}` + "\n" +
		`{"err":"join via 127.0.0.1:36863: member conflict"}` + "\n"
	if err := os.WriteFile(log, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got := takenAddrs(log)
	if len(got) != 1 || !got["127.0.0.1:20001"] {
		t.Fatalf("taken %v, want only 127.0.0.1:20001", got)
	}
	if got := takenAddrs(filepath.Join(t.TempDir(), "missing.log")); len(got) != 0 {
		t.Fatalf("missing log: %v", got)
	}
}

// Ports are picked below the kernel's ephemeral range, which outgoing
// connections and ":0" listeners draw from.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	lo, hi := explicitPortRange()
	if lo < 10000 {
		t.Fatalf("range [%d, %d) reaches below 10000", lo, hi)
	}
	if hi <= lo {
		// The ephemeral range starts at or below 10000: nothing to pick
		// below it; freePort falls back to a kernel-chosen port.
		if _, err := freePort(nil); err != nil {
			t.Fatal(err)
		}
		t.Skipf("ephemeral range starts at %d: no explicit range to check", hi)
	}
	inUse := map[string]bool{}
	for range 20 {
		a, err := freePort(inUse)
		if err != nil {
			t.Fatal(err)
		}
		_, ps, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(ps)
		if err != nil || p < lo || p >= hi {
			t.Fatalf("port %s outside [%d, %d)", ps, lo, hi)
		}
		if inUse[a] {
			t.Fatalf("port %s picked twice: addresses in use are skipped", ps)
		}
		inUse[a] = true
	}
}

// A port of a joining node taken before its first start (here its metrics
// port, as happened in CI) is replaced, and the node joins at the addresses
// it serves: the server binds every port before it joins, so the failed run
// left no member behind at the old address.
func TestTakenPortOfJoiningNodeIsReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs panvault processes")
	}
	devclustertest.RequireSoftHSM(t)
	opts := Options{
		Dir:           filepath.Join(t.TempDir(), "c"),
		Binary:        devclustertest.BuildBinary(t),
		Log:           devclustertest.Logger(t, nil),
		StopTimeout:   10 * time.Second,
		SkipProvision: true,
	}
	if err := opts.normalize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: opts, lock: lock, procs: map[string]*proc{}}
	defer c.Stop()
	if err := c.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	squatted := c.metricsAddrs["node3"]
	squat, err := net.Listen("tcp", squatted)
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	if err := c.startAll(ctx); err != nil {
		t.Fatalf("start with node3's metrics port taken: %v", err)
	}
	nodes := c.Nodes()
	if nodes[2].MetricsAddr == squatted {
		t.Fatal("the taken metrics port was kept")
	}
	cc, err := c.Dial(0, Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := pb.NewClusterServiceClient(cc).Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNodes()) != 3 {
		t.Fatalf("members %v, want 3", st.GetNodes())
	}
	for i, m := range st.GetNodes() {
		if m.GetId() != nodes[i].ID || m.GetRaftAddress() != nodes[i].RaftAddr {
			t.Fatalf("member %d is %s at %s, want %s at %s", i, m.GetId(), m.GetRaftAddress(), nodes[i].ID, nodes[i].RaftAddr)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}
