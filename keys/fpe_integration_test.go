package keys_test

import (
	"testing"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/keys/fpe"
)

// The HSM block cipher is what keys/fpe runs on in production: FF1 over an
// FF1 key replicated to two nodes gives the same tokens on both.
func TestFF1OverHSM(t *testing.T) {
	var _ fpe.BlockCipher = (*keys.BlockCipher)(nil)
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	wk, blob := generate(t, a, "ff1", keys.KeyAES256FF1)
	if _, err := b.LoadWrapped(ctx, blob); err != nil {
		t.Fatal(err)
	}
	ca, err := a.BlockCipher(ctx, wk.Ref())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.BlockCipher(ctx, wk.Ref())
	if err != nil {
		t.Fatal(err)
	}
	fa, err := fpe.NewFF1(ca, 10)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fpe.NewFF1(cb, 10)
	if err != nil {
		t.Fatal(err)
	}
	tweak := []byte("scheme-1")
	for _, mid := range []string{"000000", "123456", "999999", "4111110000"} {
		ct, err := fa.EncryptString(tweak, mid)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(mid) {
			t.Fatalf("FF1 changed the length: %q -> %q", mid, ct)
		}
		ct2, err := fb.EncryptString(tweak, mid)
		if err != nil {
			t.Fatal(err)
		}
		if ct != ct2 {
			t.Fatalf("nodes disagree on FF1(%q)", mid)
		}
		pt, err := fb.DecryptString(tweak, ct)
		if err != nil || pt != mid {
			t.Fatalf("FF1 round trip on the other node: %q, %v", pt, err)
		}
	}
}
