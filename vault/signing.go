package vault

import (
	"context"
	"crypto/hmac"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// MaxSignMessage bounds the message of Sign and Verify (HMAC keys in the HSM
// take at most keys.MaxMACSize; the same cap for every type keeps the rule
// simple).
const MaxSignMessage = keys.MaxMACSize

// MaxSignature bounds a signature given to Verify (RSA-3072 is 384 bytes).
const MaxSignature = 1024

func checkSignMessage(msg []byte) error {
	if len(msg) == 0 {
		return fieldError("message", scheme.RuleRequired, "is required")
	}
	if len(msg) > MaxSignMessage {
		return fieldError("message", scheme.RuleAllowed, fmt.Sprintf("is longer than %d bytes", MaxSignMessage))
	}
	return nil
}

// Sign signs msg with version (0: latest) of signing key name.
func (n *Node) Sign(ctx context.Context, name string, version uint32, msg []byte) (*pb.SignResponse, error) {
	if err := checkName("key", name); err != nil {
		return nil, err
	}
	if err := checkSignMessage(msg); err != nil {
		return nil, err
	}
	kv, err := n.keyring.resolve(ctx, name, version, vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING, useSign)
	if err != nil {
		return nil, err
	}
	var sig []byte
	if kv.typ == keys.KeyHMACSHA256 {
		sig, err = n.hsm.HMAC(ctx, kv.ref, msg)
	} else {
		sig, err = n.hsm.Sign(ctx, kv.ref, msg)
	}
	if err != nil {
		return nil, err // keys names the key in its error
	}
	return &pb.SignResponse{Signature: sig, Key: name, KeyVersion: kv.ref.Version, Algorithm: signatureAlgorithm(kv.typ)}, nil
}

// Verify checks sig over msg under version (0: latest) of key name. An
// invalid signature is valid=false, not an error. Asymmetric signatures are
// checked in Go with the public key; HMACs are recomputed in the HSM and
// compared in constant time.
func (n *Node) Verify(ctx context.Context, name string, version uint32, msg, sig []byte) (*pb.VerifyResponse, error) {
	if err := checkName("key", name); err != nil {
		return nil, err
	}
	if err := checkSignMessage(msg); err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, fieldError("signature", scheme.RuleRequired, "is required")
	}
	if len(sig) > MaxSignature {
		return nil, fieldError("signature", scheme.RuleAllowed, fmt.Sprintf("is longer than %d bytes", MaxSignature))
	}
	kv, err := n.keyring.resolve(ctx, name, version, vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING, useVerify)
	if err != nil {
		return nil, err
	}
	if err := checkSignatureEncoding(kv.typ, sig); err != nil {
		return nil, err
	}
	resp := &pb.VerifyResponse{KeyVersion: kv.ref.Version, Algorithm: signatureAlgorithm(kv.typ)}
	if kv.typ == keys.KeyHMACSHA256 {
		mac, err := n.hsm.HMAC(ctx, kv.ref, msg)
		if err != nil {
			return nil, fmt.Errorf("mac with %s: %w", kv.ref, err)
		}
		resp.Valid = hmac.Equal(mac, sig)
		return resp, nil
	}
	pub, err := n.hsm.PublicKey(kv.ref)
	if err != nil {
		return nil, err
	}
	switch err := keys.VerifySignature(kv.typ, pub, msg, sig); {
	case err == nil:
		resp.Valid = true
	case errors.Is(err, keys.ErrBadSignature):
		resp.Valid = false
	default:
		return nil, err
	}
	return resp, nil
}

// checkSignatureEncoding refuses a signature that cannot be one of type t
// (INVALID_ARGUMENT), as opposed to a well-formed one that does not verify
// (valid=false): ECDSA signatures are one DER SEQUENCE of two positive
// INTEGERs, RSA-PSS signatures as long as the 3072-bit modulus, Ed25519
// signatures 64 bytes and HMAC-SHA256 tags 32 bytes.
func checkSignatureEncoding(t keys.KeyType, sig []byte) error {
	ok := false
	switch t {
	case keys.KeyECDSAP256, keys.KeyECDSAP384:
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(sig, &rs)
		ok = err == nil && len(rest) == 0 && rs.R.Sign() > 0 && rs.S.Sign() > 0
	case keys.KeyRSA3072PSS:
		ok = len(sig) == 3072/8
	case keys.KeyEd25519:
		ok = len(sig) == 64
	case keys.KeyHMACSHA256:
		ok = len(sig) == 32
	}
	if !ok {
		return fieldError("signature", scheme.RuleFormat, "is not a well-formed "+t.String()+" signature")
	}
	return nil
}

// GetPublicKey returns the public key of version (0: latest) of key pair
// name. HMAC keys have none (FAILED_PRECONDITION).
func (n *Node) GetPublicKey(ctx context.Context, name string, version uint32) (*pb.GetPublicKeyResponse, error) {
	if err := checkName("key", name); err != nil {
		return nil, err
	}
	kv, err := n.keyring.resolve(ctx, name, version, vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING, useVerify)
	if err != nil {
		return nil, err
	}
	if !kv.typ.IsPair() || len(kv.wrap.PublicKey) == 0 {
		return nil, fmt.Errorf("%w: key %q (%s) has no public key", ErrWrongPurpose, name, kv.typ)
	}
	der := kv.wrap.PublicKey
	return &pb.GetPublicKeyResponse{
		Key:          name,
		KeyVersion:   kv.ref.Version,
		KeyType:      apiKeyType(kv.typ),
		Algorithm:    signatureAlgorithm(kv.typ),
		PublicKeyDer: append([]byte(nil), der...),
		PublicKeyPem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}, nil
}
