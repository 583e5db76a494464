package vault_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestExpirySweep: a retry with the request id of an expired token gets a
// new, live token (not the expired one); the leader's sweep removes
// expired token records with their fingerprint and idempotency entries,
// and idempotency records past their retention, on every node; live
// tokens stay.
func TestExpirySweep(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: func(cfg *vault.Config) {
		cfg.JobInterval = 50 * time.Millisecond
		cfg.IdemRetention = 3 * time.Hour
	}})
	c.Setup(t)
	ctx := ctxT(t)
	for _, nd := range c.Nodes {
		vault.PauseExpirySweep(nd.Vault, true) // the retry below must meet the expired records
	}
	admin := c.Admin(t, 0)
	for _, def := range []*pb.Scheme{
		{Name: "ttl", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4, Key: vault.DevKeyPAN, Ttl: durationpb.New(time.Hour)},
		{Name: "ttl-det", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4, Key: vault.DevKeyPAN,
			Deterministic: true, FingerprintKey: vault.DevKeyFingerprint, Ttl: durationpb.New(time.Hour)},
	} {
		if _, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: def}); err != nil {
			t.Fatal(err)
		}
	}
	tok := c.Tokens(t, 1)
	pan := testPAN(t, "411111", 16, 31)
	first, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: "ttl", Pan: pan, RequestId: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	det, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: "ttl-det", Pan: pan, RequestId: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan, RequestId: "r3"})
	if err != nil {
		t.Fatal(err)
	}

	c.Clock.Advance(2 * time.Hour) // both TTL tokens expired; idempotency records within retention
	again, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: "ttl", Pan: pan, RequestId: "r1"})
	if err != nil {
		t.Fatalf("retry after expiry: %v", err)
	}
	if again.GetToken() == first.GetToken() || !again.GetExpireTime().AsTime().After(c.Clock.Now()) {
		t.Fatalf("retry after expiry answered the expired token or an expired one (same=%v, expires %v)",
			again.GetToken() == first.GetToken(), again.GetExpireTime().AsTime())
	}
	for _, nd := range c.Nodes {
		vault.PauseExpirySweep(nd.Vault, false)
	}
	for i, nd := range c.Nodes {
		waitFor(t, nd.ID+" drops expired records", func() bool {
			return !vault.TokenStored(ctx, nd.Vault, "ttl", first.GetToken()) && !vault.TokenStored(ctx, nd.Vault, "ttl-det", det.GetToken())
		})
		if !vault.TokenStored(ctx, nd.Vault, "ttl", again.GetToken()) || !vault.TokenStored(ctx, nd.Vault, vault.DevSchemeVaulted, keep.GetToken()) {
			t.Fatalf("node %d lost a live token", i)
		}
		if fp, err := vault.BucketLen(ctx, nd.Vault, "fp"); err != nil || fp != 0 {
			t.Fatalf("node %d: %d fingerprint entries left (%v)", i, fp, err)
		}
	}
	// The retry's idempotency record now names the new token.
	if r, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: "ttl", Pan: pan, RequestId: "r1"}); err != nil || r.GetToken() != again.GetToken() {
		t.Fatalf("second retry: %v", err)
	}

	c.Clock.Advance(2 * time.Hour) // every idempotency record past retention; "again" expired
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" drops old idempotency records", func() bool {
			n, err := vault.BucketLen(ctx, nd.Vault, "idem")
			return err == nil && n == 0
		})
	}
	d, err := c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: keep.GetToken()})
	if err != nil || d.GetPan() != pan {
		t.Fatalf("token without ttl after the sweeps: %v", err)
	}
}
