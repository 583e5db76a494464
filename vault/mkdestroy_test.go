package vault_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestDestroyOldMasterKey rotates the master key of a 3-node cluster and
// destroys the old one on every node: a malformed KCV, a client caller, the
// current master key, a staged one, the one of a pending ceremony and a
// node that has not switched are refused; a second destruction destroys
// nothing; the old KCV is in no HSM any more; every node keeps serving and
// a node restarted afterwards loads every working key and serves. A second
// rotation then makes the first rotation's master key (staged on every
// node, so also in their staged records) old, and it is destroyed too.
func TestDestroyOldMasterKey(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: fastJobs})
	c.Setup(t)
	cs := c.InitCustodians(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	destroyOn := func(i int, kcv string) (*pb.DestroyOldMasterKeyResponse, error) {
		return c.Ceremonies(t, i).DestroyOldMasterKey(ctx, &pb.DestroyOldMasterKeyRequest{Kcv: kcv})
	}
	refused := func(what string, err error, wantReason string) {
		t.Helper()
		if codeOf(err) != codes.FailedPrecondition || reason(err) != wantReason {
			t.Fatalf("%s: %v, want FAILED_PRECONDITION %s", what, err, wantReason)
		}
	}
	oldKCV, ok := c.Nodes[0].HSM.MasterKeyKCV()
	if !ok {
		t.Fatal("n0 has no master key")
	}
	oldLabel := c.Nodes[0].HSM.MasterKeyLabel()

	// Tokens and an FF1 token made before the rotation.
	pans := map[string]string{}
	for k := range 6 {
		pan := testPAN(t, "510510", 16, k)
		r, err := c.Tokens(t, k%3).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
		if err != nil {
			t.Fatal(err)
		}
		pans[r.GetToken()] = pan
	}
	ff1PAN := testPAN(t, "411111", 16, 7)
	ff1, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: ff1PAN})
	if err != nil {
		t.Fatal(err)
	}

	// Input and role.
	_, err = destroyOn(0, "12345G")
	if codeOf(err) != codes.InvalidArgument {
		t.Fatalf("malformed kcv: %v", err)
	}
	if vs := violations(err); len(vs) != 1 || vs[0].GetField() != "kcv" {
		t.Fatalf("malformed kcv: field violations %v", vs)
	}
	if _, err := c.ClientCeremonies(t, 0).DestroyOldMasterKey(ctx, &pb.DestroyOldMasterKeyRequest{Kcv: oldKCV.String()}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("destroy as a client: %v", err)
	}
	_, err = destroyOn(0, oldKCV.String())
	refused("destroy the current master key before any rotation", err, "MASTER_KEY_IN_USE")

	// Stage a new master key everywhere: staged, it may not be destroyed;
	// named by a pending ceremony, neither.
	set := newMasterKey(ctx, t, c)
	stageEverywhere(ctx, t, c, set)
	_, err = destroyOn(1, set.MasterKCV.String())
	refused("destroy a staged master key", err, "MASTER_KEY_IN_USE")
	p, err := c.Ceremonies(t, 1).Propose(ctx, &pb.ProposeRequest{Params: rotateMK(set)})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	id := p.GetCeremony().GetId()
	_, err = destroyOn(2, set.MasterKCV.String())
	refused("destroy the master key of a pending ceremony", err, "MASTER_KEY_IN_USE")
	for k, cu := range []*vaulttest.Custodian{cs[0], cs[2]} {
		r, err := cu.Approve(ctx, t, c.ClientCeremonies(t, k), id)
		if err != nil {
			t.Fatalf("approve: %v", err)
		}
		if k == 1 && (!r.GetExecuted() || r.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED) {
			t.Fatalf("rotation not carried out: %v %q", r.GetCeremony().GetStatus(), r.GetCeremony().GetOutcome())
		}
	}
	loaded := awaitSwitch(t, c, set.MasterKCV)

	// A node that has not switched destroys nothing: n2's HSM is put back
	// on the old master key for a moment.
	if _, err := c.Nodes[2].HSM.UseMasterKey(oldLabel); err != nil {
		t.Fatal(err)
	}
	_, err = destroyOn(2, oldKCV.String())
	refused("destroy on a node that has not switched", err, "MASTER_KEY_MISMATCH")
	if k, err := c.Nodes[2].HSM.UseMasterKey(vault.StagedMasterKeyLabel(set.MasterKCV)); err != nil || k != set.MasterKCV {
		t.Fatalf("switch n2 back: %v %v", k, err)
	}

	for i := range c.Nodes {
		_, err = destroyOn(i, set.MasterKCV.String())
		refused(fmt.Sprintf("destroy the current master key on n%d", i), err, "MASTER_KEY_IN_USE")
	}
	for i, nd := range c.Nodes {
		r, err := destroyOn(i, oldKCV.String())
		if err != nil || !r.GetDestroyed() || r.GetNodeId() != nd.ID {
			t.Fatalf("destroy the old master key on %s: %v %v", nd.ID, r, err)
		}
		if r, err := destroyOn(i, oldKCV.String()); err != nil || r.GetDestroyed() {
			t.Fatalf("destroy the old master key again on %s: %v %v", nd.ID, r, err)
		}
	}
	for _, nd := range c.Nodes {
		if _, found, err := nd.HSM.MasterKeyKCVAt(oldLabel); err != nil || found {
			t.Fatalf("%s still holds the old master key: %v %v", nd.ID, found, err)
		}
		if k, found, err := nd.HSM.MasterKeyKCVAt(vault.StagedMasterKeyLabel(set.MasterKCV)); err != nil || !found || k != set.MasterKCV {
			t.Fatalf("%s lost the current master key: %v %v %v", nd.ID, k, found, err)
		}
	}
	for i := range c.Nodes {
		if err := trafficRound(ctx, c.Tokens(t, i), c.Signing(t, i), testPAN(t, "520000", 16, i)); err != nil {
			t.Fatalf("n%d after the destruction: %v", i, err)
		}
	}

	// A node restarted now has no master key under its configured label: it
	// takes the replicated one and loads every working key.
	c.StopNode(t, 1)
	c.RestartNode(t, 1)
	checkRestarted(ctx, t, c, 1, set.MasterKCV, loaded[1], pans)
	again, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeFF1, Pan: ff1PAN})
	if err != nil || again.GetToken() != ff1.GetToken() {
		t.Fatalf("ff1 on the restarted node: another token or %v", err)
	}
	if r, err := destroyOn(1, oldKCV.String()); err != nil || r.GetDestroyed() {
		t.Fatalf("destroy on the restarted node: %v %v", r, err)
	}

	// A second rotation: the first one's master key, staged on every node,
	// becomes old and shows as staged until destroyed.
	set2 := newMasterKey(ctx, t, c)
	stageEverywhere(ctx, t, c, set2)
	runCeremony(ctx, t, c, 0, rotateMK(set2), cs[1], cs[2])
	awaitSwitch(t, c, set2.MasterKCV)
	for i, nd := range c.Nodes {
		r, err := destroyOn(i, set.MasterKCV.String())
		if err != nil || !r.GetDestroyed() {
			t.Fatalf("destroy the first rotation's master key on %s: %v %v", nd.ID, r, err)
		}
		if _, found, err := nd.HSM.MasterKeyKCVAt(vault.StagedMasterKeyLabel(set.MasterKCV)); err != nil || found {
			t.Fatalf("%s still holds the first rotation's master key: %v %v", nd.ID, found, err)
		}
	}
	st, err := c.Ceremonies(t, 2).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{})
	if err != nil || st.GetCurrentKcv() != set2.MasterKCV.String() {
		t.Fatalf("master key status: %v %v", st, err)
	}
	for _, nm := range st.GetNodes() {
		if slices.Contains(nm.GetStagedKcvs(), set.MasterKCV.String()) {
			t.Fatalf("%s still reports the destroyed master key as staged", nm.GetNodeId())
		}
	}
	for i := range c.Nodes {
		if err := trafficRound(ctx, c.Tokens(t, i), c.Signing(t, i), testPAN(t, "530000", 16, i)); err != nil {
			t.Fatalf("n%d after the second destruction: %v", i, err)
		}
	}
}

// newMasterKey makes new master-key components from n0's HSM.
func newMasterKey(ctx context.Context, t *testing.T, c *vaulttest.Cluster) *keys.ComponentSet {
	t.Helper()
	set, err := c.Nodes[0].HSM.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Zero)
	return set
}

// stageEverywhere stages set's master key on every node.
func stageEverywhere(ctx context.Context, t *testing.T, c *vaulttest.Cluster, set *keys.ComponentSet) {
	t.Helper()
	for i, nd := range c.Nodes {
		req := &pb.StageMasterKeyRequest{MasterKcv: set.MasterKCV.String()}
		for _, comp := range set.Components {
			req.Components = append(req.Components, &pb.MasterKeyComponent{Value: append([]byte(nil), comp.Bytes()...), Kcv: comp.KCV().String()})
		}
		if r, err := c.Ceremonies(t, i).StageMasterKey(ctx, req); err != nil || !r.GetStaged() {
			t.Fatalf("stage on %s: %v %v", nd.ID, r, err)
		}
	}
}

// rotateMK is the ROTATE_MASTER_KEY ceremony to set's master key.
func rotateMK(set *keys.ComponentSet) *pb.CeremonyParams {
	q := &pb.RotateMasterKeyParams{MasterKcv: set.MasterKCV.String()}
	for _, comp := range set.Components {
		q.ComponentKcvs = append(q.ComponentKcvs, comp.KCV().String())
	}
	return &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateMasterKey{RotateMasterKey: q}}
}

// awaitSwitch waits until every node's HSM uses master key kcv and keeps
// every loaded key under it, and returns each node's loaded keys.
func awaitSwitch(t *testing.T, c *vaulttest.Cluster, kcv keys.KCV) [][]keys.KeyRef {
	t.Helper()
	out := make([][]keys.KeyRef, len(c.Nodes))
	for i, nd := range c.Nodes {
		waitFor(t, nd.ID+" switches its master key", func() bool {
			if k, _ := nd.HSM.MasterKeyKCV(); k != kcv {
				return false
			}
			out[i] = out[i][:0]
			for _, info := range nd.HSM.Keys() {
				if info.MasterKCV != kcv {
					return false
				}
				out[i] = append(out[i], info.Ref)
			}
			return len(out[i]) > 0
		})
	}
	return out
}

// checkRestarted waits until restarted node i uses master key kcv and has
// loaded exactly the keys in want, then checks that it detokenizes pans
// and serves a round of tokenize, detokenize and sign.
func checkRestarted(ctx context.Context, t *testing.T, c *vaulttest.Cluster, i int, kcv keys.KCV, want []keys.KeyRef, pans map[string]string) {
	t.Helper()
	for tk, pan := range pans {
		var d *pb.DetokenizeResponse
		err := retryUnavailable(ctx, func() (err error) {
			d, err = c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: tk})
			return err
		})
		if err != nil || d.GetPan() != pan {
			t.Fatalf("restarted n%d: detokenize: another pan or %v", i, err)
		}
	}
	if err := trafficRound(ctx, c.Tokens(t, i), c.Signing(t, i), testPAN(t, "540000", 16, i)); err != nil {
		t.Fatalf("restarted n%d: %v", i, err)
	}
	nd := c.Nodes[i]
	waitFor(t, nd.ID+" loads every working key", func() bool {
		if k, _ := nd.HSM.MasterKeyKCV(); k != kcv {
			return false
		}
		var got []keys.KeyRef
		for _, info := range nd.HSM.Keys() {
			if info.MasterKCV != kcv {
				return false
			}
			got = append(got, info.Ref)
		}
		return slices.Equal(got, want)
	})
}
