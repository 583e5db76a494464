package vault_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

func TestSigning(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	admin := c.Admin(t, 0)
	for _, k := range []struct {
		name string
		typ  pb.KeyType
	}{
		{"sig-p384", pb.KeyType_KEY_TYPE_ECDSA_P384},
		{"sig-rsa", pb.KeyType_KEY_TYPE_RSA_3072},
		{"sig-hmac", pb.KeyType_KEY_TYPE_HMAC_SHA256},
	} {
		if _, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: k.name, Type: k.typ, Purpose: pb.KeyPurpose_KEY_PURPOSE_SIGNING}); err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	msg := []byte("pacs.008 payment message 0001")
	cases := []struct {
		key  string
		typ  keys.KeyType
		alg  pb.SignatureAlgorithm
		pair bool
	}{
		{vault.DevKeySigning, keys.KeyECDSAP256, pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_ECDSA_P256_SHA256, true},
		{"sig-p384", keys.KeyECDSAP384, pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_ECDSA_P384_SHA384, true},
		{"sig-rsa", keys.KeyRSA3072PSS, pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_RSA_PSS_SHA256, true},
		{"sig-hmac", keys.KeyHMACSHA256, pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_HMAC_SHA256, false},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			// Sign on one node, verify on the others.
			s, err := c.Signing(t, 1).Sign(ctx, &pb.SignRequest{Key: tc.key, Message: msg})
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if s.GetKey() != tc.key || s.GetKeyVersion() != 1 || s.GetAlgorithm() != tc.alg {
				t.Fatalf("sign reply names %s v%d %v", s.GetKey(), s.GetKeyVersion(), s.GetAlgorithm())
			}
			for i := range c.Nodes {
				v, err := c.Signing(t, i).Verify(ctx, &pb.VerifyRequest{Key: tc.key, KeyVersion: s.GetKeyVersion(), Message: msg, Signature: s.GetSignature()})
				if err != nil || !v.GetValid() || v.GetKeyVersion() != 1 || v.GetAlgorithm() != tc.alg {
					t.Fatalf("verify on node %d: valid=%v err=%v", i, v.GetValid(), err)
				}
				bad, err := c.Signing(t, i).Verify(ctx, &pb.VerifyRequest{Key: tc.key, Message: append([]byte("x"), msg...), Signature: s.GetSignature()})
				if err != nil || bad.GetValid() {
					t.Fatalf("verify of an altered message on node %d: valid=%v err=%v", i, bad.GetValid(), err)
				}
			}
			pk, err := c.Signing(t, 2).GetPublicKey(ctx, &pb.GetPublicKeyRequest{Key: tc.key})
			if !tc.pair {
				wantCode(t, err, codes.FailedPrecondition, "public key of an hmac key")
				return
			}
			if err != nil {
				t.Fatalf("get public key: %v", err)
			}
			if pk.GetKey() != tc.key || pk.GetKeyVersion() != 1 || pk.GetAlgorithm() != tc.alg {
				t.Fatalf("public key reply names %s v%d %v", pk.GetKey(), pk.GetKeyVersion(), pk.GetAlgorithm())
			}
			pub, err := x509.ParsePKIXPublicKey(pk.GetPublicKeyDer())
			if err != nil {
				t.Fatalf("parse public key: %v", err)
			}
			blk, _ := pem.Decode([]byte(pk.GetPublicKeyPem()))
			if blk == nil || blk.Type != "PUBLIC KEY" || string(blk.Bytes) != string(pk.GetPublicKeyDer()) {
				t.Fatalf("pem and der public keys differ")
			}
			// Verify in Go, with nothing but the public key.
			if err := keys.VerifySignature(tc.typ, pub, msg, s.GetSignature()); err != nil {
				t.Fatalf("go verification: %v", err)
			}
		})
	}

	t.Run("Refusals", func(t *testing.T) {
		_, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "sig-ed", Type: pb.KeyType_KEY_TYPE_ED25519, Purpose: pb.KeyPurpose_KEY_PURPOSE_SIGNING})
		wantCode(t, err, codes.FailedPrecondition, "ed25519 on softhsm")
		if reason(err) != "KEY_NOT_WRAPPABLE" {
			t.Fatalf("ed25519 reason %q", reason(err))
		}
		_, err = c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeyPAN, Message: msg})
		wantCode(t, err, codes.FailedPrecondition, "sign with a pan-encryption key")
		_, err = c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: "no-such-key", Message: msg})
		wantCode(t, err, codes.NotFound, "sign with an unknown key")
		_, err = c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, KeyVersion: 9, Message: msg})
		wantCode(t, err, codes.NotFound, "sign with an unknown version")
		_, err = c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning})
		wantCode(t, err, codes.InvalidArgument, "sign an empty message")
		_, err = c.Signing(t, 0).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: make([]byte, vault.MaxSignMessage+1)})
		wantCode(t, err, codes.InvalidArgument, "sign an oversized message")
		_, err = c.Signing(t, 0).Verify(ctx, &pb.VerifyRequest{Key: vault.DevKeySigning, Message: msg})
		wantCode(t, err, codes.InvalidArgument, "verify without a signature")
		_, err = c.Signing(t, 0).Verify(ctx, &pb.VerifyRequest{Key: vault.DevKeySigning, Message: msg, Signature: []byte("not der")})
		wantCode(t, err, codes.InvalidArgument, "verify a malformed signature")
		if v := violations(err); len(v) != 1 || v[0].GetField() != "signature" {
			t.Fatalf("malformed signature violations: %v", v)
		}
		_, err = c.Signing(t, 0).Verify(ctx, &pb.VerifyRequest{Key: "sig-rsa", Message: msg, Signature: make([]byte, 100)})
		wantCode(t, err, codes.InvalidArgument, "verify a short rsa signature")
	})
}
