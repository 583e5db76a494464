package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	"github.com/miekg/pkcs11"
)

// GenerateKey creates a working key inside the HSM, wraps it under the
// master key and loads the wrapped form, so that the key is usable on this
// HSM exactly as on any other that loads the returned blob.
//
// The key is generated as an extractable session object with no usage,
// wrapped once (CKM_AES_KEY_WRAP_PAD; private keys are wrapped by the HSM as
// PKCS#8), and destroyed; only its unwrapped, non-extractable copy is used.
// Its bytes are never in this process's memory.
//
// If the HSM cannot wrap the key type (SoftHSM 2.6.1 and Ed25519) the call
// fails with ErrNotWrappable; there is no software fallback.
func (h *HSM) GenerateKey(ctx context.Context, spec KeySpec) (*WrappedKey, error) {
	if err := validKeyRef(spec.Ref()); err != nil {
		return nil, err
	}
	if !spec.Type.Valid() {
		return nil, fmt.Errorf("%w: unknown key type %d", ErrInvalidInput, spec.Type)
	}
	if _, err := h.KeyInfo(spec.Ref()); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrKeyExists, spec.Ref())
	}
	if _, _, err := h.requireMasterKey(); err != nil {
		return nil, fmt.Errorf("generate %s: %w", spec.Ref(), err)
	}
	var wk *WrappedKey
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		var err error
		wk, err = h.generateWrapped(sh, spec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("generate %s (%s): %w", spec.Ref(), spec.Type, err)
	}
	blob, err := wk.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := h.load(wk, blob); err != nil {
		return nil, err
	}
	return wk, nil
}

// generateWrapped generates, wraps and destroys the key on session sh.
func (h *HSM) generateWrapped(sh pkcs11.SessionHandle, spec KeySpec) (wk *WrappedKey, err error) {
	mk, mkKCV, err := h.masterKey()
	if err != nil {
		return nil, err
	}
	var objs []pkcs11.ObjectHandle
	defer func() {
		for _, o := range objs {
			if derr := h.p.DestroyObject(sh, o); derr != nil && err == nil {
				// Returning an error evicts the session, which destroys
				// its session objects.
				wk, err = nil, fmt.Errorf("destroy generated object: %w", derr)
			}
		}
	}()

	var secret pkcs11.ObjectHandle
	var pubDER []byte
	m := mech(generateMechanism(spec.Type), nil)
	if spec.Type.IsPair() {
		pubH, privH, err := h.p.GenerateKeyPair(sh, m, publicTemplate(spec.Type), generateTemplate(spec.Type))
		if err != nil {
			return nil, fmt.Errorf("generate key pair: %w", err)
		}
		objs = append(objs, pubH, privH)
		var pub crypto.PublicKey
		if pub, err = readPublic(h.p, sh, spec.Type, pubH); err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		if pubDER, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, fmt.Errorf("%w: encode public key: %w", ErrInvalidInput, err)
		}
		secret = privH
	} else {
		kh, err := h.p.GenerateKey(sh, m, generateTemplate(spec.Type))
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		objs = append(objs, kh)
		secret = kh
	}
	var check *KCV
	if class, kt := keyClass(spec.Type); class == pkcs11.CKO_SECRET_KEY && kt == pkcs11.CKK_AES {
		k, err := kcvOf(h.p, sh, secret)
		if err != nil {
			return nil, fmt.Errorf("key check value: %w", err)
		}
		check = &k
	}

	wrapped, err := h.p.WrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), mk, secret)
	if err != nil {
		if ckr(err) == pkcs11.CKR_KEY_NOT_WRAPPABLE || ckr(err) == pkcs11.CKR_KEY_UNEXTRACTABLE {
			return nil, fmt.Errorf("%w: %s (%v)", ErrNotWrappable, spec.Type, err)
		}
		return nil, fmt.Errorf("wrap under master key: %w", err)
	}
	wk = &WrappedKey{
		ID:         spec.ID,
		Version:    spec.Version,
		Type:       spec.Type,
		MasterKCV:  mkKCV,
		PublicKey:  pubDER,
		Wrapped:    wrapped,
		CheckValue: check,
	}
	tag, err := cmac(h.p, sh, mk, wk.authenticated())
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	wk.Tag = tag
	return wk, nil
}
