package vault_test

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// eventually polls cond every 20ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func health(t *testing.T, c *vaulttest.Cluster, i int, service string) healthpb.HealthCheckResponse_ServingStatus {
	r, err := healthpb.NewHealthClient(c.ClientConn(t, i)).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return r.GetStatus()
}

func hsmHasKey(h *keys.HSM, id string) bool {
	for _, k := range h.Keys() {
		if k.Ref.ID == id {
			return true
		}
	}
	return false
}

func TestCluster(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)

	t.Run("StatusHealthReflection", func(t *testing.T) {
		for i := range c.Nodes {
			st, err := c.ClusterAdmin(t, i).Status(ctx, &pb.StatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if st.GetNodeId() != c.Nodes[i].ID || st.GetLeaderId() == "" || len(st.GetNodes()) != 3 || st.GetAppliedIndex() == 0 {
				t.Fatalf("status of node %d: %v", i, st)
			}
			leaders := 0
			for _, nd := range st.GetNodes() {
				if nd.GetRole() == pb.NodeRole_NODE_ROLE_LEADER {
					leaders++
				}
				if nd.GetSuffrage() != pb.Suffrage_SUFFRAGE_VOTER || nd.GetRaftAddress() == "" {
					t.Fatalf("member %v", nd)
				}
			}
			if leaders != 1 {
				t.Fatalf("node %d sees %d leaders", i, leaders)
			}
			for _, svc := range []string{"", "panvault.v1.TokenService"} {
				eventually(t, "health SERVING", func() bool { return health(t, c, i, svc) == healthpb.HealthCheckResponse_SERVING })
			}
		}
		stream, err := reflectionpb.NewServerReflectionClient(c.ClientConn(t, 0)).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range r.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		for _, want := range []string{"panvault.v1.TokenService", "panvault.v1.SigningService", "panvault.v1.AdminService", "panvault.v1.ClusterService", "grpc.health.v1.Health"} {
			if !slices.Contains(names, want) {
				t.Fatalf("reflection lists %v, missing %s", names, want)
			}
		}
		_ = stream.CloseSend()
	})

	// The Raft port accepts only node identities: a client or admin
	// certificate of the same CA completes TLS but is cut off before it can
	// speak Raft or forward a write. The mux's ping protocol ('P' echoed)
	// shows the difference.
	t.Run("RaftPortRefusesNonNodes", func(t *testing.T) {
		_, nodeClient := c.CA.Node(c.Nodes[1].ID)
		for _, tc := range []struct {
			name   string
			conf   *tls.Config
			accept bool
		}{
			{"node", nodeClient, true},
			{"client", c.CA.Client(vaulttest.ClientName), false},
			{"admin", c.CA.Admin(vaulttest.AdminName), false},
		} {
			conf := tc.conf.Clone()
			conf.ServerName = "127.0.0.1"
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.Nodes[0].RaftAddr, conf)
			if err != nil {
				t.Fatalf("%s: dial: %v", tc.name, err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := conn.Write([]byte{'P'})
			var b [1]byte
			_, rerr := io.ReadFull(conn, b[:])
			_ = conn.Close()
			echoed := werr == nil && rerr == nil && b[0] == 'P'
			if echoed != tc.accept {
				t.Fatalf("%s certificate on the raft port: echoed=%v (write %v, read %v), want %v", tc.name, echoed, werr, rerr, tc.accept)
			}
		}
	})

	t.Run("Membership", func(t *testing.T) {
		admin := c.ClusterAdmin(t, 0)
		f := c.FollowerIndex(t)
		id, addr := c.Nodes[f].ID, c.Nodes[f].RaftAddr
		r, err := admin.Remove(ctx, &pb.RemoveRequest{NodeId: id})
		if err != nil || !r.GetRemoved() {
			t.Fatalf("remove: removed=%v err=%v", r.GetRemoved(), err)
		}
		st, err := admin.Status(ctx, &pb.StatusRequest{})
		if err != nil || len(st.GetNodes()) != 2 {
			t.Fatalf("status after remove: %v %v", st, err)
		}
		r, err = admin.Remove(ctx, &pb.RemoveRequest{NodeId: id})
		if err != nil || r.GetRemoved() {
			t.Fatalf("second remove: removed=%v err=%v", r.GetRemoved(), err)
		}
		j, err := admin.Join(ctx, &pb.JoinRequest{NodeId: id, RaftAddress: addr})
		if err != nil || !j.GetAdded() {
			t.Fatalf("join back: added=%v err=%v", j.GetAdded(), err)
		}
		j, err = admin.Join(ctx, &pb.JoinRequest{NodeId: id, RaftAddress: addr})
		if err != nil || j.GetAdded() {
			t.Fatalf("join again: added=%v err=%v", j.GetAdded(), err)
		}
		_, err = admin.Join(ctx, &pb.JoinRequest{NodeId: id, RaftAddress: "no-port"})
		wantCode(t, err, codes.InvalidArgument, "join with a bad address")
		_, err = admin.Join(ctx, &pb.JoinRequest{NodeId: "n7", RaftAddress: "127.0.0.1:1", Nonvoter: true})
		wantCode(t, err, codes.Unimplemented, "join as non-voter")
		_, err = admin.TransferLeadership(ctx, &pb.TransferLeadershipRequest{TargetNodeId: "n7"})
		wantCode(t, err, codes.NotFound, "transfer to a non-member")
		// The re-joined node serves linearizable reads again.
		pan := testPAN(t, "411111", 16, 6001)
		tok, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Tokens(t, f).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: tok.GetToken()})
		if err != nil || d.GetPan() != pan {
			t.Fatalf("detokenize on re-joined node: %v", err)
		}
	})

	t.Run("RestartCatchUp", func(t *testing.T) {
		f := c.FollowerIndex(t)
		l := c.LeaderIndex(t)
		c.StopNode(t, f)
		// While it is down: a new key and scheme, and tokens.
		admin := c.Admin(t, l)
		if _, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "late-gcm", Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: &pb.Scheme{Name: "late", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED,
			KeepLeading: 6, KeepTrailing: 4, Key: "late-gcm"}}); err != nil {
			t.Fatal(err)
		}
		pans := []string{testPAN(t, "411111", 16, 7001), testPAN(t, "411111", 16, 7002)}
		var toks []string
		for k, sch := range []string{vault.DevSchemeVaulted, "late"} {
			r, err := c.Tokens(t, l).Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pans[k]})
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, r.GetToken())
		}
		c.RestartNode(t, f)
		// The key replicated while the node was down reaches its HSM
		// without any request asking for it (the keys watch).
		eventually(t, "late key loaded on the restarted node", func() bool { return hsmHasKey(c.Nodes[f].HSM, "late-gcm") })
		for k, sch := range []string{vault.DevSchemeVaulted, "late"} {
			var d *pb.DetokenizeResponse
			var err error
			eventually(t, "detokenize on the restarted node", func() bool {
				d, err = c.Tokens(t, f).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: sch, Token: toks[k]})
				return err == nil
			})
			if d.GetPan() != pans[k] {
				t.Fatalf("scheme %s: wrong pan on restarted node", sch)
			}
		}
	})

	t.Run("HealthFollowsLeader", func(t *testing.T) {
		keep := c.LeaderIndex(t)
		var stopped []int
		for i := range c.Nodes {
			if i != keep {
				c.StopNode(t, i)
				stopped = append(stopped, i)
			}
		}
		eventually(t, "NOT_SERVING without quorum", func() bool {
			return health(t, c, keep, "") == healthpb.HealthCheckResponse_NOT_SERVING
		})
		_, err := c.Tokens(t, keep).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: testPAN(t, "411111", 16, 8001)})
		wantCode(t, err, codes.Unavailable, "tokenize without quorum")
		for _, i := range stopped {
			c.RestartNode(t, i)
		}
		for i := range c.Nodes {
			eventually(t, "SERVING again", func() bool { return health(t, c, i, "") == healthpb.HealthCheckResponse_SERVING })
		}
	})
}

// TestForeignMasterKey: a node whose master key differs from the cluster's
// refuses every request that needs a key, clearly, and keeps running.
func TestForeignMasterKey(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{ForeignMasterKey: []int{2}})
	c.Setup(t)
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 9001)
	r, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeFF1} {
		_, err = c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pan})
		wantCode(t, err, codes.FailedPrecondition, "tokenize on the foreign node")
		if reason(err) != "MASTER_KEY_MISMATCH" {
			t.Fatalf("reason %q", reason(err))
		}
	}
	_, err = c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken()})
	wantCode(t, err, codes.FailedPrecondition, "detokenize on the foreign node")
	_, err = c.Signing(t, 2).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")})
	wantCode(t, err, codes.FailedPrecondition, "sign on the foreign node")
	if !strings.Contains(err.Error(), "master key") {
		t.Fatalf("error does not say what is wrong: %v", err)
	}
	// The other nodes serve, and the foreign one still answers Status.
	d, err := c.Tokens(t, 1).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken()})
	if err != nil || d.GetPan() != pan {
		t.Fatalf("detokenize on a good node: %v", err)
	}
	if _, err := c.ClusterAdmin(t, 2).Status(ctx, &pb.StatusRequest{}); err != nil {
		t.Fatalf("status on the foreign node: %v", err)
	}
}
