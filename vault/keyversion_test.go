package vault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// fastJobs makes the background jobs of a test cluster quick: sweeps every
// 50 ms, no re-encryption grace (the tests do not tokenize while a
// rotation commits unless they say so).
func fastJobs(cfg *vault.Config) {
	cfg.JobInterval = 50 * time.Millisecond
	cfg.ReencryptGrace = -1
	cfg.ReencryptBatch = 16
	cfg.CryptoperiodCheck = 50 * time.Millisecond
}

// ceremonyCluster starts 3 nodes with the dev keys and schemes and the dev
// custodians (quorum 2).
func ceremonyCluster(t *testing.T, tune func(*vault.Config)) (*vaulttest.Cluster, []*vaulttest.Custodian) {
	t.Helper()
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: tune})
	c.Setup(t)
	return c, c.InitCustodians(t)
}

// runCeremony proposes params through node via (as the admin) and has
// custodians approvers approve it through other nodes; it returns the final
// ceremony, which must be executed.
func runCeremony(ctx context.Context, t *testing.T, c *vaulttest.Cluster, via int, params *pb.CeremonyParams, approvers ...*vaulttest.Custodian) *pb.Ceremony {
	t.Helper()
	p, err := c.Ceremonies(t, via).Propose(ctx, &pb.ProposeRequest{Params: params})
	if err != nil {
		t.Fatalf("propose %v: %v", params, err)
	}
	id := p.GetCeremony().GetId()
	if p.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		t.Fatalf("new ceremony %s is %v", id, p.GetCeremony().GetStatus())
	}
	var last *pb.ApproveResponse
	for k, cu := range approvers {
		last, err = cu.Approve(ctx, t, c.ClientCeremonies(t, (via+1+k)%len(c.Nodes)), id)
		if err != nil {
			t.Fatalf("approval %d of %s by %s: %v", k+1, id, cu.Name, err)
		}
		if k < len(approvers)-1 && last.GetExecuted() {
			t.Fatalf("ceremony %s executed after %d approvals", id, k+1)
		}
	}
	if !last.GetExecuted() || last.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED {
		t.Fatalf("ceremony %s after %d approvals: executed=%v status %v outcome %q", id, len(approvers),
			last.GetExecuted(), last.GetCeremony().GetStatus(), last.GetCeremony().GetOutcome())
	}
	return last.GetCeremony()
}

func rotate(name string) *pb.CeremonyParams {
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateKey{RotateKey: &pb.RotateKeyParams{Name: name}}}
}

func setMin(name string, v uint32) *pb.CeremonyParams {
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_SetMinDecryptionVersion{
		SetMinDecryptionVersion: &pb.SetMinDecryptionVersionParams{Name: name, Version: v}}}
}

func destroy(name string, v uint32) *pb.CeremonyParams {
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_DestroyVersion{DestroyVersion: &pb.DestroyVersionParams{Name: name, Version: v}}}
}

// versionStates returns the states of key name's versions, oldest first.
func versionStates(ctx context.Context, t *testing.T, c *vaulttest.Cluster, i int, name string) (*pb.KeyInfo, []pb.KeyState) {
	t.Helper()
	k, err := c.Admin(t, i).GetKey(ctx, &pb.GetKeyRequest{Name: name})
	if err != nil {
		t.Fatalf("get key %s: %v", name, err)
	}
	var out []pb.KeyState
	for _, v := range k.GetKey().GetVersions() {
		out = append(out, v.GetState())
	}
	return k.GetKey(), out
}

// waitReencrypted polls key's re-encryption job until it is done.
func waitReencrypted(ctx context.Context, t *testing.T, c *vaulttest.Cluster, i int, key string, target uint32) *pb.ReencryptStatus {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		r, err := c.Ceremonies(t, i).GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: key})
		if err == nil && r.GetStatus().GetState() == pb.ReencryptState_REENCRYPT_STATE_DONE && r.GetStatus().GetTargetVersion() == target {
			return r.GetStatus()
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-encryption of %s to v%d not done: %v %v", key, target, r.GetStatus(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyLifecycle walks a key through its life with 2-of-3 ceremonies on a
// 3-node cluster: create (ceremony), tokenize, rotate, tokenize, re-encrypt,
// raise the minimum decryption version, destroy the old version. Vaulted
// tokens keep working throughout (their records are re-encrypted); FF1
// tokens of the destroyed version fail with FAILED_PRECONDITION
// KEY_VERSION_DESTROYED, after KEY_VERSION_RETIRED once retired.
func TestKeyLifecycle(t *testing.T) {
	c, cs := ceremonyCluster(t, fastJobs)
	ctx := ctxT(t)
	alice, bob, carol := cs[0], cs[1], cs[2]

	// Create a key by ceremony, then a scheme on it.
	runCeremony(ctx, t, c, 0, &pb.CeremonyParams{Params: &pb.CeremonyParams_CreateKey{CreateKey: &pb.CreateKeyParams{
		Name: "life-gcm", Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION,
		Cryptoperiod: durationpb.New(90 * 24 * time.Hour)}}}, alice, bob)
	info, states := versionStates(ctx, t, c, 2, "life-gcm")
	if len(states) != 1 || states[0] != pb.KeyState_KEY_STATE_ACTIVE || info.GetCryptoperiod().AsDuration() != 90*24*time.Hour {
		t.Fatalf("created key: %v", info)
	}
	if _, err := c.Admin(t, 1).CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: &pb.Scheme{Name: "life", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED,
		KeepLeading: 6, KeepTrailing: 4, Key: "life-gcm"}}); err != nil {
		t.Fatalf("create scheme: %v", err)
	}

	tok := c.Tokens(t, 1)
	tokenizeAll := func(first, n int) map[string]string {
		req := &pb.TokenizeBatchRequest{Scheme: "life"}
		pans := make([]string, n)
		for k := range n {
			pans[k] = testPAN(t, "535310", 16, first+k)
			req.Items = append(req.Items, &pb.TokenizeBatchItem{Pan: pans[k]})
		}
		r, err := tok.TokenizeBatch(ctx, req)
		if err != nil {
			t.Fatalf("tokenize batch: %v", err)
		}
		out := make(map[string]string, n)
		for k, res := range r.GetResults() {
			if res.GetError() != nil {
				t.Fatalf("tokenize item %d: %v", k, res.GetError())
			}
			out[res.GetSuccess().GetToken()] = pans[k]
		}
		return out
	}
	checkAll := func(node int, toks map[string]string, wantVersion uint32) {
		t.Helper()
		req := &pb.DetokenizeBatchRequest{Scheme: "life"}
		var order []string
		for tk := range toks {
			order = append(order, tk)
			req.Items = append(req.Items, &pb.DetokenizeBatchItem{Token: tk})
		}
		r, err := c.Tokens(t, node).DetokenizeBatch(ctx, req)
		if err != nil {
			t.Fatalf("detokenize batch on n%d: %v", node, err)
		}
		for k, res := range r.GetResults() {
			s := res.GetSuccess()
			if s == nil {
				t.Fatalf("detokenize item %d on n%d: %v", k, node, res.GetError())
			}
			if s.GetPan() != toks[order[k]] {
				t.Fatalf("detokenize item %d on n%d: wrong pan %s", k, node, masked(s.GetPan()))
			}
			if wantVersion != 0 && s.GetKeyVersion() != wantVersion {
				t.Fatalf("detokenize item %d on n%d: key version %d, want %d", k, node, s.GetKeyVersion(), wantVersion)
			}
		}
	}

	v1 := tokenizeAll(0, 40)
	checkAll(0, v1, 1)

	// FF1 token under version 1 of the dev FPE key.
	ff1PAN := testPAN(t, "411111", 16, 4242)
	t1, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: ff1PAN})
	if err != nil || t1.GetKeyVersion() != 1 {
		t.Fatalf("ff1 tokenize v1: %v %v", t1, err)
	}

	// Nothing to move to before a rotation: refused, not answered with the
	// same tokens.
	if _, err := tok.Retokenize(ctx, &pb.RetokenizeRequest{Scheme: vault.DevSchemeFF1, FromKeyVersion: 1,
		Items: []*pb.RetokenizeItem{{Token: t1.GetToken()}}}); codeOf(err) != codes.FailedPrecondition || reason(err) != "KEY_STATE" {
		t.Fatalf("retokenize from the latest version: %v", err)
	}

	// Rotate both keys (2 of 3 approvals, carol and alice).
	out := runCeremony(ctx, t, c, 1, rotate("life-gcm"), carol, alice)
	t.Logf("rotation: %s", out.GetOutcome())
	runCeremony(ctx, t, c, 2, rotate(vault.DevKeyFF1), bob, carol)
	if _, states := versionStates(ctx, t, c, 0, "life-gcm"); len(states) != 2 ||
		states[0] != pb.KeyState_KEY_STATE_DECRYPT_ONLY || states[1] != pb.KeyState_KEY_STATE_ACTIVE {
		t.Fatalf("after rotation: %v", states)
	}

	// New tokens use version 2; old ones still detokenize.
	v2 := tokenizeAll(1000, 10)
	checkAll(2, v2, 2)
	t2, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: ff1PAN})
	if err != nil || t2.GetKeyVersion() != 2 || t2.GetToken() == t1.GetToken() {
		t.Fatalf("ff1 tokenize after rotation: version %d, same token as v1: %v, err %v", t2.GetKeyVersion(), t2.GetToken() == t1.GetToken(), err)
	}
	for i := range c.Nodes {
		d, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: t1.GetToken(), KeyVersion: 1})
		if err != nil || d.GetPan() != ff1PAN || d.GetKeyVersion() != 1 {
			t.Fatalf("n%d: ff1 v1 token with key_version 1: %v", i, err)
		}
		d, err = c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: t2.GetToken()})
		if err != nil || d.GetPan() != ff1PAN || d.GetKeyVersion() != 2 {
			t.Fatalf("n%d: ff1 v2 token: %v", i, err)
		}
	}
	rt, err := tok.Retokenize(ctx, &pb.RetokenizeRequest{Scheme: vault.DevSchemeFF1, FromKeyVersion: 1,
		Items: []*pb.RetokenizeItem{{Token: t1.GetToken()}, {Token: "12"}}})
	if err != nil {
		t.Fatalf("retokenize: %v", err)
	}
	if s := rt.GetResults()[0].GetSuccess(); s.GetToken() != t2.GetToken() || s.GetKeyVersion() != 2 || s.GetMaskedPan() != masked(ff1PAN) {
		t.Fatalf("retokenize: %v", rt.GetResults()[0])
	}
	if e := rt.GetResults()[1].GetError(); e == nil || codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("retokenize of a malformed token: %v", rt.GetResults()[1])
	}
	if _, err := tok.Retokenize(ctx, &pb.RetokenizeRequest{Scheme: "life", FromKeyVersion: 1,
		Items: []*pb.RetokenizeItem{{Token: unknownToken(t, 1)}}}); codeOf(err) != codes.FailedPrecondition || reason(err) != "WRONG_SCHEME_MODE" {
		t.Fatalf("retokenize on a vaulted scheme: %v", err)
	}

	// Retiring version 1 of the PAN key waits for the re-encryption the
	// rotation started; then every record is at version 2, tokens unchanged.
	job := waitReencrypted(ctx, t, c, 0, "life-gcm", 2)
	// The v2 tokens may or may not have been visited (they were made while
	// the job ran): they are counted, never rewritten.
	if job.GetReencrypted() != 40 || job.GetDone() < 40 || job.GetDone() > 50 || job.GetSkipped() != 0 {
		t.Fatalf("re-encryption: %v", job)
	}
	all := map[string]string{}
	for k, v := range v1 {
		all[k] = v
	}
	for k, v := range v2 {
		all[k] = v
	}
	for i := range c.Nodes {
		checkAll(i, all, 2)
	}
	var reenc uint64
	for _, nd := range c.Nodes {
		reenc += nd.Vault.KeyMetrics().Reencrypted["life-gcm"]
	}
	if reenc != 40 {
		t.Fatalf("panvault_reencrypt_records_total summed over nodes: %d, want 40", reenc)
	}

	runCeremony(ctx, t, c, 0, setMin("life-gcm", 2), bob, alice)
	runCeremony(ctx, t, c, 0, setMin(vault.DevKeyFF1, 2), alice, carol)
	if _, states := versionStates(ctx, t, c, 1, "life-gcm"); states[0] != pb.KeyState_KEY_STATE_RETIRED || states[1] != pb.KeyState_KEY_STATE_ACTIVE {
		t.Fatalf("after raising the minimum: %v", states)
	}
	checkAll(1, all, 2)
	_, err = tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: t1.GetToken(), KeyVersion: 1})
	if codeOf(err) != codes.FailedPrecondition || reason(err) != "KEY_VERSION_RETIRED" {
		t.Fatalf("ff1 v1 token after retirement: %v", err)
	}
	if _, err := tok.Retokenize(ctx, &pb.RetokenizeRequest{Scheme: vault.DevSchemeFF1, FromKeyVersion: 1,
		Items: []*pb.RetokenizeItem{{Token: t1.GetToken()}}}); reason(err) != "KEY_VERSION_RETIRED" {
		t.Fatalf("retokenize from a retired version: %v", err)
	}

	// Destroy version 1 of both: its blob leaves the state and every HSM.
	runCeremony(ctx, t, c, 2, destroy("life-gcm", 1), carol, bob)
	runCeremony(ctx, t, c, 2, destroy(vault.DevKeyFF1, 1), carol, bob)
	info, states = versionStates(ctx, t, c, 0, "life-gcm")
	if states[0] != pb.KeyState_KEY_STATE_DESTROYED || info.GetVersions()[0].GetMasterKeyKcv() != "" || info.GetMinDecryptionVersion() != 2 {
		t.Fatalf("after destruction: %v", info)
	}
	// Each version has its own KCV, kept after destruction (the record of
	// which key it was).
	if k1, k2 := info.GetVersions()[0].GetKcv(), info.GetVersions()[1].GetKcv(); len(k1) != 6 || len(k2) != 6 || k1 == k2 {
		t.Fatalf("KCVs of versions 1 and 2: %q, %q", k1, k2)
	}
	for _, nd := range c.Nodes {
		for _, ref := range []keys.KeyRef{{ID: "life-gcm", Version: 1}, {ID: vault.DevKeyFF1, Version: 1}} {
			waitFor(t, nd.ID+" unloads "+ref.String(), func() bool {
				_, err := nd.HSM.KeyInfo(ref)
				return errors.Is(err, keys.ErrKeyNotFound)
			})
		}
	}
	for i := range c.Nodes {
		// Each node's key cache follows the replicated record; until it
		// has, the version still fails as retired.
		waitFor(t, "destroyed on n"+string(rune('0'+i)), func() bool {
			_, err = c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeFF1, Token: t1.GetToken(), KeyVersion: 1})
			if codeOf(err) != codes.FailedPrecondition {
				t.Fatalf("n%d: ff1 token of a destroyed version: %v", i, err)
			}
			return reason(err) == "KEY_VERSION_DESTROYED"
		})
		checkAll(i, all, 2)
	}
	// Tokenization goes on under version 2.
	checkAll(0, tokenizeAll(2000, 5), 2)
}

// codeOf returns the gRPC code of err.
func codeOf(err error) codes.Code { return grpcstatus.Code(err) }

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
