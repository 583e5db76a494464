package vault_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestDeleteAndExpiry covers DeleteToken and TTL expiry on one cluster.
func TestDeleteAndExpiry(t *testing.T) {
	c := devCluster(t)
	t.Run("Delete", func(t *testing.T) { testDelete(t, c) })
	t.Run("DeleteDeterministic", func(t *testing.T) { testDeleteDeterministic(t, c) })
	t.Run("DeleteIdempotent", func(t *testing.T) { testDeleteIdempotent(t, c) })
	t.Run("TTL", func(t *testing.T) { testTTL(t, c) })
}

// detokenizeEverywhere asserts every node answers want for token.
func detokenizeEverywhere(t *testing.T, c *vaulttest.Cluster, schemeName, token string, want codes.Code) {
	t.Helper()
	for i := range c.Nodes {
		_, err := c.Tokens(t, i).Detokenize(ctxT(t), &pb.DetokenizeRequest{Scheme: schemeName, Token: token})
		wantCode(t, err, want, "detokenize on node "+c.Nodes[i].ID)
	}
}

func testDelete(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 3001)
	r, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	detokenizeEverywhere(t, c, vault.DevSchemeVaulted, r.GetToken(), codes.OK)
	// Delete through a follower: at once NOT_FOUND on every node
	// (linearizable reads, the default).
	d, err := c.Tokens(t, c.FollowerIndex(t)).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken()})
	if err != nil || !d.GetDeleted() {
		t.Fatalf("delete: deleted=%v err=%v", d.GetDeleted(), err)
	}
	detokenizeEverywhere(t, c, vault.DevSchemeVaulted, r.GetToken(), codes.NotFound)
	// Deleting again: nothing to delete.
	d, err = c.Tokens(t, 0).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken()})
	if err != nil || d.GetDeleted() {
		t.Fatalf("second delete: deleted=%v err=%v", d.GetDeleted(), err)
	}
	// A token that never existed.
	d, err = c.Tokens(t, 1).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: unknownToken(t, 2)})
	if err != nil || d.GetDeleted() {
		t.Fatalf("delete of unknown token: deleted=%v err=%v", d.GetDeleted(), err)
	}
}

// testDeleteDeterministic: deleting a deterministic token removes its index
// entry too, so the PAN gets a fresh token.
func testDeleteDeterministic(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "520000", 16, 3002)
	r1, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Tokens(t, 2).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeDeterministic, Token: r1.GetToken()})
	if err != nil || !d.GetDeleted() {
		t.Fatalf("delete: deleted=%v err=%v", d.GetDeleted(), err)
	}
	detokenizeEverywhere(t, c, vault.DevSchemeDeterministic, r1.GetToken(), codes.NotFound)
	r2, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	if !r2.GetCreated() || r2.GetToken() == r1.GetToken() {
		t.Fatalf("after delete: created=%v, same token=%v", r2.GetCreated(), r2.GetToken() == r1.GetToken())
	}
	r3, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
	if err != nil || r3.GetToken() != r2.GetToken() || r3.GetCreated() {
		t.Fatalf("deterministic after re-creation: err %v created %v", err, r3.GetCreated())
	}
}

func testDeleteIdempotent(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 3003)
	tr := &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan, RequestId: "tok-3003"}
	r, err := c.Tokens(t, 0).Tokenize(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	req := &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken(), RequestId: "del-3003"}
	for i := range c.Nodes {
		d, err := c.Tokens(t, i).DeleteToken(ctx, req)
		if err != nil || !d.GetDeleted() {
			t.Fatalf("delete with request id on node %d: deleted=%v err=%v", i, d.GetDeleted(), err)
		}
	}
	// Without the request id a repeat says false.
	d, err := c.Tokens(t, 0).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken()})
	if err != nil || d.GetDeleted() {
		t.Fatalf("delete without id: deleted=%v err=%v", d.GetDeleted(), err)
	}
	// The tokenization's request id went with the token: a retry of it
	// tokenizes again, it does not hand back the deleted token.
	again, err := c.Tokens(t, 1).Tokenize(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetToken() == r.GetToken() || !again.GetCreated() {
		t.Fatalf("tokenize retry after delete returned the deleted token")
	}
	detokenizeEverywhere(t, c, vault.DevSchemeVaulted, again.GetToken(), codes.OK)
}

// testTTL expires tokens by moving every node's clock.
func testTTL(t *testing.T, c *vaulttest.Cluster) {
	ctx := ctxT(t)
	admin := c.Admin(t, 1)
	for _, s := range []*pb.Scheme{
		{Name: "short", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4, Key: vault.DevKeyPAN, Ttl: durationpb.New(time.Hour)},
		{Name: "short-det", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4, Key: vault.DevKeyPAN,
			Deterministic: true, FingerprintKey: vault.DevKeyFingerprint, Ttl: durationpb.New(time.Hour)},
	} {
		if _, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: s}); err != nil {
			t.Fatalf("create scheme %s: %v", s.GetName(), err)
		}
	}
	pan := testPAN(t, "411111", 16, 4001)
	r, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: "short", Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	exp := r.GetExpireTime().AsTime()
	if d := exp.Sub(c.Clock.Now()); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expire_time %v from now, want about an hour", d)
	}
	det, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: "short-det", Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	dr, err := c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: "short", Token: r.GetToken()})
	if err != nil || dr.GetPan() != pan || !dr.GetExpireTime().AsTime().Equal(exp) {
		t.Fatalf("detokenize before expiry: %v", err)
	}

	c.Clock.Advance(59 * time.Minute)
	detokenizeEverywhere(t, c, "short", r.GetToken(), codes.OK)
	c.Clock.Advance(2 * time.Minute)
	for i := range c.Nodes {
		_, err := c.Tokens(t, i).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: "short", Token: r.GetToken(), Consistency: pb.Consistency_CONSISTENCY_STALE})
		wantCode(t, err, codes.NotFound, "expired token")
		if reason(err) != "TOKEN_EXPIRED" {
			t.Fatalf("expired token reason %q", reason(err))
		}
	}
	detokenizeEverywhere(t, c, "short-det", det.GetToken(), codes.NotFound)
	// The deterministic scheme issues a new token for the PAN once the old
	// one expired, and the new one lives.
	det2, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: "short-det", Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	if !det2.GetCreated() || det2.GetToken() == det.GetToken() {
		t.Fatalf("deterministic after expiry: created=%v same=%v", det2.GetCreated(), det2.GetToken() == det.GetToken())
	}
	detokenizeEverywhere(t, c, "short-det", det2.GetToken(), codes.OK)
	det3, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: "short-det", Pan: pan})
	if err != nil || det3.GetToken() != det2.GetToken() || det3.GetCreated() {
		t.Fatalf("deterministic after renewal: err %v created %v", err, det3.GetCreated())
	}
}
