package vault_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

func changeSchemeKey(sc, key string) *pb.CeremonyParams {
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeSchemeKey{ChangeSchemeKey: &pb.ChangeSchemeKeyParams{Scheme: sc, Key: key}}}
}

func createGCMKey(name string) *pb.CeremonyParams {
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_CreateKey{CreateKey: &pb.CreateKeyParams{
		Name: name, Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION}}}
}

// tokenizeSeq tokenizes n PANs (seq first..first+n-1) through node i and
// returns token -> PAN.
func tokenizeSeq(ctx context.Context, t *testing.T, c *vaulttest.Cluster, i int, sc string, first, n int) map[string]string {
	t.Helper()
	req := &pb.TokenizeBatchRequest{Scheme: sc}
	pans := make([]string, n)
	for k := range n {
		pans[k] = testPAN(t, "535310", 16, first+k)
		req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: pans[k]})
	}
	r, err := c.Tokens(t, i).TokenizeBatch(ctx, req)
	if err != nil {
		t.Fatalf("tokenize batch on n%d: %v", i, err)
	}
	out := make(map[string]string, n)
	for k, res := range r.GetResults() {
		if res.GetError() != nil {
			t.Fatalf("tokenize item %d on n%d: %v", k, i, res.GetError())
		}
		out[res.GetSuccess().GetToken()] = pans[k]
	}
	return out
}

// detokenizeAllNodes detokenizes every token of toks on every node and
// checks the PAN.
func detokenizeAllNodes(ctx context.Context, t *testing.T, c *vaulttest.Cluster, sc string, toks map[string]string) {
	t.Helper()
	for i := range c.Nodes {
		for tk, pan := range toks {
			d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: sc, Token: tk})
			if err != nil {
				t.Fatalf("n%d: detokenize %s: %v", i, masked(tk), err)
			}
			if d.GetPan() != pan {
				t.Fatalf("n%d: detokenize %s: pan %s, want %s", i, masked(tk), masked(d.GetPan()), masked(pan))
			}
		}
	}
}

// TestChangeSchemeKey moves a vaulted scheme to another key by a 2-of-3
// ceremony on a 3-node cluster: every node seals new tokens under the new
// key, old tokens keep detokenizing, the old key's re-encryption job moves
// their records to the new key, and then the old key's versions can be
// retired and destroyed with every token still detokenizing. FF1 schemes,
// keys of another purpose and the scheme's own key are refused at proposal.
func TestChangeSchemeKey(t *testing.T) {
	c, cs := ceremonyCluster(t, fastJobs)
	ctx := ctxT(t)
	alice, bob, carol := cs[0], cs[1], cs[2]

	runCeremony(ctx, t, c, 0, createGCMKey("move-a"), alice, bob)
	runCeremony(ctx, t, c, 1, createGCMKey("move-b"), bob, carol)
	if _, err := c.Admin(t, 1).CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: &pb.Scheme{Name: "moving", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED,
		KeepLeading: 6, KeepTrailing: 4, Key: "move-a"}}); err != nil {
		t.Fatalf("create scheme: %v", err)
	}
	before := tokenizeSeq(ctx, t, c, 1, "moving", 0, 24)

	// Refused before any custodian is asked.
	for _, bad := range []struct {
		params *pb.CeremonyParams
		code   codes.Code
		why    string
	}{
		{changeSchemeKey(vault.DevSchemeFF1, vault.DevKeyFF1), codes.FailedPrecondition, "ff1 scheme"},
		{changeSchemeKey("moving", vault.DevKeyFingerprint), codes.FailedPrecondition, "fingerprint key"},
		{changeSchemeKey("moving", "move-a"), codes.AlreadyExists, "its own key"},
		{changeSchemeKey("moving", "no-such-key"), codes.NotFound, "unknown key"},
		{changeSchemeKey("no-such-scheme", "move-b"), codes.NotFound, "unknown scheme"},
	} {
		_, err := c.Ceremonies(t, 0).Propose(ctx, &pb.ProposeRequest{Params: bad.params})
		wantCode(t, err, bad.code, "change-scheme-key to "+bad.why)
	}

	out := runCeremony(ctx, t, c, 2, changeSchemeKey("moving", "move-b"), carol, alice)
	t.Logf("change: %s", out.GetOutcome())

	// Every node's scheme cache follows the change.
	deadline := time.Now().Add(10 * time.Second)
	for i := range c.Nodes {
		for {
			s, err := c.Admin(t, i).GetScheme(ctx, &pb.GetSchemeRequest{Name: "moving"})
			if err != nil {
				t.Fatalf("n%d: get scheme: %v", i, err)
			}
			if s.GetScheme().GetKey() == "move-b" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("n%d: scheme still names key %q", i, s.GetScheme().GetKey())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	after := make(map[string]string)
	for i := range c.Nodes {
		for tk, pan := range tokenizeSeq(ctx, t, c, i, "moving", 1000+100*i, 8) {
			after[tk] = pan
		}
	}
	detokenizeAllNodes(ctx, t, c, "moving", before)
	detokenizeAllNodes(ctx, t, c, "moving", after)

	// The new tokens are sealed under move-b: move-a's re-encryption job
	// moves exactly the records made before the change.
	if _, err := c.Ceremonies(t, 0).StartReencrypt(ctx, &pb.StartReencryptRequest{Key: "move-a"}); err != nil {
		t.Fatalf("start re-encryption of move-a: %v", err)
	}
	st := waitReencrypted(ctx, t, c, 0, "move-a", 1)
	if st.GetReencrypted() != uint64(len(before)) {
		t.Fatalf("move-a job re-encrypted %d records, want %d (the tokens made before the change): %v", st.GetReencrypted(), len(before), st)
	}

	// move-a is no longer needed by any record: rotate it, retire and
	// destroy version 1, and every token still detokenizes.
	runCeremony(ctx, t, c, 0, rotate("move-a"), alice, bob)
	waitReencrypted(ctx, t, c, 1, "move-a", 2)
	runCeremony(ctx, t, c, 1, setMin("move-a", 2), bob, carol)
	runCeremony(ctx, t, c, 2, destroy("move-a", 1), carol, alice)
	detokenizeAllNodes(ctx, t, c, "moving", before)
	detokenizeAllNodes(ctx, t, c, "moving", after)

	// move-b's own job visits every record of the scheme and finds each
	// already at its only version: the moved records are sealed under it.
	if _, err := c.Ceremonies(t, 2).StartReencrypt(ctx, &pb.StartReencryptRequest{Key: "move-b"}); err != nil {
		t.Fatalf("start re-encryption of move-b: %v", err)
	}
	st = waitReencrypted(ctx, t, c, 2, "move-b", 1)
	if st.GetReencrypted() != 0 || st.GetDone() != uint64(len(before)+len(after)) {
		t.Fatalf("move-b job: re-encrypted %d done %d, want 0 and %d", st.GetReencrypted(), st.GetDone(), len(before)+len(after))
	}
}
