package vault_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// TestFingerprintKeyRotation: a deterministic scheme keeps answering the
// token it issued for a PAN after its fingerprint key is rotated by
// ceremony: first through the older version's index entry (the re-index
// job waits for its grace period), then, once the job has re-indexed every
// record, through the new version's entry alone, also after the old
// version is retired. Retiring it before the re-index is refused.
func TestFingerprintKeyRotation(t *testing.T) {
	c, cs := ceremonyCluster(t, func(cfg *vault.Config) {
		fastJobs(cfg)
		cfg.ReencryptGrace = time.Hour // the job waits until the test moves the clock
	})
	ctx := ctxT(t)
	alice, bob := cs[0], cs[1]
	pans := []string{testPAN(t, "411111", 16, 901), testPAN(t, "510510", 16, 902), testPAN(t, "222100", 16, 903)}
	first := make([]string, len(pans))
	for k, pan := range pans {
		r, err := c.Tokens(t, k%len(c.Nodes)).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
		if err != nil || !r.GetCreated() {
			t.Fatalf("tokenize pan #%d: created=%v %v", k, r.GetCreated(), err)
		}
		first[k] = r.GetToken()
	}

	runCeremony(ctx, t, c, 0, rotate(vault.DevKeyFingerprint), alice, bob)
	for i := range c.Nodes {
		waitFor(t, "node knows fingerprint v2", func() bool {
			k, _ := versionStates(ctx, t, c, i, vault.DevKeyFingerprint)
			return k.GetLatestVersion() == 2
		})
	}
	sameToken := func(when string) {
		t.Helper()
		for i := range c.Nodes {
			for k, pan := range pans {
				r, err := c.Tokens(t, i).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pan})
				if err != nil {
					t.Fatalf("%s: tokenize pan #%d on node %d: %v", when, k, i, err)
				}
				if r.GetToken() != first[k] || r.GetCreated() {
					t.Fatalf("%s: pan #%d on node %d got a second token (created=%v)", when, k, i, r.GetCreated())
				}
			}
		}
	}
	sameToken("after the rotation, before re-indexing")

	// A request id reused for another PAN is refused also when the older
	// fingerprint version answers that PAN (no command, so the request id
	// is read again), on a node whose first request-id read missed.
	// (The request id is recorded by a tokenization that creates a token.)
	lead := c.LeaderIndex(t)
	if _, err := vault.TokenizeAs(ctx, c.Nodes[lead].Vault, vault.DevSchemeDeterministic, "tester", "fp-req", testPAN(t, "411111", 16, 905), false); err != nil {
		t.Fatal(err)
	}
	for i, nd := range c.Nodes {
		if got, err := vault.TokenizeAs(ctx, nd.Vault, vault.DevSchemeDeterministic, "tester", "fp-req", pans[1], true); !errors.Is(err, vault.ErrAlreadyExists) {
			t.Fatalf("n%d: request id reused for another pan, answered by the older fingerprint: token of the second pan %v, err %v", i, got == first[1], err)
		}
	}

	// The old version cannot be retired while records are indexed only
	// under it.
	_, err := c.Ceremonies(t, 1).Propose(ctx, &pb.ProposeRequest{Params: setMin(vault.DevKeyFingerprint, 2)})
	if codeOf(err) != codes.FailedPrecondition || reason(err) != "REENCRYPT_PENDING" {
		t.Fatalf("retire fingerprint v1 before re-indexing: %v", err)
	}

	c.Clock.Advance(2 * time.Hour)
	st := waitReencrypted(ctx, t, c, 2, vault.DevKeyFingerprint, 2)
	if st.GetReencrypted() != uint64(len(pans)) {
		t.Fatalf("re-index job rewrote %d records, want %d", st.GetReencrypted(), len(pans))
	}
	runCeremony(ctx, t, c, 1, setMin(vault.DevKeyFingerprint, 2), alice, bob)
	for i := range c.Nodes {
		waitFor(t, "node retired fingerprint v1", func() bool {
			_, states := versionStates(ctx, t, c, i, vault.DevKeyFingerprint)
			return len(states) == 2 && states[0] == pb.KeyState_KEY_STATE_RETIRED
		})
	}
	sameToken("after re-indexing and retiring v1")

	// A new PAN is indexed under v2 and found again.
	np := testPAN(t, "411111", 16, 904)
	a, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: np})
	if err != nil || !a.GetCreated() {
		t.Fatalf("new pan: %v", err)
	}
	b, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: np})
	if err != nil || b.GetToken() != a.GetToken() || b.GetCreated() {
		t.Fatalf("new pan again: created=%v %v", b.GetCreated(), err)
	}
	// Deleting a re-indexed token removes its index entry: the PAN gets a
	// new token.
	if _, err := c.Tokens(t, 1).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: vault.DevSchemeDeterministic, Token: first[0]}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeDeterministic, Pan: pans[0]})
	if err != nil || !r.GetCreated() || r.GetToken() == first[0] {
		t.Fatalf("pan of a deleted token: created=%v %v", r.GetCreated(), err)
	}
}
