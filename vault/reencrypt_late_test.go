package vault_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/vault/card"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// lateToken returns a token of scheme DevSchemeVaulted for pan that sorts
// before every random token of the same leading digits (middle 00000x) and
// fails Luhn as the scheme wants.
func lateToken(t *testing.T, pan string) string {
	t.Helper()
	for m := 0; m < 10; m++ {
		tok := pan[:6] + "00000" + string(rune('0'+m)) + pan[12:]
		if !card.Luhn(tok) {
			return tok
		}
	}
	t.Fatal("no luhn-failing token")
	return ""
}

// TestReencryptLateRecords: a record sealed under the old version that
// commits behind the job's cursor (a tokenization planned with a cached
// version, landing late) is still re-encrypted before the job says done;
// one that lands after the job is done makes the retirement of the old
// version refused until the job runs again.
func TestReencryptLateRecords(t *testing.T) {
	c, cs := ceremonyCluster(t, func(cfg *vault.Config) {
		fastJobs(cfg)
		cfg.ReencryptRate = 10
		cfg.ReencryptBatch = 1
	})
	ctx := ctxT(t)
	req := &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted}
	for k := range 30 {
		req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: testPAN(t, "411111", 16, k)})
	}
	if _, err := c.Tokens(t, 0).TokenizeBatch(ctx, req); err != nil {
		t.Fatal(err)
	}
	latePAN := testPAN(t, "411111", 16, 500)
	late := lateToken(t, latePAN)
	via := c.LeaderIndex(t)
	runCeremony(ctx, t, c, via, rotate(vault.DevKeyPAN), cs[0], cs[1])
	cer := c.Ceremonies(t, via)
	waitFor(t, "job past its first records", func() bool {
		r, err := cer.GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: vault.DevKeyPAN})
		return err == nil && r.GetStatus().GetDone() >= 3
	})
	if err := vault.PlantRecord(ctx, c.Nodes[via].Vault, vault.DevSchemeVaulted, late, latePAN, 1); err != nil {
		t.Fatalf("plant: %v", err)
	}
	r, err := cer.GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: vault.DevKeyPAN})
	if err != nil || r.GetStatus().GetState() == pb.ReencryptState_REENCRYPT_STATE_DONE {
		t.Fatalf("job done before the late record landed (the test needs it running): %v %v", r.GetStatus(), err)
	}
	waitReencrypted(ctx, t, c, via, vault.DevKeyPAN, 2)
	for i, nd := range c.Nodes {
		waitFor(t, "node applied the job", func() bool {
			left, err := vault.RecordsBelow(ctx, nd.Vault, vault.DevKeyPAN, 2)
			if err != nil {
				t.Fatal(err)
			}
			return left == 0
		})
		d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: late})
		if err != nil || d.GetPan() != latePAN {
			t.Fatalf("late record on node %d: %v", i, err)
		}
	}

	// After the job: retiring v1 is refused while a v1 record exists.
	late2PAN := testPAN(t, "411111", 16, 501)
	late2 := lateToken(t, late2PAN)
	if late2 == late {
		late2PAN = testPAN(t, "411111", 16, 502)
		late2 = lateToken(t, late2PAN)
	}
	if err := vault.PlantRecord(ctx, c.Nodes[via].Vault, vault.DevSchemeVaulted, late2, late2PAN, 1); err != nil {
		t.Fatalf("plant: %v", err)
	}
	_, err = c.Ceremonies(t, via).Propose(ctx, &pb.ProposeRequest{Params: setMin(vault.DevKeyPAN, 2)})
	if codeOf(err) != codes.FailedPrecondition || reason(err) != "REENCRYPT_PENDING" {
		t.Fatalf("retire v1 with a v1 record left: %v", err)
	}
	if _, err := c.Ceremonies(t, via).StartReencrypt(ctx, &pb.StartReencryptRequest{Key: vault.DevKeyPAN}); err != nil {
		t.Fatalf("run the job again: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := vault.RecordsBelow(ctx, c.Nodes[via].Vault, vault.DevKeyPAN, 2)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records below v2 after the job ran again", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReencrypted(ctx, t, c, via, vault.DevKeyPAN, 2)
	runCeremony(ctx, t, c, via, setMin(vault.DevKeyPAN, 2), cs[0], cs[1])
	d, err := c.Tokens(t, 0).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: late2})
	if err != nil || d.GetPan() != late2PAN {
		t.Fatalf("second late record after retirement: %v", err)
	}
}
