package keys_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/panvault/panvault/keys"
)

// TestMasterKeyRotation stages a new master key on two nodes, rewraps
// working keys under it on one, switches both, and checks that keys keep
// working throughout, that the rewrapped blobs hold the same keys (a third
// HSM holding only the new master key opens what the old blobs sealed), and
// the refusals: wrong component KCV, wrong master KCV, unknown label,
// tampered blob.
func TestMasterKeyRotation(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	specs := []struct {
		id  string
		typ keys.KeyType
	}{{"gcm", keys.KeyAES256GCM}, {"mac", keys.KeyHMACSHA256}, {"sig", keys.KeyECDSAP256}, {"ff1", keys.KeyAES256FF1}}
	blobs := map[string][]byte{}
	for _, s := range specs {
		_, blob := generate(t, a, s.id, s.typ)
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatalf("load %s on b: %v", s.id, err)
		}
		blobs[s.id] = blob
	}
	gcm := keys.KeyRef{ID: "gcm", Version: 1}
	sealed, err := b.Seal(ctx, gcm, []byte("4111111111111111"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	mac1, err := b.HMAC(ctx, keys.KeyRef{ID: "mac", Version: 1}, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}

	set2, err := a.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set2.Zero)
	const next = "panvault-master-key-next"

	// Refusals: a component with a wrong KCV (named), a wrong master KCV
	// (nothing stored), the current label.
	bad := copyComponents(t, set2)
	wrong, err := keys.NewComponent(append([]byte(nil), set2.Components[0].Bytes()...), set2.Components[1].KCV())
	if err != nil {
		t.Fatal(err)
	}
	bad[1] = wrong
	var ce *keys.ComponentError
	if _, err := a.StageMasterKey(ctx, next, bad, set2.MasterKCV); !errors.As(err, &ce) || ce.Index != 2 || !errors.Is(err, keys.ErrKCVMismatch) {
		t.Fatalf("stage with a wrong component kcv: %v", err)
	}
	if _, err := a.StageMasterKey(ctx, next, copyComponents(t, set2), keys.KCV{1, 2, 3}); !errors.Is(err, keys.ErrKCVMismatch) {
		t.Fatalf("stage with a wrong master kcv: %v", err)
	}
	if _, found, err := a.MasterKeyKCVAt(next); err != nil || found {
		t.Fatalf("a refused master key was stored: %v %v", found, err)
	}
	if _, err := a.StageMasterKey(ctx, a.MasterKeyLabel(), copyComponents(t, set2), set2.MasterKCV); !errors.Is(err, keys.ErrMasterKeyExists) {
		t.Fatalf("stage under the current label: %v", err)
	}
	for _, h := range []*keys.HSM{a, b} {
		created, err := h.StageMasterKey(ctx, next, copyComponents(t, set2), set2.MasterKCV)
		if err != nil || !created {
			t.Fatalf("stage: %v %v", created, err)
		}
		if created, err := h.StageMasterKey(ctx, next, copyComponents(t, set2), set2.MasterKCV); err != nil || created {
			t.Fatalf("stage again: %v %v", created, err)
		}
		if kcv, found, err := h.MasterKeyKCVAt(next); err != nil || !found || kcv != set2.MasterKCV {
			t.Fatalf("staged kcv: %v %v %v", kcv, found, err)
		}
	}
	old, _ := a.MasterKeyKCV()

	// Rewrap on a; the current master key is unchanged meanwhile.
	rewrapped := map[string][]byte{}
	for _, s := range specs {
		nb, err := a.Rewrap(ctx, blobs[s.id], next)
		if err != nil {
			t.Fatalf("rewrap %s: %v", s.id, err)
		}
		wk, err := keys.ParseWrappedKey(nb)
		if err != nil || wk.MasterKCV != set2.MasterKCV || wk.Ref() != (keys.KeyRef{ID: s.id, Version: 1}) {
			t.Fatalf("rewrapped %s: %v %v", s.id, wk, err)
		}
		rewrapped[s.id] = nb
	}
	if _, err := a.Rewrap(ctx, blobs["gcm"], "no-such-label"); !errors.Is(err, keys.ErrMasterKeyMissing) {
		t.Fatalf("rewrap under a missing master key: %v", err)
	}
	tampered := bytes.Clone(blobs["gcm"])
	tampered[len(tampered)-1] ^= 1
	if _, err := a.Rewrap(ctx, tampered, next); !errors.Is(err, keys.ErrBlobAuth) && !errors.Is(err, keys.ErrMalformedBlob) {
		t.Fatalf("rewrap of a tampered blob: %v", err)
	}
	if kcv, _ := a.MasterKeyKCV(); kcv != old {
		t.Fatalf("master key changed before UseMasterKey")
	}
	if _, err := b.UseMasterKey("no-such-label"); !errors.Is(err, keys.ErrMasterKeyMissing) {
		t.Fatalf("use a missing master key: %v", err)
	}
	if kcv, _ := b.MasterKeyKCV(); kcv != old {
		t.Fatalf("a failed switch changed the master key")
	}

	// Switch b and swap its blobs; its keys keep working.
	if kcv, err := b.UseMasterKey(next); err != nil || kcv != set2.MasterKCV {
		t.Fatalf("use master key: %v %v", kcv, err)
	}
	if b.MasterKeyLabel() != next {
		t.Fatalf("label after switch: %s", b.MasterKeyLabel())
	}
	for _, s := range specs {
		if err := b.ReplaceBlob(ctx, rewrapped[s.id]); err != nil {
			t.Fatalf("replace blob %s: %v", s.id, err)
		}
		if err := b.ReplaceBlob(ctx, rewrapped[s.id]); err != nil {
			t.Fatalf("replace blob %s again: %v", s.id, err)
		}
		if info, _ := b.KeyInfo(keys.KeyRef{ID: s.id, Version: 1}); info.MasterKCV != set2.MasterKCV {
			t.Fatalf("%s: key info names %s", s.id, info.MasterKCV)
		}
	}
	if err := b.ReplaceBlob(ctx, blobs["gcm"]); !errors.Is(err, keys.ErrMasterKeyMismatch) {
		t.Fatalf("replace with a blob under the old master key: %v", err)
	}
	pt, err := b.Open(ctx, gcm, sealed, []byte("aad"))
	if err != nil || string(pt) != "4111111111111111" {
		t.Fatalf("open after the switch: %v", err)
	}
	if _, err := b.Sign(ctx, keys.KeyRef{ID: "sig", Version: 1}, []byte("m")); err != nil {
		t.Fatalf("sign after the switch: %v", err)
	}
	wk, err := b.GenerateKey(ctx, keys.KeySpec{ID: "fresh", Version: 1, Type: keys.KeyAES256GCM})
	if err != nil || wk.MasterKCV != set2.MasterKCV {
		t.Fatalf("new key after the switch: %v %v", wk, err)
	}
	if err := b.ReplaceBlob(ctx, rewrapped["gcm"][:10]); err == nil {
		t.Fatalf("replace with a truncated blob succeeded")
	}
	if err := b.Unload(gcm); err != nil {
		t.Fatalf("unload after replace: %v", err)
	}
	if err := b.ReplaceBlob(ctx, rewrapped["gcm"]); !errors.Is(err, keys.ErrKeyNotFound) {
		t.Fatalf("replace blob of an unloaded key: %v", err)
	}

	// A third HSM with only the new master key: the rewrapped blobs are the
	// same keys.
	c, _ := newNode(t, "node-c")
	loadMK(t, c, set2)
	for _, s := range specs {
		if _, err := c.LoadWrapped(ctx, rewrapped[s.id]); err != nil {
			t.Fatalf("load rewrapped %s on c: %v", s.id, err)
		}
		if _, err := c.LoadWrapped(ctx, blobs[s.id]); err == nil {
			t.Fatalf("c loaded an old blob of %s without the old master key", s.id)
		}
	}
	pt, err = c.Open(ctx, gcm, sealed, []byte("aad"))
	if err != nil || string(pt) != "4111111111111111" {
		t.Fatalf("c opens what the old key sealed: %v", err)
	}
	mac2, err := c.HMAC(ctx, keys.KeyRef{ID: "mac", Version: 1}, []byte("m"))
	if err != nil || !bytes.Equal(mac1, mac2) {
		t.Fatalf("hmac under the rewrapped key differs: %v", err)
	}
}
