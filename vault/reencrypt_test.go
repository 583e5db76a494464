package vault_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// TestReencryptLeaderKilled stops the leader in the middle of a
// rate-limited re-encryption job: the next leader carries the job on from
// the committed cursor, it finishes, every record ends at the new version
// and no record is lost (each token still detokenizes to its PAN, on every
// node, the old leader too once it is back). Tokens deleted while the job
// runs stay deleted.
func TestReencryptLeaderKilled(t *testing.T) {
	c, cs := ceremonyCluster(t, func(cfg *vault.Config) {
		fastJobs(cfg)
		cfg.ReencryptRate = 300
		cfg.ReencryptBatch = 16
	})
	ctx := ctxT(t)
	const n = 600
	pans := map[string]string{}
	for b := range 3 {
		req := &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted}
		for k := range n / 3 {
			req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: testPAN(t, "400000", 16, b*1000+k)})
		}
		r, err := c.Tokens(t, b).TokenizeBatch(ctx, req)
		if err != nil {
			t.Fatalf("tokenize: %v", err)
		}
		for k, res := range r.GetResults() {
			if res.GetSuccess() == nil {
				t.Fatalf("tokenize item %d: %v", k, res.GetError())
			}
			pans[res.GetSuccess().GetToken()] = req.Items[k].GetPan()
		}
	}

	leader := c.LeaderIndex(t)
	via := (leader + 1) % 3
	runCeremony(ctx, t, c, via, rotate(vault.DevKeyPAN), cs[0], cs[1])

	// Delete a few tokens while the job runs.
	var deleted []string
	for tk := range pans {
		if len(deleted) == 5 {
			break
		}
		if _, err := c.Tokens(t, via).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: tk}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		deleted = append(deleted, tk)
	}

	// Wait until the job is under way, then stop the leader.
	cer := c.Ceremonies(t, via)
	waitFor(t, "re-encryption under way", func() bool {
		r, err := cer.GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: vault.DevKeyPAN})
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if r.GetStatus().GetState() == pb.ReencryptState_REENCRYPT_STATE_DONE {
			t.Fatalf("re-encryption finished before the leader could be stopped: %v", r.GetStatus())
		}
		return r.GetStatus().GetDone() >= 64
	})
	c.StopNode(t, leader)
	before, err := cer.GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: vault.DevKeyPAN})
	if err != nil {
		t.Fatalf("status after stopping the leader: %v", err)
	}
	st := waitReencrypted(ctx, t, c, via, vault.DevKeyPAN, 2)
	t.Logf("stopped leader n%d at %d visited; final %v", leader, before.GetStatus().GetDone(), st)
	if st.GetDone() < n-uint64(len(deleted)) || st.GetReencrypted() > n || st.GetTotal() < st.GetDone() {
		t.Fatalf("final job status: %v", st)
	}
	if c.LeaderIndex(t) == leader {
		t.Fatalf("stopped node is leader")
	}

	check := func(node int) {
		t.Helper()
		gone := map[string]bool{}
		for _, tk := range deleted {
			gone[tk] = true
		}
		req := &pb.DetokenizeBatchRequest{Scheme: vault.DevSchemeVaulted}
		var order []string
		for tk := range pans {
			order = append(order, tk)
			req.Items = append(req.Items, &pb.DetokenizeBatchItem{Token: tk})
		}
		r, err := c.Tokens(t, node).DetokenizeBatch(ctx, req)
		if err != nil {
			t.Fatalf("detokenize on n%d: %v", node, err)
		}
		for k, res := range r.GetResults() {
			tk := order[k]
			if gone[tk] {
				if e := res.GetError(); e == nil || codes.Code(e.GetCode()) != codes.NotFound {
					t.Fatalf("n%d: deleted token came back", node)
				}
				continue
			}
			s := res.GetSuccess()
			if s == nil || s.GetPan() != pans[tk] || s.GetKeyVersion() != 2 {
				t.Fatalf("n%d: token %d: version %d, right pan %v, err %v", node, k, s.GetKeyVersion(), s.GetPan() == pans[tk], res.GetError())
			}
		}
	}
	for i := range c.Nodes {
		if i != leader {
			check(i)
		}
	}
	c.RestartNode(t, leader)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := c.Admin(t, leader).GetKey(ctx, &pb.GetKeyRequest{Name: vault.DevKeyPAN})
		if err == nil && r.GetKey().GetLatestVersion() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node does not see version 2: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check(leader)
}
