package keys_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
)

// benchNode is one HSM with a master key and one key of each benchmarked type.
func benchNode(b *testing.B) (*keys.HSM, map[keys.KeyType]keys.KeyRef) {
	b.Helper()
	h, _ := newNode(b, "bench")
	set, err := h.GenerateComponents(context.Background(), 2)
	if err != nil {
		b.Fatal(err)
	}
	loadMK(b, h, set)
	refs := map[keys.KeyType]keys.KeyRef{}
	for _, typ := range []keys.KeyType{keys.KeyAES256GCM, keys.KeyAES256FF1, keys.KeyHMACSHA256, keys.KeyECDSAP256, keys.KeyRSA3072PSS} {
		wk, _ := generate(b, h, "bench-"+typ.String(), typ)
		refs[typ] = wk.Ref()
	}
	return h, refs
}

// benchBoth runs op through the pool from one goroutine ("pool") and from
// 4×GOMAXPROCS goroutines sharing the pool ("pool-parallel"), and raw on one
// dedicated session with direct PKCS#11 calls ("raw"), so the pool's
// overhead shows as the ratio pool/raw.
func benchBoth(b *testing.B, h *keys.HSM, ref keys.KeyRef, op func(ctx context.Context) error,
	raw func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error) {
	ctx := context.Background()
	b.Run("pool", func(b *testing.B) {
		for b.Loop() {
			if err := op(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pool-parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw", func(b *testing.B) {
		p, sh, key, release, err := keys.DedicatedForTest(ctx, h, ref)
		if err != nil {
			b.Fatal(err)
		}
		defer release()
		for b.Loop() {
			if err := raw(p, sh, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSealGCM128(b *testing.B) {
	h, refs := benchNode(b)
	ref := refs[keys.KeyAES256GCM]
	pt, aad, nonce := make([]byte, 128), []byte("scheme|token"), make([]byte, 12)
	benchBoth(b, h, ref,
		func(ctx context.Context) error { _, err := h.Seal(ctx, ref, pt, aad); return err },
		func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
			params := pkcs11.NewGCMParams(nonce, aad, 128)
			defer params.Free()
			if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
				return err
			}
			_, err := p.Encrypt(sh, pt)
			return err
		})
}

func BenchmarkHMAC(b *testing.B) {
	h, refs := benchNode(b)
	ref := refs[keys.KeyHMACSHA256]
	msg := []byte("4111111111111111")
	benchBoth(b, h, ref,
		func(ctx context.Context) error { _, err := h.HMAC(ctx, ref, msg); return err },
		func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
			if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, key); err != nil {
				return err
			}
			_, err := p.Sign(sh, msg)
			return err
		})
}

func BenchmarkSignECDSAP256(b *testing.B) {
	h, refs := benchNode(b)
	ref := refs[keys.KeyECDSAP256]
	msg := []byte("payment message to sign")
	benchBoth(b, h, ref,
		func(ctx context.Context) error { _, err := h.Sign(ctx, ref, msg); return err },
		func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
			d := sha256.Sum256(msg)
			if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, key); err != nil {
				return err
			}
			_, err := p.Sign(sh, d[:])
			return err
		})
}

func BenchmarkSignRSA3072(b *testing.B) {
	h, refs := benchNode(b)
	ref := refs[keys.KeyRSA3072PSS]
	msg := []byte("payment message to sign")
	benchBoth(b, h, ref,
		func(ctx context.Context) error { _, err := h.Sign(ctx, ref, msg); return err },
		func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
			d := sha256.Sum256(msg)
			params := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, keys.PSSSaltLength)
			if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}, key); err != nil {
				return err
			}
			_, err := p.Sign(sh, d[:])
			return err
		})
}

// BenchmarkECB: one PKCS#11 call over n independent blocks, the FF1 round
// shape. ns/block shows how the per-call cost is amortised.
func BenchmarkECB(b *testing.B) {
	h, refs := benchNode(b)
	ref := refs[keys.KeyAES256FF1]
	bc, err := h.BlockCipher(context.Background(), ref)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 16, 256, 4096} {
		src := make([]byte, 16*n)
		b.Run(fmt.Sprintf("blocks=%d", n), func(b *testing.B) {
			benchBoth(b, h, ref,
				func(ctx context.Context) error { return bc.EncryptBlocks(make([]byte, len(src)), src) },
				func(p keys.RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
					if err := p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, key); err != nil {
						return err
					}
					_, err := p.Encrypt(sh, src)
					return err
				})
		})
	}
}
