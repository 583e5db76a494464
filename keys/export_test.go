package keys

import (
	"context"

	"github.com/miekg/pkcs11"
)

// RawP11 exposes the narrow PKCS#11 interface to the external tests, which
// wrap it (auditing, fault injection) or call it directly (attribute checks,
// raw benchmarks).
type RawP11 = p11

// SetP11ForTest replaces the PKCS#11 interface an HSM uses with wrap(old).
// Call it before the HSM is used concurrently.
func SetP11ForTest(h *HSM, wrap func(RawP11) RawP11) {
	h.amu.Lock()
	defer h.amu.Unlock()
	np := wrap(h.p)
	h.p = np
	h.pool.mu.Lock()
	h.pool.p = np
	h.pool.mu.Unlock()
}

// RawForTest lends a pooled session (no recovery, no retry) and passes it
// with the handles of ref (zero if ref.ID is empty) and of the master key.
func RawForTest(ctx context.Context, h *HSM, ref KeyRef, fn func(p RawP11, sh pkcs11.SessionHandle, key, mk pkcs11.ObjectHandle) error) error {
	s, err := h.pool.get(ctx)
	if err != nil {
		return err
	}
	defer h.pool.put(s)
	var key pkcs11.ObjectHandle
	if ref.ID != "" {
		key, _, err = h.keyHandle(ref, KeyAES256GCM, KeyAES256FF1, KeyHMACSHA256, KeyECDSAP256, KeyECDSAP384, KeyRSA3072PSS, KeyEd25519)
		if err != nil {
			return err
		}
	}
	h.smu.RLock()
	mk := h.mk
	h.smu.RUnlock()
	return fn(h.p, s.h, key, mk)
}

// HoldSessionForTest borrows a pooled session until release is called.
func HoldSessionForTest(ctx context.Context, h *HSM) (release func(), err error) {
	s, err := h.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	return func() { h.pool.put(s) }, nil
}

// CloseAllSessionsForTest closes every session of this process on the
// HSM's token behind the pool's back, as a token reset would.
func CloseAllSessionsForTest(h *HSM) error { return h.p.CloseAllSessions(h.token.Slot) }

// RetagForTest recomputes a blob's header tag under h's master key, so that
// tests can reach the checks behind the tag.
func RetagForTest(ctx context.Context, h *HSM, wk *WrappedKey) error {
	return h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		mk, _, err := h.masterKey()
		if err != nil {
			return err
		}
		tag, err := cmac(h.p, sh, mk, wk.authenticated())
		if err != nil {
			return err
		}
		wk.Tag = tag
		return nil
	})
}

// MasterKeyLabelForTest returns the label the HSM finds its master key by.
func MasterKeyLabelForTest(h *HSM) string { return h.cfg.MasterKeyLabel }

// P11ForTest returns the PKCS#11 interface the HSM uses, and SlotForTest its
// token's slot, for raw sessions in tests (such as an SO changing the PIN).
func P11ForTest(h *HSM) RawP11 { return h.p }

func SlotForTest(h *HSM) uint { return h.token.Slot }

// DedicatedForTest lends one pooled session for as long as the caller wants
// (until release), with the handle of ref: for raw PKCS#11 benchmarks that
// bypass the pool.
func DedicatedForTest(ctx context.Context, h *HSM, ref KeyRef) (p RawP11, sh pkcs11.SessionHandle, key pkcs11.ObjectHandle, release func(), err error) {
	s, err := h.pool.get(ctx)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	key, _, err = h.keyHandle(ref, KeyAES256GCM, KeyAES256FF1, KeyHMACSHA256, KeyECDSAP256, KeyECDSAP384, KeyRSA3072PSS)
	if err != nil {
		h.pool.put(s)
		return nil, 0, 0, nil, err
	}
	return h.p, s.h, key, func() { h.pool.put(s) }, nil
}
