package vault_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/audit"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestAuditAnchors: every node records the head of its audit log through
// Raft while the log grows; any node lists every node's anchors; a log
// checked against them passes, and the same log cut back to an earlier
// record, still a valid chain, fails.
func TestAuditAnchors(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: func(cfg *vault.Config) {
		cfg.AuditAnchorInterval = 100 * time.Millisecond
	}})
	c.Setup(t)
	ctx := ctxT(t)
	nd := c.Nodes[1]
	sign := func() {
		t.Helper()
		if _, err := c.Signing(t, 1).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
	for range 5 {
		sign()
	}
	listAll := func(i int, req *pb.ListAuditAnchorsRequest) []*pb.AuditAnchor {
		t.Helper()
		var out []*pb.AuditAnchor
		for {
			resp, err := c.ClusterAdmin(t, i).ListAuditAnchors(ctx, req)
			if err != nil {
				t.Fatalf("list anchors on node %d: %v", i, err)
			}
			out = append(out, resp.GetAnchors()...)
			if resp.GetNextPageToken() == "" {
				return out
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	// The anchors of node 1's log, as node 2 sees them, up to its head:
	// wait until one names the head (the calls above are all in it; the
	// listing calls add records after it).
	seq, hash := nd.Audit.Head()
	chain := nd.Audit.Chain()
	var mine []*pb.AuditAnchor
	waitFor(t, "an anchor of node 1's head", func() bool {
		mine = listAll(2, &pb.ListAuditAnchorsRequest{Chain: chain})
		for _, a := range mine {
			if a.GetSeq() >= seq {
				return true
			}
		}
		return false
	})
	var anchors []audit.Anchor
	for i, a := range mine {
		if a.GetChain() != chain || a.GetNodeId() != nd.ID || a.GetRecordedAt().AsTime().IsZero() {
			t.Fatalf("anchor %d: %+v, want chain %s of %s", i, a, chain, nd.ID)
		}
		if i > 0 && a.GetSeq() <= mine[i-1].GetSeq() {
			t.Fatalf("anchors not in seq order: %d after %d", a.GetSeq(), mine[i-1].GetSeq())
		}
		if a.GetSeq() == seq && a.GetHash() != hash {
			t.Fatalf("anchor of seq %d has hash %s, the log's head %s", seq, a.GetHash(), hash)
		}
		anchors = append(anchors, audit.Anchor{Seq: a.GetSeq(), Hash: a.GetHash()})
	}

	raw, err := os.ReadFile(nd.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := audit.Verify(strings.NewReader(string(raw)), anchors...); err != nil {
		t.Fatalf("node 1's log against its anchors: %+v, %v", sum, err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	last := anchors[len(anchors)-1].Seq
	cut := strings.Join(lines[:last-1], "")
	if _, err := audit.Verify(strings.NewReader(cut)); err != nil {
		t.Fatalf("the cut log is a valid chain: %v", err)
	}
	if _, err := audit.Verify(strings.NewReader(cut), anchors...); !errors.Is(err, audit.ErrCutOff) {
		t.Fatalf("the cut log against the anchors: %v, want ErrCutOff", err)
	}

	// Every node anchors its own log; filters and pages.
	all := listAll(0, &pb.ListAuditAnchorsRequest{})
	nodes := map[string]bool{}
	for _, a := range all {
		nodes[a.GetNodeId()] = true
	}
	if !nodes[nd.ID] {
		t.Fatalf("anchors of all chains lack %s: %v", nd.ID, nodes)
	}
	byNode := listAll(0, &pb.ListAuditAnchorsRequest{NodeId: nd.ID, PageSize: 1})
	if len(byNode) < len(mine) {
		t.Fatalf("%d anchors of %s by node, one per page; %d of its chain", len(byNode), nd.ID, len(mine))
	}
	for _, a := range byNode {
		if a.GetNodeId() != nd.ID {
			t.Fatalf("node filter returned an anchor of %s", a.GetNodeId())
		}
	}

	// Anchors are only added: later ones join the earlier ones.
	for range 3 {
		sign()
	}
	grown, _ := nd.Audit.Head()
	waitFor(t, "a later anchor", func() bool {
		later := listAll(1, &pb.ListAuditAnchorsRequest{Chain: chain})
		return len(later) > len(mine) && later[len(later)-1].GetSeq() >= grown && later[0].GetSeq() == mine[0].GetSeq()
	})

	if v, ok := gatherValue(t, nd.Vault, "panvault_audit_total", "counter", "anchors"); !ok || v < 2 {
		t.Fatalf("panvault_audit_total{counter=anchors} = %v (present %v), want at least the 2 anchors listed", v, ok)
	}
	if _, ok := gatherValue(t, nd.Vault, "panvault_audit_total", "counter", "anchor_failures"); !ok {
		t.Fatal("panvault_audit_total{counter=anchor_failures} missing")
	}

	_, err = c.ClusterAdmin(t, 0).ListAuditAnchors(ctx, &pb.ListAuditAnchorsRequest{Chain: "abc"})
	if codeOf(err) != codes.InvalidArgument || len(violations(err)) != 1 || violations(err)[0].GetField() != "chain" {
		t.Fatalf("a malformed chain: %v", err)
	}
	_, err = pb.NewClusterServiceClient(c.ClientConn(t, 0)).ListAuditAnchors(ctx, &pb.ListAuditAnchorsRequest{})
	wantCode(t, err, codes.PermissionDenied, "anchors listed by a client identity")
}

// An anchor already under the node's chain and next seq with another hash
// (written by something other than this log) is not taken for the node's
// own: the proposal is reported as failed, and the planted anchor makes the
// log fail verification, which is what an auditor must see.
func TestAuditAnchorConflictIsAnError(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	nd := c.Nodes[0]
	if _, err := c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if seq, err := vault.AnchorAudit(ctx, nd.Vault); err != nil || seq == 0 {
		t.Fatalf("anchor: seq %d, %v", seq, err)
	}
	if seq, err := vault.AnchorAudit(ctx, nd.Vault); err != nil {
		t.Fatalf("the same anchor again (a retry): seq %d, %v", seq, err)
	}
	if _, err := c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	seq, _ := nd.Audit.Head()
	if err := vault.PlantAnchor(ctx, c.Nodes[1].Vault, nd.Audit.Chain(), seq, make([]byte, 32), c.Nodes[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AnchorAudit(ctx, nd.Vault); err == nil || !strings.Contains(err.Error(), "already exists with another hash") {
		t.Fatalf("anchor over a planted one: %v, want an error", err)
	}
	resp, err := c.ClusterAdmin(t, 0).ListAuditAnchors(ctx, &pb.ListAuditAnchorsRequest{Chain: nd.Audit.Chain()})
	if err != nil {
		t.Fatal(err)
	}
	var anchors []audit.Anchor
	for _, a := range resp.GetAnchors() {
		anchors = append(anchors, audit.Anchor{Seq: a.GetSeq(), Hash: a.GetHash()})
	}
	raw, err := os.ReadFile(nd.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(strings.NewReader(string(raw)), anchors...); !errors.Is(err, audit.ErrCorrupt) {
		t.Fatalf("the log against a planted anchor: %v, want ErrCorrupt", err)
	}
}
