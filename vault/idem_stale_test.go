package vault_test

import (
	"errors"
	"testing"

	"github.com/panvault/panvault/vault"
)

// TestReusedRequestIDRefusedOnLaggingNode: on a deterministic scheme a PAN
// that already has a token is answered from the fingerprint index, without
// a command. A request id reused for that PAN after it was recorded for
// another one must be refused ALREADY_EXISTS on every node, also where the
// local read of the request id missed (a follower behind the leader); a
// retry of the original request still gets its own token.
func TestReusedRequestIDRefusedOnLaggingNode(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	lead := c.LeaderIndex(t)
	p1, p2 := testPAN(t, "411111", 16, 71), testPAN(t, "411111", 16, 72)
	t1, err := vault.TokenizeAs(ctx, c.Nodes[lead].Vault, vault.DevSchemeDeterministic, "tester", "req-1", p1, false)
	if err != nil {
		t.Fatalf("tokenize first pan: %v", err)
	}
	t2, err := vault.TokenizeAs(ctx, c.Nodes[lead].Vault, vault.DevSchemeDeterministic, "other", "", p2, false)
	if err != nil || t2 == t1 {
		t.Fatalf("tokenize second pan: same token %v, %v", t2 == t1, err)
	}
	for i, nd := range c.Nodes {
		got, err := vault.TokenizeAs(ctx, nd.Vault, vault.DevSchemeDeterministic, "tester", "req-1", p2, true)
		if !errors.Is(err, vault.ErrAlreadyExists) {
			t.Fatalf("n%d: request id reused for another pan after a stale miss: token equal to the second pan's %v, err %v", i, got == t2, err)
		}
		got, err = vault.TokenizeAs(ctx, nd.Vault, vault.DevSchemeDeterministic, "tester", "req-1", p1, true)
		if err != nil || got != t1 {
			t.Fatalf("n%d: retry of the original request after a stale miss: same token %v, %v", i, got == t1, err)
		}
	}
}
