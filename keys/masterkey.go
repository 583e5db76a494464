package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// masterKeyTemplate describes the master key: an AES-256 token object that
// can only wrap and unwrap working keys and compute CMAC (KCVs and the
// wrapped-key header MAC). It is deliberately not CKA_TRUSTED: SoftHSM lets
// only the SO set that, and the SO can only create public objects, whose
// values SoftHSM stores unencrypted on disk. Working keys are instead never
// extractable once loaded (see loadTemplate).
func masterKeyTemplate(label string, value []byte) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_LABEL, label),       // found by label after every login
		attr(pkcs11.CKA_VALUE, value),       // XOR of the components; caller zeroes its Go buffer, not the C copy
		attr(pkcs11.CKA_TOKEN, true),        // persists in the token
		attr(pkcs11.CKA_PRIVATE, true),      // invisible without the user PIN; encrypted at rest
		attr(pkcs11.CKA_SENSITIVE, true),    // value never readable
		attr(pkcs11.CKA_EXTRACTABLE, false), // cannot be wrapped out of the HSM
		attr(pkcs11.CKA_MODIFIABLE, false),  // attributes frozen
		attr(pkcs11.CKA_WRAP, true),         // wraps working keys (RFC 5649)
		attr(pkcs11.CKA_UNWRAP, true),       // unwraps replicated working keys
		attr(pkcs11.CKA_SIGN, true),         // AES-CMAC: KCV and blob header MAC
		attr(pkcs11.CKA_VERIFY, false),      // not needed
		attr(pkcs11.CKA_ENCRYPT, false),     // never encrypts data
		attr(pkcs11.CKA_DECRYPT, false),     // never decrypts data
		attr(pkcs11.CKA_DERIVE, false),      // no derived keys
		allowedMechanisms(pkcs11.CKM_AES_KEY_WRAP_PAD, pkcs11.CKM_AES_CMAC),
	}
}

func (h *HSM) masterKeyFind() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, true),
		attr(pkcs11.CKA_LABEL, h.cfg.MasterKeyLabel),
	}
}

// refreshMasterKeyLocked finds the master key by label on the anchor session,
// checks its protective attributes and computes its KCV. amu must be held.
func (h *HSM) refreshMasterKeyLocked() error {
	sh := h.anchor
	oh, found, err := findOne(h.p, sh, h.masterKeyFind())
	if err != nil {
		return fmt.Errorf("master key %q: %w", h.cfg.MasterKeyLabel, err)
	}
	if !found {
		h.smu.Lock()
		h.mk, h.mkOK, h.mkKCV = 0, false, KCV{}
		h.smu.Unlock()
		return nil
	}
	a, err := getAttrs(h.p, sh, oh, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_VALUE_LEN)
	if err != nil {
		return fmt.Errorf("master key %q: %w", h.cfg.MasterKeyLabel, err)
	}
	n, _ := ulong(a[pkcs11.CKA_VALUE_LEN])
	if !isTrue(a[pkcs11.CKA_SENSITIVE]) || isTrue(a[pkcs11.CKA_EXTRACTABLE]) || n != 32 {
		return fmt.Errorf("%w: master key %q is not a sensitive, non-extractable AES-256 key; refusing to use it",
			ErrMasterKeyMissing, h.cfg.MasterKeyLabel)
	}
	kcv, err := kcvOf(h.p, sh, oh)
	if err != nil {
		return fmt.Errorf("master key %q: %w", h.cfg.MasterKeyLabel, err)
	}
	h.smu.Lock()
	h.mk, h.mkOK, h.mkKCV = oh, true, kcv
	h.smu.Unlock()
	return nil
}

// masterKey returns the current master key handle and KCV.
func (h *HSM) masterKey() (pkcs11.ObjectHandle, KCV, error) {
	h.smu.RLock()
	defer h.smu.RUnlock()
	if !h.mkOK {
		return 0, KCV{}, fmt.Errorf("%w: label %q", ErrMasterKeyMissing, h.cfg.MasterKeyLabel)
	}
	return h.mk, h.mkKCV, nil
}

// MasterKeyKCV reports whether the master key is present and, if so, its KCV.
// If this HSM has not seen a master key yet it looks for one first, so a key
// loaded meanwhile by another process or HSM on the same token is found.
// Safe for concurrent use.
func (h *HSM) MasterKeyKCV() (KCV, bool) {
	_, kcv, err := h.requireMasterKey()
	return kcv, err == nil
}

// requireMasterKey returns the master key, looking it up by label first if
// none is known yet (it may have been loaded by another HSM or process).
func (h *HSM) requireMasterKey() (pkcs11.ObjectHandle, KCV, error) {
	if mk, kcv, err := h.masterKey(); err == nil {
		return mk, kcv, nil
	}
	err := h.withAnchor(func(pkcs11.SessionHandle) error {
		if _, _, err := h.masterKey(); err == nil {
			return nil
		}
		return h.refreshMasterKeyLocked()
	})
	if err != nil {
		return 0, KCV{}, err
	}
	return h.masterKey()
}

// GenerateComponents makes n (MinComponents..MaxComponents) master-key
// components from the HSM's RNG, computes each one's KCV and the KCV of
// their XOR inside the HSM, and returns them. It does not store anything in
// the token: the ceremony hands each component to one custodian and records
// the KCVs. The Go buffer of the intermediate XOR is zeroed before
// returning; the C copies the PKCS#11 binding made of the components and
// their XOR are not (see Residual risk in the package doc).
func (h *HSM) GenerateComponents(ctx context.Context, n int) (*ComponentSet, error) {
	if n < MinComponents || n > MaxComponents {
		return nil, fmt.Errorf("%w: %d components (want %d..%d)", ErrInvalidInput, n, MinComponents, MaxComponents)
	}
	var set *ComponentSet
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		if set != nil {
			set.Zero()
		}
		set = &ComponentSet{}
		acc := make([]byte, ComponentSize)
		defer zero(acc)
		for range n {
			v, err := h.p.GenerateRandom(sh, ComponentSize)
			if err != nil {
				return fmt.Errorf("generate component: %w", err)
			}
			if len(v) != ComponentSize {
				zero(v)
				return fmt.Errorf("%w: rng returned %d bytes", ErrHSMUnavailable, len(v))
			}
			kcv, err := kcvOfValue(h.p, sh, v)
			if err != nil {
				zero(v)
				return fmt.Errorf("component kcv: %w", err)
			}
			set.Components = append(set.Components, &Component{value: v, kcv: kcv})
			for i := range acc {
				acc[i] ^= v[i]
			}
		}
		kcv, err := kcvOfValue(h.p, sh, acc)
		if err != nil {
			return fmt.Errorf("master key kcv: %w", err)
		}
		set.MasterKCV = kcv
		return nil
	})
	if err != nil {
		if set != nil {
			set.Zero()
		}
		return nil, err
	}
	return set, nil
}

// LoadMasterKey checks each component against its own KCV (a failure names
// the component: *ComponentError), imports their XOR as the master key (a
// sensitive, non-extractable token object under Config.MasterKeyLabel) and
// checks its KCV against want, the KCV recorded when the components were
// made; on mismatch the imported key is destroyed. It fails with
// ErrMasterKeyExists if the token already has a master key.
//
// Whatever the outcome, every component passed in is zeroed, as is the Go
// buffer of the combined key; the C copies the PKCS#11 binding made of them
// are not (see Residual risk in the package doc). Keys that could not be restored for lack of a master
// key are restored afterwards.
func (h *HSM) LoadMasterKey(ctx context.Context, comps []*Component, want KCV) (KCV, error) {
	defer func() {
		for _, c := range comps {
			c.Zero()
		}
	}()
	if err := checkComponents(comps); err != nil {
		return KCV{}, err
	}
	if err := ctx.Err(); err != nil {
		return KCV{}, err
	}
	var got KCV
	err := h.withAnchor(func(sh pkcs11.SessionHandle) error {
		if _, found, err := findOne(h.p, sh, h.masterKeyFind()); err != nil {
			return fmt.Errorf("master key %q: %w", h.cfg.MasterKeyLabel, err)
		} else if found {
			return fmt.Errorf("%w: label %q", ErrMasterKeyExists, h.cfg.MasterKeyLabel)
		}
		if err := h.verifyComponents(sh, comps); err != nil {
			return err
		}
		oh, k, err := h.importMasterKey(sh, h.cfg.MasterKeyLabel, comps, want)
		if err != nil {
			return err
		}
		got = k
		h.smu.Lock()
		h.mk, h.mkOK, h.mkKCV = oh, true, k
		h.smu.Unlock()
		h.restoreKeysLocked(false)
		return nil
	})
	if err != nil {
		return KCV{}, err
	}
	return got, nil
}

// checkComponents checks the number and size of the components given to
// LoadMasterKey or StageMasterKey.
func checkComponents(comps []*Component) error {
	if len(comps) < MinComponents || len(comps) > MaxComponents {
		return fmt.Errorf("%w: %d components (want %d..%d)", ErrInvalidInput, len(comps), MinComponents, MaxComponents)
	}
	for i, c := range comps {
		if c == nil || len(c.value) != ComponentSize {
			return fmt.Errorf("%w: component %d must be %d bytes", ErrInvalidInput, i+1, ComponentSize)
		}
	}
	return nil
}

// verifyComponents checks each component against its own KCV, computed in
// the HSM on session sh. A mismatch names the component (*ComponentError).
func (h *HSM) verifyComponents(sh pkcs11.SessionHandle, comps []*Component) error {
	for i, c := range comps {
		k, err := kcvOfValue(h.p, sh, c.value)
		if err != nil {
			return fmt.Errorf("component %d: %w", i+1, err)
		}
		if k != c.kcv {
			return &ComponentError{Index: i + 1, Got: k, Want: c.kcv}
		}
	}
	return nil
}

// importMasterKey imports the XOR of comps (already checked by
// checkComponents and verifyComponents) as a master key under label
// (masterKeyTemplate) on session sh, and checks the new key's KCV, computed
// in the HSM, against want. If the KCV does not match or cannot be
// computed, the new object is destroyed and the error says so; nothing is
// stored. The Go buffer holding the XOR is zeroed before this returns; the
// binding's C copy of the template is freed unzeroed (package doc).
// Shared by LoadMasterKey and StageMasterKey so that both import a master
// key in exactly one way.
func (h *HSM) importMasterKey(sh pkcs11.SessionHandle, label string, comps []*Component, want KCV) (pkcs11.ObjectHandle, KCV, error) {
	acc := make([]byte, ComponentSize)
	defer zero(acc)
	for _, c := range comps {
		for i := range acc {
			acc[i] ^= c.value[i]
		}
	}
	oh, err := h.p.CreateObject(sh, masterKeyTemplate(label, acc))
	zero(acc)
	if err != nil {
		return 0, KCV{}, fmt.Errorf("import master key: %w", err)
	}
	k, err := kcvOf(h.p, sh, oh)
	if err == nil && k != want {
		err = fmt.Errorf("%w: master key: computed %s, recorded %s; key not stored", ErrKCVMismatch, k, want)
	}
	if err != nil {
		if derr := h.p.DestroyObject(sh, oh); derr != nil {
			return 0, KCV{}, fmt.Errorf("%w (and destroying it failed: %v)", err, derr)
		}
		return 0, KCV{}, err
	}
	return oh, k, nil
}
