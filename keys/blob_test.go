package keys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/panvault/panvault/keys"
)

// sampleBlob builds a structurally valid blob without an HSM (fake
// ciphertext and tag): enough for the parser.
func sampleBlob(t testing.TB, typ keys.KeyType) []byte {
	t.Helper()
	wk := &keys.WrappedKey{ID: "sample-key", Version: 7, Type: typ, MasterKCV: keys.KCV{1, 2, 3},
		Wrapped: bytes.Repeat([]byte{0x5a}, 40), Tag: bytes.Repeat([]byte{0x11}, 16)}
	if typ.IsPair() {
		var curve elliptic.Curve = elliptic.P256()
		if typ == keys.KeyECDSAP384 {
			curve = elliptic.P384()
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		wk.PublicKey, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		wk.Wrapped = bytes.Repeat([]byte{0x5a}, 80)
	}
	b, err := wk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWrappedKeyStrict(t *testing.T) {
	good := sampleBlob(t, keys.KeyAES256GCM)
	wk, err := keys.ParseWrappedKey(good)
	if err != nil {
		t.Fatal(err)
	}
	if wk.ID != "sample-key" || wk.Version != 7 || wk.Type != keys.KeyAES256GCM || wk.MasterKCV != (keys.KCV{1, 2, 3}) {
		t.Fatalf("parsed %+v", wk)
	}
	// Every truncation is refused.
	for n := 0; n < len(good); n++ {
		if _, err := keys.ParseWrappedKey(good[:n]); !errors.Is(err, keys.ErrMalformedBlob) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	pair := sampleBlob(t, keys.KeyECDSAP256)
	for n := 0; n < len(pair); n++ {
		if _, err := keys.ParseWrappedKey(pair[:n]); !errors.Is(err, keys.ErrMalformedBlob) {
			t.Fatalf("pair truncated to %d bytes: %v", n, err)
		}
	}
	idOff := 8 // magic 4, format 1, type 1, idLen 2
	verOff := idOff + len("sample-key")
	pubLenOff := verOff + 4 + 3
	wrapLenOff := pubLenOff + 2
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"trailing byte":     append(bytes.Clone(good), 0),
		"bad magic":         mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"format 2":          mut(func(b []byte) []byte { b[4] = 2; return b }),
		"format 0":          mut(func(b []byte) []byte { b[4] = 0; return b }),
		"unknown type":      mut(func(b []byte) []byte { b[5] = 99; return b }),
		"type 0":            mut(func(b []byte) []byte { b[5] = 0; return b }),
		"pair without pub":  mut(func(b []byte) []byte { b[5] = byte(keys.KeyECDSAP256); return b }),
		"bad id byte":       mut(func(b []byte) []byte { b[idOff] = ' '; return b }),
		"version 0":         mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[verOff:], 0); return b }),
		"id length longer":  mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 11); return b }),
		"wrap length short": mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[wrapLenOff:], 32); return b }),
		"empty id": func() []byte {
			b := append([]byte(nil), good[:6]...)
			b = append(b, 0, 0)
			return append(b, good[verOff:]...)
		}(),
		"secret key with pub": func() []byte {
			b := append([]byte(nil), good[:pubLenOff]...)
			b = append(b, 0, 3, 1, 2, 3)
			return append(b, good[wrapLenOff:]...)
		}(),
		"p256 pub under p384 type": func() []byte {
			b := bytes.Clone(pair)
			b[5] = byte(keys.KeyECDSAP384)
			return b
		}(),
		"wrapped not multiple of 8": func() []byte {
			b := append([]byte(nil), good[:wrapLenOff]...)
			b = binary.BigEndian.AppendUint16(b, 41)
			b = append(b, bytes.Repeat([]byte{1}, 41)...)
			return append(b, good[len(good)-16:]...)
		}(),
	}
	for name, b := range cases {
		if _, err := keys.ParseWrappedKey(b); !errors.Is(err, keys.ErrMalformedBlob) {
			t.Errorf("%s: %v, want ErrMalformedBlob", name, err)
		}
	}
	if _, err := (&keys.WrappedKey{ID: "x", Version: 1, Type: keys.KeyAES256GCM}).Marshal(); !errors.Is(err, keys.ErrMalformedBlob) {
		t.Errorf("Marshal of an empty WrappedKey: %v", err)
	}
}

// FuzzParseWrappedKey: the parser never panics, and whatever it accepts
// re-encodes to the same bytes (the encoding is canonical).
func FuzzParseWrappedKey(f *testing.F) {
	for _, typ := range []keys.KeyType{keys.KeyAES256GCM, keys.KeyHMACSHA256, keys.KeyECDSAP256, keys.KeyECDSAP384} {
		f.Add(sampleBlob(f, typ))
	}
	f.Add([]byte("PVWK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wk, err := keys.ParseWrappedKey(b)
		if err != nil {
			if !errors.Is(err, keys.ErrMalformedBlob) {
				t.Fatalf("error %v does not wrap ErrMalformedBlob", err)
			}
			return
		}
		out, err := wk.Marshal()
		if err != nil {
			t.Fatalf("parsed blob does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// Real blobs altered anywhere, structurally valid or not, are refused with a
// clear error, and nothing is loaded.
func TestAlteredBlobs(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	gcm, _ := generate(t, a, "alter-gcm", keys.KeyAES256GCM)
	ec, _ := generate(t, a, "alter-ec", keys.KeyECDSAP256)
	ec2, _ := generate(t, a, "alter-ec2", keys.KeyECDSAP256)
	rsa, _ := generate(t, a, "alter-rsa", keys.KeyRSA3072PSS)

	type variant struct {
		name string
		wk   keys.WrappedKey
		want error
	}
	edit := func(w *keys.WrappedKey, f func(*keys.WrappedKey)) keys.WrappedKey {
		c := *w
		c.PublicKey = bytes.Clone(w.PublicKey)
		c.Wrapped = bytes.Clone(w.Wrapped)
		c.Tag = bytes.Clone(w.Tag)
		f(&c)
		return c
	}
	vs := []variant{
		{"id changed", edit(gcm, func(w *keys.WrappedKey) { w.ID = "alter-gcm2" }), keys.ErrBlobAuth},
		{"version changed", edit(gcm, func(w *keys.WrappedKey) { w.Version = 2 }), keys.ErrBlobAuth},
		{"gcm relabelled ff1", edit(gcm, func(w *keys.WrappedKey) { w.Type = keys.KeyAES256FF1 }), keys.ErrBlobAuth},
		{"gcm relabelled hmac", edit(gcm, func(w *keys.WrappedKey) { w.Type = keys.KeyHMACSHA256 }), keys.ErrBlobAuth},
		{"wrapped byte flipped", edit(gcm, func(w *keys.WrappedKey) { w.Wrapped[3] ^= 1 }), keys.ErrBlobAuth},
		{"tag byte flipped", edit(gcm, func(w *keys.WrappedKey) { w.Tag[15] ^= 1 }), keys.ErrBlobAuth},
		{"master kcv changed", edit(gcm, func(w *keys.WrappedKey) { w.MasterKCV[2] ^= 1 }), keys.ErrMasterKeyMismatch},
		{"public key swapped", edit(ec, func(w *keys.WrappedKey) { w.PublicKey = ec2.PublicKey }), keys.ErrBlobAuth},
		{"rsa wrapped byte flipped", edit(rsa, func(w *keys.WrappedKey) { w.Wrapped[100] ^= 1 }), keys.ErrBlobAuth},
	}
	for _, v := range vs {
		blob, err := v.wk.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if _, err := b.LoadWrapped(ctx, blob); !errors.Is(err, v.want) {
			t.Errorf("%s: %v, want %v", v.name, err, v.want)
		}
	}

	// Behind the tag: re-tagged under the real master key, the other checks
	// still catch each alteration.
	behind := []variant{
		{"wrapped byte flipped, re-tagged (RFC 5649 integrity)", edit(gcm, func(w *keys.WrappedKey) { w.Wrapped[20] ^= 1 }), keys.ErrBlobAuth},
		{"rsa wrapped byte flipped, re-tagged", edit(rsa, func(w *keys.WrappedKey) { w.Wrapped[len(w.Wrapped)-1] ^= 1 }), keys.ErrBlobAuth},
		{"ec public key swapped, re-tagged (test signature)", edit(ec, func(w *keys.WrappedKey) { w.PublicKey = ec2.PublicKey }), keys.ErrBlobAuth},
		{"ec wrapped as p384, re-tagged (curve check)", edit(ec, func(w *keys.WrappedKey) {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			w.Type = keys.KeyECDSAP384
			w.PublicKey, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		}), keys.ErrBlobAuth},
		{"ec relabelled rsa, re-tagged", edit(ec, func(w *keys.WrappedKey) { w.Type = keys.KeyRSA3072PSS; w.PublicKey = rsa.PublicKey }), keys.ErrBlobAuth},
	}
	for _, v := range behind {
		if err := keys.RetagForTest(ctx, b, &v.wk); err != nil {
			t.Fatal(err)
		}
		blob, err := v.wk.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if _, err := b.LoadWrapped(ctx, blob); !errors.Is(err, v.want) {
			t.Errorf("%s: %v, want %v", v.name, err, v.want)
		}
	}
	// Truncated real blob.
	good, _ := gcm.Marshal()
	if _, err := b.LoadWrapped(ctx, good[:len(good)-1]); !errors.Is(err, keys.ErrMalformedBlob) {
		t.Errorf("truncated blob: %v", err)
	}
	if n := len(b.Keys()); n != 0 {
		t.Fatalf("%d keys loaded on B after only bad blobs", n)
	}
	// The untouched blobs still load.
	for _, wk := range []*keys.WrappedKey{gcm, ec, rsa} {
		blob, _ := wk.Marshal()
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatalf("%s: good blob refused: %v", wk.ID, err)
		}
	}
}
