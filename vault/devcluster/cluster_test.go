package devcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/devcluster"
	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A node's port taken before its first start is replaced; once a node has run,
// its addresses are fixed (peers know them) and a taken port is an error that
// says so. The directory is locked while a cluster runs, and a restart with
// another node count is refused.
func TestStartPortsLockAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs panvault processes")
	}
	devclustertest.RequireSoftHSM(t)
	bin := devclustertest.BuildBinary(t)
	dir := filepath.Join(t.TempDir(), "c")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := fmt.Sprintf(`{"version":1,"next_id":1,"nodes":[{"id":"node1","api_addr":%q,"raft_addr":%q,"bootstrap":true}]}`,
		held.Addr().String(), freeAddr(t))
	if err := os.WriteFile(filepath.Join(dir, "devcluster.json"), []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := devcluster.Options{Dir: dir, Binary: bin, Log: devclustertest.Logger(t, nil), StopTimeout: 10 * time.Second}
	c, err := devcluster.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start with a taken port before the first start: %v", err)
	}
	first := c.Nodes()[0]
	if first.APIAddr == held.Addr().String() {
		t.Fatal("the taken port was kept")
	}
	if env := c.ClientEnv(); env.Addr != first.APIAddr {
		t.Fatalf("client env addr %q, node %q", env.Addr, first.APIAddr)
	}
	if _, err := devcluster.Start(ctx, opts); !errors.Is(err, devcluster.ErrLocked) {
		t.Fatalf("second orchestrator on a running dir: %v, want ErrLocked", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The node has run: its address is fixed.
	squat, err := net.Listen("tcp", first.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = devcluster.Start(ctx, opts)
	squat.Close()
	if !errors.Is(err, devcluster.ErrNodeExited) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("restart with the node's port taken: %v", err)
	}

	two := opts
	two.Nodes = 2
	if _, err := devcluster.Start(ctx, two); !errors.Is(err, devcluster.ErrMismatch) {
		t.Fatalf("restart with another node count: %v, want ErrMismatch", err)
	}

	c, err = devcluster.Start(ctx, opts)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer c.Stop()
	if got := c.Nodes()[0]; got.APIAddr != first.APIAddr || got.RaftAddr != first.RaftAddr {
		t.Fatalf("addresses changed on restart: %+v vs %+v", got, first)
	}
	cc, err := c.Dial(0, devcluster.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := pb.NewAdminServiceClient(cc).ListSchemes(ctx, &pb.ListSchemesRequest{})
	if err != nil || len(resp.GetSchemes()) != len(devcluster.DefaultSchemes()) {
		t.Fatalf("schemes after restart: %v, %v", resp.GetSchemes(), err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}
