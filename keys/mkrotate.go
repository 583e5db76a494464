package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Master-key rotation, in three steps that keep every working key inside
// the HSM:
//
//  1. StageMasterKey imports the new master key, made from new custodian
//     components, under a new label beside the current one (which stays
//     current).
//  2. Rewrap turns a blob wrapped under the current master key into a blob
//     of the same key wrapped under the staged one: the key is unwrapped
//     into a temporary session object that is sensitive and extractable
//     but has no usage at all (as GenerateKey makes keys before their one
//     wrap), wrapped under the new master key, and destroyed. Its bytes
//     never reach this process.
//  3. UseMasterKey makes the staged key current (GenerateKey and
//     LoadWrapped use it from then on; the previous one stays in the token
//     until DestroyMasterKey removes it), and ReplaceBlob swaps each loaded
//     key's kept blob for its rewrapped one, so a key restored after a
//     session loss is unwrapped under the current master key.

// masterKeyFindLabel is masterKeyFind for another label.
func masterKeyFindLabel(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_LABEL, label),
	}
}

func checkLabel(label string) error {
	if label == "" || len(label) > 128 {
		return fmt.Errorf("%w: master key label must be 1 to 128 bytes", ErrInvalidInput)
	}
	return nil
}

// MasterKeyLabel returns the label of the current master key. Safe for
// concurrent use.
func (h *HSM) MasterKeyLabel() string {
	h.smu.RLock()
	defer h.smu.RUnlock()
	return h.cfg.MasterKeyLabel
}

// StageMasterKey imports the XOR of comps as a master key under label,
// beside the current master key, after checking each component against its
// KCV (a failure names it: *ComponentError, wrapping ErrKCVMismatch) and
// the result against want (ErrKCVMismatch; nothing is stored). If label
// already holds a master key with KCV want, it returns created false. The
// components' Go bytes are zeroed whatever the outcome (the C copies the
// PKCS#11 binding made of them are not: see the package doc).
func (h *HSM) StageMasterKey(ctx context.Context, label string, comps []*Component, want KCV) (bool, error) {
	defer func() {
		for _, c := range comps {
			c.Zero()
		}
	}()
	if err := checkLabel(label); err != nil {
		return false, err
	}
	if label == h.MasterKeyLabel() {
		return false, fmt.Errorf("%w: label %q is the current master key's", ErrMasterKeyExists, label)
	}
	if err := checkComponents(comps); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	created := false
	err := h.withAnchor(func(sh pkcs11.SessionHandle) error {
		if err := h.verifyComponents(sh, comps); err != nil {
			return err
		}
		if oh, found, err := findOne(h.p, sh, masterKeyFindLabel(label)); err != nil {
			return fmt.Errorf("master key %q: %w", label, err)
		} else if found {
			k, err := kcvOf(h.p, sh, oh)
			if err != nil {
				return err
			}
			if k != want {
				return fmt.Errorf("%w: label %q holds master key %s, not %s", ErrMasterKeyExists, label, k, want)
			}
			return nil
		}
		if _, _, err := h.importMasterKey(sh, label, comps, want); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

// MasterKeyKCVAt returns the KCV of the master key stored under label, and
// false if there is none.
func (h *HSM) MasterKeyKCVAt(label string) (KCV, bool, error) {
	if err := checkLabel(label); err != nil {
		return KCV{}, false, err
	}
	var kcv KCV
	var found bool
	err := h.withAnchor(func(sh pkcs11.SessionHandle) error {
		oh, ok, err := findOne(h.p, sh, masterKeyFindLabel(label))
		if err != nil || !ok {
			return err
		}
		kcv, err = kcvOf(h.p, sh, oh)
		found = err == nil
		return err
	})
	return kcv, found, err
}

// rewrapTemplate describes a working key unwrapped only to be wrapped
// again under another master key: a session object with no usage at all,
// extractable for that one wrap, then destroyed (like generateTemplate).
func rewrapTemplate(wk *WrappedKey) []*pkcs11.Attribute {
	class, kt := keyClass(wk.Type)
	a := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, class),
		attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_TOKEN, false),      // session object: dies with its session
		attr(pkcs11.CKA_PRIVATE, true),     // visible to the logged-in user only
		attr(pkcs11.CKA_SENSITIVE, true),   // value never readable in clear
		attr(pkcs11.CKA_EXTRACTABLE, true), // for the one wrap under the new master key
		attr(pkcs11.CKA_DERIVE, false),     // no derived keys
		attr(pkcs11.CKA_SIGN, false),       // no usage
		attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_UNWRAP, false),
	}
	if class == pkcs11.CKO_SECRET_KEY {
		a = append(a,
			attr(pkcs11.CKA_ENCRYPT, false),
			attr(pkcs11.CKA_VERIFY, false),
			attr(pkcs11.CKA_WRAP, false),
		)
	}
	return a
}

// Rewrap returns blob's key wrapped under the master key stored under
// newLabel instead of the current one (see the file comment). The blob must
// name the current master key and its header tag must verify
// (ErrMasterKeyMismatch, ErrBlobAuth).
func (h *HSM) Rewrap(ctx context.Context, blob []byte, newLabel string) ([]byte, error) {
	wk, err := ParseWrappedKey(blob)
	if err != nil {
		return nil, err
	}
	if err := checkLabel(newLabel); err != nil {
		return nil, err
	}
	var out []byte
	err = h.withSession(ctx, func(sh pkcs11.SessionHandle) (err error) {
		mk, mkKCV, err := h.masterKey()
		if err != nil {
			return err
		}
		if wk.MasterKCV != mkKCV {
			return fmt.Errorf("%w: blob names master key %s, this hsm has %s", ErrMasterKeyMismatch, wk.MasterKCV, mkKCV)
		}
		tag, err := cmac(h.p, sh, mk, wk.authenticated())
		if err != nil {
			return err
		}
		if !hmac.Equal(tag, wk.Tag) {
			return fmt.Errorf("%w: header tag does not verify", ErrBlobAuth)
		}
		nmk, found, err := findOne(h.p, sh, masterKeyFindLabel(newLabel))
		if err != nil {
			return fmt.Errorf("master key %q: %w", newLabel, err)
		}
		if !found {
			return fmt.Errorf("%w: no master key staged under %q", ErrMasterKeyMissing, newLabel)
		}
		nkcv, err := kcvOf(h.p, sh, nmk)
		if err != nil {
			return err
		}
		tmp, err := h.p.UnwrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), mk, wk.Wrapped, rewrapTemplate(wk))
		if err != nil {
			if classify(err) == classStale {
				return fmt.Errorf("unwrap: %w", err)
			}
			return fmt.Errorf("%w: unwrap refused (%v)", ErrBlobAuth, err)
		}
		defer func() {
			if derr := h.p.DestroyObject(sh, tmp); derr != nil && err == nil {
				err = fmt.Errorf("destroy temporary object: %w", derr)
			}
		}()
		wrapped, err := h.p.WrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), nmk, tmp)
		if err != nil {
			return fmt.Errorf("wrap under the new master key: %w", err)
		}
		nwk := &WrappedKey{ID: wk.ID, Version: wk.Version, Type: wk.Type, MasterKCV: nkcv,
			PublicKey: bytes.Clone(wk.PublicKey), Wrapped: wrapped}
		if nwk.Tag, err = cmac(h.p, sh, nmk, nwk.authenticated()); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
		out, err = nwk.Marshal()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rewrap %s: %w", wk.Ref(), err)
	}
	return out, nil
}

// UseMasterKey makes the master key stored under label the current one and
// returns its KCV. Loaded keys stay loaded; call ReplaceBlob with their
// rewrapped blobs so that they can be restored after a session loss. On
// failure (no such key, or not a sensitive, non-extractable AES-256 key)
// the current master key is unchanged.
func (h *HSM) UseMasterKey(label string) (KCV, error) {
	if err := checkLabel(label); err != nil {
		return KCV{}, err
	}
	err := h.withAnchor(func(sh pkcs11.SessionHandle) error {
		_, found, err := findOne(h.p, sh, masterKeyFindLabel(label))
		if err != nil {
			return fmt.Errorf("master key %q: %w", label, err)
		}
		if !found {
			return fmt.Errorf("%w: label %q", ErrMasterKeyMissing, label)
		}
		h.smu.Lock()
		prev := h.cfg.MasterKeyLabel
		h.cfg.MasterKeyLabel = label
		h.smu.Unlock()
		if err := h.refreshMasterKeyLocked(); err != nil || !h.mkPresent() {
			h.smu.Lock()
			h.cfg.MasterKeyLabel = prev
			h.smu.Unlock()
			if rerr := h.refreshMasterKeyLocked(); rerr != nil {
				return errors.Join(err, rerr)
			}
			if err == nil {
				err = fmt.Errorf("%w: label %q", ErrMasterKeyMissing, label)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return KCV{}, err
	}
	_, kcv, err := h.masterKey()
	return kcv, err
}

func (h *HSM) mkPresent() bool {
	h.smu.RLock()
	defer h.smu.RUnlock()
	return h.mkOK
}

// ReplaceBlob replaces the kept blob of a loaded key by blob, the same key
// id and version wrapped under the current master key (Rewrap's output): it
// is unwrapped and checked like LoadWrapped, and the key's object is
// swapped for the new one. The previous object is kept until Unload (an
// operation in flight may still use it) or Close. A blob equal to the kept
// one is a no-op; a key that is not loaded is ErrKeyNotFound.
func (h *HSM) ReplaceBlob(ctx context.Context, blob []byte) error {
	wk, err := ParseWrappedKey(blob)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	blob = bytes.Clone(blob)
	err = h.withAnchor(func(sh pkcs11.SessionHandle) error {
		h.smu.RLock()
		lk := h.keys[wk.Ref()]
		h.smu.RUnlock()
		if lk == nil {
			return fmt.Errorf("%w: %s", ErrKeyNotFound, wk.Ref())
		}
		if bytes.Equal(lk.blob, blob) {
			return nil
		}
		if lk.wk.Type != wk.Type || !bytes.Equal(lk.wk.PublicKey, wk.PublicKey) {
			return fmt.Errorf("%w: %s: replacement blob holds another key", ErrBlobAuth, wk.Ref())
		}
		oh, err := h.unwrapLocked(sh, wk, true)
		if err != nil {
			return err
		}
		h.smu.Lock()
		if lk.err == nil {
			lk.retired = append(lk.retired, lk.handle)
		}
		lk.handle, lk.err, lk.wk, lk.blob = oh, nil, wk, blob
		lk.info.MasterKCV = wk.MasterKCV
		h.smu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace blob of %s: %w", wk.Ref(), err)
	}
	return nil
}
