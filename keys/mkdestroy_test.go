package keys_test

import (
	"errors"
	"testing"

	"github.com/panvault/panvault/keys"
)

// TestDestroyMasterKey rotates a token's master key and destroys the old
// one: the current master key, and the old one while a loaded key is still
// kept wrapped under it, are refused; the destruction is idempotent; the
// keys keep working; and the token reopened afterwards has only the new
// master key, which loads the rewrapped blobs.
func TestDestroyMasterKey(t *testing.T) {
	a, tok := newNode(t, "destroy")
	ctx := testCtx(t)

	// Without a master key nothing can be judged in use: refused.
	if _, err := a.DestroyMasterKey(ctx, keys.KCV{1, 2, 3}); !errors.Is(err, keys.ErrMasterKeyMissing) {
		t.Fatalf("destroy without a current master key: %v", err)
	}
	set1, err := a.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set1.Zero)
	loadMK(t, a, set1)
	oldLabel := a.MasterKeyLabel()
	_, blob := generate(t, a, "gcm", keys.KeyAES256GCM)
	gcm := keys.KeyRef{ID: "gcm", Version: 1}
	sealed, err := a.Seal(ctx, gcm, []byte("4111111111111111"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := a.DestroyMasterKey(ctx, set1.MasterKCV); !errors.Is(err, keys.ErrMasterKeyInUse) {
		t.Fatalf("destroy the current master key: %v", err)
	}
	if kcv, found, err := a.MasterKeyKCVAt(oldLabel); err != nil || !found || kcv != set1.MasterKCV {
		t.Fatalf("a refused destruction removed the master key: %v %v %v", kcv, found, err)
	}
	if destroyed, err := a.DestroyMasterKey(ctx, keys.KCV{1, 2, 3}); err != nil || destroyed {
		t.Fatalf("destroy an unknown master key: %v %v", destroyed, err)
	}

	// Rotate: stage, rewrap, switch; the loaded key still keeps its old blob.
	set2, err := a.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set2.Zero)
	const next = "panvault-master-key-next"
	if _, err := a.StageMasterKey(ctx, next, copyComponents(t, set2), set2.MasterKCV); err != nil {
		t.Fatal(err)
	}
	rewrapped, err := a.Rewrap(ctx, blob, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UseMasterKey(next); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DestroyMasterKey(ctx, set1.MasterKCV); !errors.Is(err, keys.ErrMasterKeyInUse) {
		t.Fatalf("destroy the master key a loaded key's blob is kept under: %v", err)
	}
	if err := a.ReplaceBlob(ctx, rewrapped); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DestroyMasterKey(ctx, set2.MasterKCV); !errors.Is(err, keys.ErrMasterKeyInUse) {
		t.Fatalf("destroy the new current master key: %v", err)
	}

	destroyed, err := a.DestroyMasterKey(ctx, set1.MasterKCV)
	if err != nil || !destroyed {
		t.Fatalf("destroy the old master key: %v %v", destroyed, err)
	}
	if _, found, err := a.MasterKeyKCVAt(oldLabel); err != nil || found {
		t.Fatalf("old master key still present: %v %v", found, err)
	}
	if destroyed, err := a.DestroyMasterKey(ctx, set1.MasterKCV); err != nil || destroyed {
		t.Fatalf("destroy the old master key again: %v %v", destroyed, err)
	}
	if kcv, found, err := a.MasterKeyKCVAt(next); err != nil || !found || kcv != set2.MasterKCV {
		t.Fatalf("the current master key: %v %v %v", kcv, found, err)
	}
	if pt, err := a.Open(ctx, gcm, sealed, []byte("aad")); err != nil || string(pt) != "4111111111111111" {
		t.Fatalf("open after destroying the old master key: %v", err)
	}
	if wk, err := a.GenerateKey(ctx, keys.KeySpec{ID: "fresh", Version: 1, Type: keys.KeyHMACSHA256}); err != nil || wk.MasterKCV != set2.MasterKCV {
		t.Fatalf("generate after destroying the old master key: %v %v", wk, err)
	}
	a.Close()

	// Reopened under the old label: no master key there any more; the new
	// one is found by its label and loads the rewrapped blob, not the old.
	b := openHSM(t, tok, nil)
	if _, ok := b.MasterKeyKCV(); ok {
		t.Fatalf("reopened token still has a master key under %q", oldLabel)
	}
	if kcv, err := b.UseMasterKey(next); err != nil || kcv != set2.MasterKCV {
		t.Fatalf("use the new master key after reopening: %v %v", kcv, err)
	}
	if _, err := b.LoadWrapped(ctx, blob); err == nil {
		t.Fatalf("a blob under the destroyed master key loaded")
	}
	if _, err := b.LoadWrapped(ctx, rewrapped); err != nil {
		t.Fatalf("load the rewrapped blob: %v", err)
	}
	if pt, err := b.Open(ctx, gcm, sealed, []byte("aad")); err != nil || string(pt) != "4111111111111111" {
		t.Fatalf("open after reopening: %v", err)
	}
}
