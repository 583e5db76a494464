package vault_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestStaleReadBounded: a STALE detokenize is answered from local state
// while the node is in contact with the leader, refused with UNAVAILABLE
// STALE_READ_TOO_OLD once it has lost contact for longer than
// MaxStaleness (its state may be arbitrarily old: a deletion acknowledged
// by the others would not be seen), and answered again once the cluster is
// back.
func TestStaleReadBounded(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: func(cfg *vault.Config) {
		cfg.MaxStaleness = 300 * time.Millisecond
	}})
	c.Setup(t)
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 71)
	r, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatal(err)
	}
	x := c.FollowerIndex(t)
	cl := c.Tokens(t, x)
	stale := &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: r.GetToken(), Consistency: pb.Consistency_CONSISTENCY_STALE}
	waitFor(t, "stale read on a follower in contact", func() bool {
		d, err := cl.Detokenize(ctx, stale)
		return err == nil && d.GetPan() == pan
	})
	var others []int
	for i := range c.Nodes {
		if i != x {
			others = append(others, i)
			c.StopNode(t, i)
		}
	}
	var last error
	waitFor(t, "stale read refused on the cut-off node", func() bool {
		d, err := cl.Detokenize(ctx, stale)
		if err == nil && d.GetPan() != pan {
			t.Fatal("stale read returned another pan")
		}
		last = err
		return codeOf(err) == codes.Unavailable && reason(err) == "STALE_READ_TOO_OLD"
	})
	t.Logf("refused: %v", last)
	for _, i := range others {
		c.RestartNode(t, i)
	}
	waitFor(t, "stale read once back in contact", func() bool {
		d, err := cl.Detokenize(ctx, stale)
		return err == nil && d.GetPan() == pan
	})
}
