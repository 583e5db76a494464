package vault_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// TestMasterKeyRotation replaces the master key by ceremony while clients
// tokenize and detokenize on every node: a component with a wrong KCV is
// refused, the ceremony waits until every node has staged the new master
// key, then every working key version is rewrapped under it, every node
// switches, no request fails, and a restarted node loads the rewrapped keys
// with the new master key.
func TestMasterKeyRotation(t *testing.T) {
	c, cs := ceremonyCluster(t, fastJobs)
	ctx := ctxT(t)
	set, err := c.Nodes[0].HSM.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Zero)
	stageReq := func() *pb.StageMasterKeyRequest {
		r := &pb.StageMasterKeyRequest{MasterKcv: set.MasterKCV.String()}
		for _, comp := range set.Components {
			r.Components = append(r.Components, &pb.MasterKeyComponent{Value: append([]byte(nil), comp.Bytes()...), Kcv: comp.KCV().String()})
		}
		return r
	}
	oldKCV, _ := c.Nodes[0].HSM.MasterKeyKCV()

	// A component with the wrong KCV is refused and names the component.
	bad := stageReq()
	bad.Components[2].Kcv = set.Components[0].KCV().String()
	if _, err := c.Ceremonies(t, 0).StageMasterKey(ctx, bad); codeOf(err) != codes.FailedPrecondition || reason(err) != "COMPONENT_KCV_MISMATCH" {
		t.Fatalf("stage with a wrong component kcv: %v", err)
	}
	for i := range 2 {
		r, err := c.Ceremonies(t, i).StageMasterKey(ctx, stageReq())
		if err != nil || !r.GetStaged() || r.GetNodeId() != c.Nodes[i].ID {
			t.Fatalf("stage on n%d: %v %v", i, r, err)
		}
	}

	// Traffic on every node for the whole rotation.
	pans := map[string]string{}
	for k := range 20 {
		pan := testPAN(t, "510510", 16, k)
		r, err := c.Tokens(t, k%3).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
		if err != nil {
			t.Fatal(err)
		}
		pans[r.GetToken()] = pan
	}
	stop := make(chan struct{})
	var calls atomic.Int64
	var g errgroup.Group
	for w := range 3 {
		g.Go(func() error {
			cl := c.Tokens(t, w)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return nil
				default:
				}
				pan := testPAN(t, "520000", 16, w*100000+k)
				for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeFF1} {
					r, err := cl.Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pan})
					if err != nil {
						return fmt.Errorf("n%d tokenize %s: %w", w, sch, err)
					}
					d, err := cl.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: sch, Token: r.GetToken()})
					if err != nil || d.GetPan() != pan {
						return fmt.Errorf("n%d detokenize %s: %v", w, sch, err)
					}
					calls.Add(2)
				}
				if _, err := c.Signing(t, w).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); err != nil {
					return fmt.Errorf("n%d sign: %w", w, err)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			_ = g.Wait()
		}
	}()

	params := &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateMasterKey{RotateMasterKey: &pb.RotateMasterKeyParams{MasterKcv: set.MasterKCV.String()}}}
	for _, comp := range set.Components {
		params.GetRotateMasterKey().ComponentKcvs = append(params.GetRotateMasterKey().ComponentKcvs, comp.KCV().String())
	}
	p, err := c.Ceremonies(t, 1).Propose(ctx, &pb.ProposeRequest{Params: params})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	id := p.GetCeremony().GetId()
	if _, err := cs[0].Approve(ctx, t, c.ClientCeremonies(t, 0), id); err != nil {
		t.Fatal(err)
	}
	r, err := cs[2].Approve(ctx, t, c.ClientCeremonies(t, 2), id)
	if err != nil || r.GetExecuted() || r.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		t.Fatalf("approved before n2 staged: %v %v", r, err)
	}
	st, err := c.Ceremonies(t, 2).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{})
	if err != nil || st.GetCurrentKcv() != oldKCV.String() || len(st.GetNodes()) != 2 {
		t.Fatalf("master key status before: %v %v", st, err)
	}
	time.Sleep(200 * time.Millisecond) // several sweeps: still waiting for n2
	if g, _ := c.Ceremonies(t, 0).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id}); g.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		t.Fatalf("rotation carried out before every node staged: %v", g.GetCeremony())
	}
	if _, err := c.Ceremonies(t, 2).StageMasterKey(ctx, stageReq()); err != nil {
		t.Fatalf("stage on n2: %v", err)
	}
	waitFor(t, "the sweep carries the rotation out", func() bool {
		g, err := c.Ceremonies(t, 0).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := g.GetCeremony().GetStatus(); s != pb.CeremonyStatus_CEREMONY_STATUS_PENDING && s != pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED {
			t.Fatalf("rotation ended %v: %s", s, g.GetCeremony().GetOutcome())
		}
		return g.GetCeremony().GetStatus() == pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED
	})
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" switches its master key", func() bool {
			k, _ := nd.HSM.MasterKeyKCV()
			if k != set.MasterKCV {
				return false
			}
			for _, info := range nd.HSM.Keys() {
				if info.MasterKCV != set.MasterKCV {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(200 * time.Millisecond) // traffic after the switch too
	close(stop)
	if err := g.Wait(); err != nil {
		t.Fatalf("traffic during the rotation: %v", err)
	}
	if calls.Load() == 0 {
		t.Fatalf("no traffic ran")
	}
	t.Logf("%d calls during the rotation", calls.Load())

	list, err := c.Admin(t, 1).ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.GetKeys() {
		for _, v := range k.GetVersions() {
			if v.GetMasterKeyKcv() != set.MasterKCV.String() {
				t.Fatalf("%s v%d wrapped under %s", k.GetName(), v.GetVersion(), v.GetMasterKeyKcv())
			}
		}
	}
	if st, err := c.Ceremonies(t, 0).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{}); err != nil || st.GetCurrentKcv() != set.MasterKCV.String() {
		t.Fatalf("master key status after: %v %v", st, err)
	}

	// A key rotated now is wrapped under the new master key; a restarted
	// node loads everything with it.
	runCeremony(ctx, t, c, 0, rotate(vault.DevKeyPAN), cs[1], cs[2])
	c.StopNode(t, 1)
	c.RestartNode(t, 1)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for tk, pan := range pans {
		var d *pb.DetokenizeResponse
		for {
			d, err = c.Tokens(t, 1).Detokenize(rctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: tk})
			if codeOf(err) != codes.Unavailable {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || d.GetPan() != pan {
			t.Fatalf("restarted node: detokenize: %v", err)
		}
	}
	if k, _ := c.Nodes[1].HSM.MasterKeyKCV(); k != set.MasterKCV {
		t.Fatalf("restarted node uses master key %s", k)
	}
	pan := testPAN(t, "530000", 16, 1)
	tr, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil || tr.GetKeyVersion() != 2 {
		t.Fatalf("tokenize on the restarted node: %v %v", tr, err)
	}
	info, err := c.Nodes[1].HSM.KeyInfo(keys.KeyRef{ID: vault.DevKeyPAN, Version: 2})
	if err != nil || info.MasterKCV != set.MasterKCV {
		t.Fatalf("new version on the restarted node: %v %v", info, err)
	}
}
