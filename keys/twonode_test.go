package keys_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"

	"github.com/panvault/panvault/keys"
)

var replicatedTypes = []keys.KeyType{
	keys.KeyAES256GCM, keys.KeyAES256FF1, keys.KeyHMACSHA256,
	keys.KeyECDSAP256, keys.KeyECDSAP384, keys.KeyRSA3072PSS,
}

// Two nodes, two tokens, one master key from the same components: a key
// generated on A and loaded from its blob on B behaves identically on both.
func TestTwoNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)

	refs := map[keys.KeyType]keys.KeyRef{}
	for _, typ := range replicatedTypes {
		wk, blob := generate(t, a, "two-"+typ.String(), typ)
		info, err := b.LoadWrapped(ctx, blob)
		if err != nil {
			t.Fatalf("%s: load on B: %v", typ, err)
		}
		if info.Ref != wk.Ref() || info.Type != typ || info.MasterKCV != wk.MasterKCV {
			t.Fatalf("%s: info %+v does not match blob", typ, info)
		}
		ia, _ := a.KeyInfo(wk.Ref())
		if typ.IsPair() {
			if info.Public == nil || fmt.Sprint(info.Public) != fmt.Sprint(ia.Public) {
				t.Fatalf("%s: public keys differ between nodes", typ)
			}
		} else if info.Public != nil {
			t.Fatalf("%s: secret key has a public key", typ)
		}
		refs[typ] = wk.Ref()
	}

	t.Run("gcm sealed on A opens on B", func(t *testing.T) {
		ref := refs[keys.KeyAES256GCM]
		pan, aad := []byte("4111111111111111"), []byte("scheme=s1|token=4111110000001111")
		ct, err := a.Seal(ctx, ref, pan, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != keys.GCMNonceSize+len(pan)+keys.GCMTagSize || bytes.Contains(ct, pan) {
			t.Fatalf("sealed form has length %d or contains the plaintext", len(ct))
		}
		pt, err := b.Open(ctx, ref, ct, aad)
		if err != nil || !bytes.Equal(pt, pan) {
			t.Fatalf("open on B: %v", err)
		}
		ct2, err := b.Seal(ctx, ref, pan, aad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ct, ct2) {
			t.Fatal("two seals produced the same ciphertext (nonce reuse)")
		}
		if pt, err := a.Open(ctx, ref, ct2, aad); err != nil || !bytes.Equal(pt, pan) {
			t.Fatalf("open on A of B's seal: %v", err)
		}
		if pt, err := a.Open(ctx, ref, ct, nil); !errors.Is(err, keys.ErrDecrypt) || pt != nil {
			t.Errorf("open with wrong aad: %v", err)
		}
		for _, i := range []int{0, keys.GCMNonceSize, len(ct) - 1} {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x01
			if _, err := b.Open(ctx, ref, bad, aad); !errors.Is(err, keys.ErrDecrypt) {
				t.Errorf("open with byte %d flipped: %v", i, err)
			}
		}
		if _, err := b.Open(ctx, ref, ct[:keys.GCMNonceSize+keys.GCMTagSize-1], aad); !errors.Is(err, keys.ErrDecrypt) {
			t.Errorf("open of truncated ciphertext: %v", err)
		}
		// A failed open leaves the session usable.
		if pt, err := b.Open(ctx, ref, ct, aad); err != nil || !bytes.Equal(pt, pan) {
			t.Fatalf("open after failures: %v", err)
		}
		empty, err := a.Seal(ctx, ref, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := b.Open(ctx, ref, empty, nil); err != nil || len(pt) != 0 {
			t.Fatalf("empty plaintext round trip: %v", err)
		}
	})

	t.Run("signature from B verifies with A's public key", func(t *testing.T) {
		for _, typ := range []keys.KeyType{keys.KeyECDSAP256, keys.KeyECDSAP384, keys.KeyRSA3072PSS} {
			ref := refs[typ]
			msg := []byte("payment message " + typ.String())
			sig, err := b.Sign(ctx, ref, msg)
			if err != nil {
				t.Fatalf("%s: sign on B: %v", typ, err)
			}
			pemA, err := a.PublicKeyPEM(ref)
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := pem.Decode(pemA)
			if blk == nil || blk.Type != "PUBLIC KEY" {
				t.Fatalf("%s: bad PEM from A", typ)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := keys.VerifySignature(typ, pub, msg, sig); err != nil {
				t.Fatalf("%s: B's signature does not verify with A's public key: %v", typ, err)
			}
			if err := keys.VerifySignature(typ, pub, append(msg, '!'), sig); !errors.Is(err, keys.ErrBadSignature) {
				t.Fatalf("%s: signature verified over another message: %v", typ, err)
			}
			derA, _ := a.PublicKeyDER(ref)
			derB, _ := b.PublicKeyDER(ref)
			if !bytes.Equal(derA, derB) {
				t.Fatalf("%s: DER public keys differ", typ)
			}
		}
	})

	t.Run("hmacs agree", func(t *testing.T) {
		ref := refs[keys.KeyHMACSHA256]
		for _, msg := range []string{"", "4111111111111111", "5500005555555559"} {
			ma, err := a.HMAC(ctx, ref, []byte(msg))
			if err != nil {
				t.Fatal(err)
			}
			mb, err := b.HMAC(ctx, ref, []byte(msg))
			if err != nil {
				t.Fatal(err)
			}
			if len(ma) != 32 || !bytes.Equal(ma, mb) {
				t.Fatalf("HMAC(%q) differs between nodes", msg)
			}
		}
		m1, _ := a.HMAC(ctx, ref, []byte("4111111111111111"))
		m2, _ := a.HMAC(ctx, ref, []byte("4111111111111112"))
		if bytes.Equal(m1, m2) {
			t.Fatal("different messages, same HMAC")
		}
	})

	t.Run("ecb batches agree", func(t *testing.T) {
		ref := refs[keys.KeyAES256FF1]
		for _, n := range []int{1, 16, 256, 4096} {
			src := make([]byte, n*16)
			for i := range src {
				src[i] = byte(i*7 + i/16)
			}
			da, db := make([]byte, len(src)), make([]byte, len(src))
			ca, err := a.BlockCipher(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.EncryptBlocks(da, src); err != nil {
				t.Fatalf("%d blocks on A: %v", n, err)
			}
			if err := b.EncryptBlocks(ctx, ref, db, src); err != nil {
				t.Fatalf("%d blocks on B: %v", n, err)
			}
			if !bytes.Equal(da, db) {
				t.Fatalf("%d blocks: A and B differ", n)
			}
			if bytes.Equal(da, src) {
				t.Fatalf("%d blocks: output equals input", n)
			}
			// Blocks are independent: each equals its own one-block encryption.
			for _, i := range []int{0, n / 2, n - 1} {
				one := make([]byte, 16)
				if err := b.EncryptBlocks(ctx, ref, one, src[16*i:16*i+16]); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(one, da[16*i:16*i+16]) {
					t.Fatalf("%d blocks: block %d differs from its single-block encryption", n, i)
				}
			}
		}
		bad := [][2]int{{0, 0}, {15, 15}, {32, 16}, {17, 17}}
		for _, l := range bad {
			if err := a.EncryptBlocks(ctx, ref, make([]byte, l[0]), make([]byte, l[1])); !errors.Is(err, keys.ErrInvalidInput) {
				t.Errorf("EncryptBlocks(dst %d, src %d): %v", l[0], l[1], err)
			}
		}
	})

	t.Run("wrong type and unknown key", func(t *testing.T) {
		if _, err := a.Seal(ctx, refs[keys.KeyAES256FF1], []byte("x"), nil); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Errorf("GCM with an FF1 key: %v", err)
		}
		if _, err := a.HMAC(ctx, refs[keys.KeyAES256GCM], []byte("x")); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Errorf("HMAC with a GCM key: %v", err)
		}
		if _, err := a.Sign(ctx, refs[keys.KeyHMACSHA256], []byte("x")); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Errorf("Sign with an HMAC key: %v", err)
		}
		if _, err := a.BlockCipher(ctx, refs[keys.KeyAES256GCM]); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Errorf("BlockCipher of a GCM key: %v", err)
		}
		if _, err := a.PublicKey(refs[keys.KeyAES256GCM]); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Errorf("PublicKey of a GCM key: %v", err)
		}
		missing := keys.KeyRef{ID: "nope", Version: 9}
		if _, err := a.Seal(ctx, missing, []byte("x"), nil); !errors.Is(err, keys.ErrKeyNotFound) {
			t.Errorf("Seal with unknown key: %v", err)
		}
		if _, err := a.Sign(ctx, missing, []byte("x")); !errors.Is(err, keys.ErrKeyNotFound) {
			t.Errorf("Sign with unknown key: %v", err)
		}
	})

	t.Run("load is idempotent, ids are unique", func(t *testing.T) {
		wk, blob := generate(t, a, "idem", keys.KeyHMACSHA256)
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatal(err)
		}
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatalf("loading the same blob twice: %v", err)
		}
		if _, err := a.GenerateKey(ctx, keys.KeySpec{ID: wk.ID, Version: wk.Version, Type: keys.KeyHMACSHA256}); !errors.Is(err, keys.ErrKeyExists) {
			t.Fatalf("generating an existing id/version: %v", err)
		}
		// Another key under the same id and version (made on B) is refused on A.
		if err := b.Unload(wk.Ref()); err != nil {
			t.Fatal(err)
		}
		_, other := generate(t, b, "idem", keys.KeyHMACSHA256)
		if _, err := a.LoadWrapped(ctx, other); !errors.Is(err, keys.ErrKeyExists) {
			t.Fatalf("loading a different key under a loaded id/version: %v", err)
		}
		if _, err := b.Sign(ctx, wk.Ref(), nil); !errors.Is(err, keys.ErrWrongKeyType) {
			t.Fatalf("reloaded key: %v", err)
		}
	})

	t.Run("unload", func(t *testing.T) {
		_, blob := generate(t, a, "unload-me", keys.KeyAES256GCM)
		info, err := b.LoadWrapped(ctx, blob)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Unload(info.Ref); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Seal(ctx, info.Ref, []byte("x"), nil); !errors.Is(err, keys.ErrKeyNotFound) {
			t.Fatalf("seal after unload: %v", err)
		}
		if err := b.Unload(info.Ref); !errors.Is(err, keys.ErrKeyNotFound) {
			t.Fatalf("second unload: %v", err)
		}
	})

	t.Run("random", func(t *testing.T) {
		r1, err := a.Random(ctx, 32)
		if err != nil || len(r1) != 32 {
			t.Fatalf("Random: %d bytes, %v", len(r1), err)
		}
		r2, _ := a.Random(ctx, 32)
		if bytes.Equal(r1, r2) {
			t.Fatal("two random draws are equal")
		}
		if _, err := a.Random(ctx, 0); !errors.Is(err, keys.ErrInvalidInput) {
			t.Errorf("Random(0): %v", err)
		}
	})
}

// Ed25519 keys cannot be replicated on SoftHSM 2.6.1: a clear error, no
// software fallback, nothing loaded.
func TestEd25519NotWrappable(t *testing.T) {
	a, _, _ := twoNodes(t)
	ctx := testCtx(t)
	ref := keys.KeyRef{ID: "ed", Version: 1}
	_, err := a.GenerateKey(ctx, keys.KeySpec{ID: ref.ID, Version: ref.Version, Type: keys.KeyEd25519})
	if !errors.Is(err, keys.ErrNotWrappable) {
		t.Fatalf("GenerateKey(ed25519) = %v, want ErrNotWrappable", err)
	}
	if _, err := a.KeyInfo(ref); !errors.Is(err, keys.ErrKeyNotFound) {
		t.Fatalf("an ed25519 key was loaded: %v", err)
	}
	if _, err := a.Sign(ctx, ref, []byte("m")); !errors.Is(err, keys.ErrKeyNotFound) {
		t.Fatalf("Sign with the refused key: %v", err)
	}
}

// A token with a different master key cannot load the blob: a clear error
// naming both KCVs, and nothing is loaded. Even a blob whose header lies
// about the master key cannot pass the tag check.
func TestDifferentMasterKeyCannotUnwrap(t *testing.T) {
	a, _, setA := twoNodes(t)
	c, _ := newNode(t, "node-c")
	ctx := testCtx(t)
	setC, err := c.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, c, setC)
	if setA.MasterKCV == setC.MasterKCV {
		t.Fatal("two random master keys share a KCV")
	}
	for _, typ := range []keys.KeyType{keys.KeyAES256GCM, keys.KeyECDSAP256} {
		wk, blob := generate(t, a, "mk-"+typ.String(), typ)
		_, err := c.LoadWrapped(ctx, blob)
		if !errors.Is(err, keys.ErrMasterKeyMismatch) {
			t.Fatalf("%s: load under another master key: %v", typ, err)
		}
		for _, want := range []string{setA.MasterKCV.String(), setC.MasterKCV.String(), wk.ID} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("%s: error %q should mention %s", typ, err, want)
			}
		}
		// The header claims C's master key: the tag (made under A's) fails.
		lie := *wk
		lie.MasterKCV = setC.MasterKCV
		lieBlob, _ := lie.Marshal()
		if _, err := c.LoadWrapped(ctx, lieBlob); !errors.Is(err, keys.ErrBlobAuth) {
			t.Fatalf("%s: header claiming C's master key: %v", typ, err)
		}
		// Even re-tagged under C's master key, the RFC 5649 unwrap fails.
		if err := keys.RetagForTest(ctx, c, &lie); err != nil {
			t.Fatal(err)
		}
		lieBlob, _ = lie.Marshal()
		if _, err := c.LoadWrapped(ctx, lieBlob); !errors.Is(err, keys.ErrBlobAuth) {
			t.Fatalf("%s: ciphertext under A's master key, tag under C's: %v", typ, err)
		}
		if _, err := c.KeyInfo(wk.Ref()); !errors.Is(err, keys.ErrKeyNotFound) {
			t.Fatalf("%s: key loaded on C after refusal", typ)
		}
	}
	if n := len(c.Keys()); n != 0 {
		t.Fatalf("C has %d keys loaded", n)
	}
}
