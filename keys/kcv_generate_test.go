package keys_test

import (
	"bytes"
	"testing"

	"github.com/panvault/panvault/keys"
)

// GenerateKey gives AES keys their KCV, the first three bytes of AES-CMAC of
// a zero block under the key. Checked independently for the FF1 key, whose
// loaded copy may encrypt blocks: CMAC of one full zero block is
// E(K, K1) with K1 = dbl(E(K, 0)) (NIST SP 800-38B). Other key types have
// none.
func TestGeneratedAESKeysCarryTheirKCV(t *testing.T) {
	h, _ := newNode(t, "kcv")
	set, err := h.GenerateComponents(testCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, h, set)
	ctx := testCtx(t)
	kcvs := map[keys.KCV]bool{}
	for _, kt := range []keys.KeyType{keys.KeyAES256FF1, keys.KeyAES256GCM, keys.KeyHMACSHA256, keys.KeyECDSAP256} {
		wk, err := h.GenerateKey(ctx, keys.KeySpec{ID: "k-" + kt.String(), Version: 1, Type: kt})
		if err != nil {
			t.Fatalf("generate %s: %v", kt, err)
		}
		aes := kt == keys.KeyAES256FF1 || kt == keys.KeyAES256GCM
		if (wk.CheckValue != nil) != aes {
			t.Fatalf("%s: check value present %v, want %v", kt, wk.CheckValue != nil, aes)
		}
		if !aes {
			continue
		}
		if kcvs[*wk.CheckValue] {
			t.Fatalf("%s: KCV %s repeats another key's", kt, wk.CheckValue)
		}
		kcvs[*wk.CheckValue] = true
		if kt != keys.KeyAES256FF1 {
			continue
		}
		l := make([]byte, 16)
		if err := h.EncryptBlocks(ctx, wk.Ref(), l, make([]byte, 16)); err != nil {
			t.Fatal(err)
		}
		k1 := dbl(l)
		tag := make([]byte, 16)
		if err := h.EncryptBlocks(ctx, wk.Ref(), tag, k1); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tag[:3], wk.CheckValue[:]) {
			t.Fatalf("KCV %s, CMAC of a zero block computed through ECB starts %X", wk.CheckValue, tag[:3])
		}
	}
	// A parsed blob carries none: the KCV travels with the key's metadata.
	wk, err := h.GenerateKey(ctx, keys.KeySpec{ID: "k-parsed", Version: 1, Type: keys.KeyAES256GCM})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := wk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := keys.ParseWrappedKey(blob)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.CheckValue != nil {
		t.Fatal("a parsed blob has a check value")
	}
}
