package vault_test

import (
	"testing"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// TestDestroyedVersionStaysUnloaded: once a version is destroyed, a late
// copy of the key record from before (a linearizable read that raced the
// watcher) does not load it again, and a load of its old blob that races
// the destruction takes it out of the HSM again.
func TestDestroyedVersionStaysUnloaded(t *testing.T) {
	c, cs := ceremonyCluster(t, fastJobs)
	ctx := ctxT(t)
	key := vault.DevKeyFingerprint
	runCeremony(ctx, t, c, 0, rotate(key), cs[0], cs[1])
	stale, err := vault.KeyRecordOf(ctx, c.Nodes[1].Vault, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale.GetVersions()) != 2 || len(stale.GetVersions()[0].GetWrapped()) == 0 {
		t.Fatalf("record after rotation has %d versions", len(stale.GetVersions()))
	}
	staleBlob := stale.GetVersions()[0].GetWrapped()
	waitReencrypted(ctx, t, c, 0, key, 2)
	runCeremony(ctx, t, c, 0, setMin(key, 2), cs[0], cs[1])
	runCeremony(ctx, t, c, 1, destroy(key, 1), cs[1], cs[2])
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" unloads v1", func() bool {
			_, states := versionStates(ctx, t, c, 0, key)
			l, h := vault.KeyLoaded(ctx, nd.Vault, key, 1)
			return states[0] == pb.KeyState_KEY_STATE_DESTROYED && !l && !h
		})
	}
	nd := c.Nodes[2]
	vault.InstallKeyRecord(ctx, nd.Vault, stale)
	if l, h := vault.KeyLoaded(ctx, nd.Vault, key, 1); l || h {
		t.Fatalf("a stale key record reloaded the destroyed version (loader %v, hsm %v)", l, h)
	}
	if err := vault.LoadKeyVersion(ctx, nd.Vault, key, 1, staleBlob); err == nil {
		t.Fatal("loading a destroyed version succeeded")
	}
	if l, h := vault.KeyLoaded(ctx, nd.Vault, key, 1); l || h {
		t.Fatalf("a load racing the destruction left the version loaded (loader %v, hsm %v)", l, h)
	}
	// v2 still works.
	if l, h := vault.KeyLoaded(ctx, nd.Vault, key, 2); !l || !h {
		t.Fatalf("v2 not loaded (loader %v, hsm %v)", l, h)
	}
}
