package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Removing a master key that is no longer used. After a master-key
// rotation every working key is wrapped under the new master key and the
// previous one only lingers in the token; whoever holds the token (and its
// PIN) could still unwrap the old blobs with it, so it should go once no
// node needs it. Master keys are found by what masterKeyTemplate makes (a
// token AES key able to wrap, unwrap and compute CMAC, 32 bytes long), not
// by label: the previous one may be under the configured label or under a
// staging label. Which one to destroy is named by its KCV, computed in the
// HSM; no key byte reaches this process.

// masterKeyShape finds token objects shaped like a master key, whatever
// their label.
func masterKeyShape() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_WRAP, true),
		attr(pkcs11.CKA_UNWRAP, true),
		attr(pkcs11.CKA_SIGN, true),
	}
}

// maxMasterKeyObjects bounds how many master-key-shaped objects one search
// looks at; a token holds one per rotation at most.
const maxMasterKeyObjects = 256

// findAll returns every object matching template, up to limit.
func findAll(p p11, sh pkcs11.SessionHandle, template []*pkcs11.Attribute, limit int) ([]pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(sh, template); err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	var out []pkcs11.ObjectHandle
	var err error
	for len(out) < limit {
		var objs []pkcs11.ObjectHandle
		objs, _, err = p.FindObjects(sh, min(32, limit-len(out)))
		if err != nil || len(objs) == 0 {
			break
		}
		out = append(out, objs...)
	}
	if ferr := p.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	return out, nil
}

// DestroyMasterKey destroys every master key object in this token whose
// KCV is kcv, and reports whether there was one: a second call returns
// false, nil. It refuses (ErrMasterKeyInUse) when kcv is the master key
// this HSM uses, or when a loaded key's kept blob is wrapped under it (the
// key could not be restored after a session loss; ReplaceBlob first), and
// fails with ErrMasterKeyMissing when this HSM has no current master key,
// since it then cannot tell which one is in use. Objects whose KCV the HSM
// cannot compute are left alone. Safe for concurrent use.
//
// On a token shared by several HSMs or processes (a network HSM
// partition), the key disappears for all of them: the caller must know
// that none still uses it.
func (h *HSM) DestroyMasterKey(ctx context.Context, kcv KCV) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	destroyed := false
	err := h.withAnchor(func(sh pkcs11.SessionHandle) error {
		if !h.mkPresent() {
			if err := h.refreshMasterKeyLocked(); err != nil {
				return err
			}
		}
		cur, curKCV, err := h.masterKey()
		if err != nil {
			return fmt.Errorf("%w; refusing to destroy master key %s without knowing which one is in use", err, kcv)
		}
		if curKCV == kcv {
			return fmt.Errorf("%w: %s is this hsm's current master key", ErrMasterKeyInUse, kcv)
		}
		if ref, ok := h.loadedUnder(kcv); ok {
			return fmt.Errorf("%w: loaded key %s is kept wrapped under master key %s", ErrMasterKeyInUse, ref, kcv)
		}
		objs, err := findAll(h.p, sh, masterKeyShape(), maxMasterKeyObjects)
		if err != nil {
			return err
		}
		for _, oh := range objs {
			if oh == cur {
				continue
			}
			k, err := kcvOf(h.p, sh, oh)
			if err != nil {
				if classify(err) == classStale {
					return err
				}
				continue // not a key whose KCV this HSM computes: not ours to judge
			}
			if k != kcv {
				continue
			}
			a, err := getAttrs(h.p, sh, oh, pkcs11.CKA_VALUE_LEN)
			if err != nil {
				return fmt.Errorf("master key %s: %w", kcv, err)
			}
			if n, _ := ulong(a[pkcs11.CKA_VALUE_LEN]); n != 32 {
				continue
			}
			if err := h.p.DestroyObject(sh, oh); err != nil {
				return fmt.Errorf("destroy master key %s: %w", kcv, err)
			}
			destroyed = true
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return destroyed, nil
}

// loadedUnder returns a loaded key whose kept blob is wrapped under the
// master key kcv.
func (h *HSM) loadedUnder(kcv KCV) (KeyRef, bool) {
	h.smu.RLock()
	defer h.smu.RUnlock()
	for ref, lk := range h.keys {
		if lk.wk != nil && lk.wk.MasterKCV == kcv {
			return ref, true
		}
	}
	return KeyRef{}, false
}
