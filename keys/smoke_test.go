package keys_test

import (
	"bytes"
	"testing"

	"github.com/panvault/panvault/keys"
)

func TestSmoke(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	for _, typ := range []keys.KeyType{keys.KeyAES256GCM, keys.KeyAES256FF1, keys.KeyHMACSHA256, keys.KeyECDSAP256, keys.KeyECDSAP384, keys.KeyRSA3072PSS} {
		wk, blob := generate(t, a, "k-"+typ.String(), typ)
		info, err := b.LoadWrapped(ctx, blob)
		if err != nil {
			t.Fatalf("%s: load on b: %v", typ, err)
		}
		t.Logf("%s: blob %d bytes, info %v", typ, len(blob), info.Ref)
		ref := wk.Ref()
		switch typ {
		case keys.KeyAES256GCM:
			ct, err := a.Seal(ctx, ref, []byte("4111111111111111"), []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := b.Open(ctx, ref, ct, []byte("aad"))
			if err != nil || string(pt) != "4111111111111111" {
				t.Fatalf("open: %v", err)
			}
		case keys.KeyHMACSHA256:
			m1, err1 := a.HMAC(ctx, ref, []byte("x"))
			m2, err2 := b.HMAC(ctx, ref, []byte("x"))
			if err1 != nil || err2 != nil || !bytes.Equal(m1, m2) {
				t.Fatalf("hmac %v %v", err1, err2)
			}
		case keys.KeyAES256FF1:
			src := make([]byte, 64)
			d1, d2 := make([]byte, 64), make([]byte, 64)
			if err := a.EncryptBlocks(ctx, ref, d1, src); err != nil {
				t.Fatal(err)
			}
			if err := b.EncryptBlocks(ctx, ref, d2, src); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d1, d2) {
				t.Fatal("ecb differs")
			}
		default:
			sig, err := b.Sign(ctx, ref, []byte("msg"))
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := a.PublicKey(ref)
			if err := keys.VerifySignature(typ, pub, []byte("msg"), sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := a.GenerateKey(ctx, keys.KeySpec{ID: "ed", Version: 1, Type: keys.KeyEd25519})
	t.Logf("ed25519: %v", err)
}
