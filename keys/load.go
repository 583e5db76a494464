package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"fmt"
	"math/big"
	"slices"

	"github.com/miekg/pkcs11"
)

// LoadWrapped checks a wrapped-key blob and unwraps it into this HSM as a
// sensitive, non-extractable session object usable by every operation.
//
// In order: the blob must parse (ErrMalformedBlob); this HSM must have a
// master key (ErrMasterKeyMissing) with the KCV the blob names
// (ErrMasterKeyMismatch); the header tag must verify under it, the RFC 5649
// unwrap must succeed and the unwrapped key must match the header: type,
// size, curve or modulus, and for key pairs a test signature must verify
// with the header's public key (all ErrBlobAuth). On any failure nothing is
// loaded. Loading the same blob twice is a no-op; a different blob for a
// loaded id and version is ErrKeyExists.
//
// The blob is kept (it is ciphertext) to restore the key after session loss.
func (h *HSM) LoadWrapped(ctx context.Context, blob []byte) (KeyInfo, error) {
	wk, err := ParseWrappedKey(blob)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return KeyInfo{}, err
	}
	return h.load(wk, bytes.Clone(blob))
}

func (h *HSM) load(wk *WrappedKey, blob []byte) (KeyInfo, error) {
	pub, err := func() (any, error) {
		if !wk.Type.IsPair() {
			return nil, nil
		}
		return parsePublic(wk.Type, wk.PublicKey)
	}()
	if err != nil {
		return KeyInfo{}, err
	}
	info := KeyInfo{Ref: wk.Ref(), Type: wk.Type, MasterKCV: wk.MasterKCV, Public: pub}
	err = h.withAnchor(func(sh pkcs11.SessionHandle) error {
		h.smu.RLock()
		old := h.keys[wk.Ref()]
		h.smu.RUnlock()
		if old != nil {
			if bytes.Equal(old.blob, blob) {
				info = old.info
				return nil
			}
			return fmt.Errorf("%w: %s", ErrKeyExists, wk.Ref())
		}
		oh, err := h.unwrapLocked(sh, wk, true)
		if err != nil {
			return err
		}
		h.smu.Lock()
		h.keys[wk.Ref()] = &loadedKey{info: info, wk: wk, blob: blob, handle: oh}
		h.smu.Unlock()
		return nil
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("load %s: %w", wk.Ref(), err)
	}
	return info, nil
}

// unwrapLocked verifies wk against the master key and unwraps it on the
// anchor session sh. With prove set, key pairs are test-signed. amu held.
func (h *HSM) unwrapLocked(sh pkcs11.SessionHandle, wk *WrappedKey, prove bool) (pkcs11.ObjectHandle, error) {
	mk, mkKCV, err := h.masterKey()
	if err != nil {
		// Perhaps loaded since by another HSM or process on this token.
		if rerr := h.refreshMasterKeyLocked(); rerr != nil {
			return 0, rerr
		}
		if mk, mkKCV, err = h.masterKey(); err != nil {
			return 0, err
		}
	}
	if wk.MasterKCV != mkKCV {
		return 0, fmt.Errorf("%w: blob names master key %s, this hsm has %s", ErrMasterKeyMismatch, wk.MasterKCV, mkKCV)
	}
	tag, err := cmac(h.p, sh, mk, wk.authenticated())
	if err != nil {
		return 0, err
	}
	if !hmac.Equal(tag, wk.Tag) {
		return 0, fmt.Errorf("%w: header tag does not verify", ErrBlobAuth)
	}
	oh, err := h.p.UnwrapKey(sh, mech(pkcs11.CKM_AES_KEY_WRAP_PAD, nil), mk, wk.Wrapped, loadTemplate(wk))
	if err != nil {
		if classify(err) == classStale {
			return 0, fmt.Errorf("unwrap: %w", err)
		}
		// Integrity failure of the RFC 5649 ciphertext or content that is
		// not a key of the declared type. The PKCS#11 code is not wrapped:
		// the anchor session is fine.
		return 0, fmt.Errorf("%w: unwrap refused (%v)", ErrBlobAuth, err)
	}
	if err := h.checkUnwrapped(sh, wk, oh, prove); err != nil {
		if derr := h.p.DestroyObject(sh, oh); derr != nil && classify(derr) == classStale {
			return 0, fmt.Errorf("destroy rejected key: %w", derr)
		}
		return 0, err
	}
	return oh, nil
}

// checkUnwrapped checks that an unwrapped key is what its header says, using
// public attributes only (and a test signature for key pairs).
func (h *HSM) checkUnwrapped(sh pkcs11.SessionHandle, wk *WrappedKey, oh pkcs11.ObjectHandle, prove bool) error {
	class, kt := keyClass(wk.Type)
	types := []uint{pkcs11.CKA_CLASS, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE}
	switch {
	case class == pkcs11.CKO_SECRET_KEY:
		types = append(types, pkcs11.CKA_VALUE_LEN)
	case wk.Type == KeyRSA3072PSS:
		types = append(types, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
	default:
		types = append(types, pkcs11.CKA_EC_PARAMS)
	}
	a, err := getAttrs(h.p, sh, oh, types...)
	if err != nil {
		if classify(err) == classStale {
			return err
		}
		return fmt.Errorf("%w: unwrapped key attributes unreadable (%v)", ErrBlobAuth, err)
	}
	c, _ := ulong(a[pkcs11.CKA_CLASS])
	k, _ := ulong(a[pkcs11.CKA_KEY_TYPE])
	if c != uint64(class) || k != uint64(kt) {
		return fmt.Errorf("%w: unwrapped key class or type differs from header", ErrBlobAuth)
	}
	if !isTrue(a[pkcs11.CKA_SENSITIVE]) || isTrue(a[pkcs11.CKA_EXTRACTABLE]) {
		return fmt.Errorf("%w: unwrapped key is not sensitive and non-extractable", ErrBlobAuth)
	}
	switch {
	case class == pkcs11.CKO_SECRET_KEY:
		// SoftHSM 2.6.1 leaves CKA_VALUE_LEN at 0 on unwrapped keys; the
		// blob's fixed 40-byte wrapped length already bounds the key size.
		if n, _ := ulong(a[pkcs11.CKA_VALUE_LEN]); n != 32 && n != 0 {
			return fmt.Errorf("%w: unwrapped %s key is %d bytes, not 32", ErrBlobAuth, wk.Type, n)
		}
		return nil
	case wk.Type == KeyRSA3072PSS:
		pub, _ := parsePublic(wk.Type, wk.PublicKey)
		rpub := pub.(*rsa.PublicKey)
		n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
		e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
		if n.Cmp(rpub.N) != 0 || e.Cmp(big.NewInt(int64(rpub.E))) != 0 {
			return fmt.Errorf("%w: unwrapped rsa key does not match the header's public key", ErrBlobAuth)
		}
	default:
		if !bytes.Equal(a[pkcs11.CKA_EC_PARAMS], ecParams(wk.Type)) {
			return fmt.Errorf("%w: unwrapped key is on a different curve than the header says", ErrBlobAuth)
		}
	}
	if !prove {
		return nil
	}
	return h.proveSigner(sh, wk, oh)
}

// proveSigner signs a fixed probe with the unwrapped private key and verifies
// it with the header's public key.
func (h *HSM) proveSigner(sh pkcs11.SessionHandle, wk *WrappedKey, oh pkcs11.ObjectHandle) error {
	pub, _ := parsePublic(wk.Type, wk.PublicKey)
	probe := []byte("panvault/keys: proof of possession for " + wk.Ref().String())
	sig, err := signRaw(h.p, sh, wk.Type, oh, probe)
	if err != nil {
		if classify(err) == classStale {
			return err
		}
		return fmt.Errorf("%w: test signature failed (%v)", ErrBlobAuth, err)
	}
	if err := VerifySignature(wk.Type, pub, probe, sig); err != nil {
		return fmt.Errorf("%w: test signature does not verify with the header's public key", ErrBlobAuth)
	}
	return nil
}

// restoreKeysLocked re-unwraps every loaded key whose handle no longer
// works (all of them after the anchor session was replaced). A key that
// cannot be restored keeps its blob and an error that operations return.
// amu held.
func (h *HSM) restoreKeysLocked(all bool) {
	h.smu.RLock()
	lks := make([]*loadedKey, 0, len(h.keys))
	for _, lk := range h.keys {
		lks = append(lks, lk)
	}
	h.smu.RUnlock()
	for _, lk := range lks {
		h.smu.RLock()
		handle, kerr := lk.handle, lk.err
		h.smu.RUnlock()
		if !all && kerr == nil {
			if _, err := getAttrs(h.p, h.anchor, handle, pkcs11.CKA_CLASS); err == nil {
				continue
			}
		}
		oh, err := h.unwrapLocked(h.anchor, lk.wk, false)
		h.smu.Lock()
		if all {
			lk.retired = nil // died with the old anchor session; handles may be reused
		}
		if err != nil {
			lk.handle, lk.err = 0, fmt.Errorf("%w: %s could not be restored: %w", ErrHSMUnavailable, lk.info.Ref, err)
		} else {
			lk.handle, lk.err = oh, nil
		}
		h.smu.Unlock()
	}
}

// keyHandle returns the current handle of a loaded key of one of the types.
func (h *HSM) keyHandle(ref KeyRef, types ...KeyType) (pkcs11.ObjectHandle, KeyType, error) {
	h.smu.RLock()
	defer h.smu.RUnlock()
	lk := h.keys[ref]
	if lk == nil {
		return 0, 0, fmt.Errorf("%w: %s", ErrKeyNotFound, ref)
	}
	if !slices.Contains(types, lk.info.Type) {
		return 0, 0, fmt.Errorf("%w: %s is %s", ErrWrongKeyType, ref, lk.info.Type)
	}
	if lk.err != nil {
		return 0, 0, lk.err
	}
	return lk.handle, lk.info.Type, nil
}

// KeyInfo describes a loaded key. Safe for concurrent use.
func (h *HSM) KeyInfo(ref KeyRef) (KeyInfo, error) {
	h.smu.RLock()
	defer h.smu.RUnlock()
	lk := h.keys[ref]
	if lk == nil {
		return KeyInfo{}, fmt.Errorf("%w: %s", ErrKeyNotFound, ref)
	}
	return lk.info, nil
}

// Keys lists the loaded keys, sorted by id and version. Safe for concurrent use.
func (h *HSM) Keys() []KeyInfo {
	h.smu.RLock()
	out := make([]KeyInfo, 0, len(h.keys))
	for _, lk := range h.keys {
		out = append(out, lk.info)
	}
	h.smu.RUnlock()
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if a.Ref.ID != b.Ref.ID {
			if a.Ref.ID < b.Ref.ID {
				return -1
			}
			return 1
		}
		return int(int64(a.Ref.Version) - int64(b.Ref.Version))
	})
	return out
}

// Unload destroys a loaded key's object in this HSM and forgets its blob
// (for retired or destroyed keys). Unknown refs are ErrKeyNotFound.
func (h *HSM) Unload(ref KeyRef) error {
	return h.withAnchor(func(sh pkcs11.SessionHandle) error {
		h.smu.Lock()
		lk := h.keys[ref]
		delete(h.keys, ref)
		h.smu.Unlock()
		if lk == nil {
			return fmt.Errorf("%w: %s", ErrKeyNotFound, ref)
		}
		for _, old := range lk.retired {
			_ = h.p.DestroyObject(sh, old) // may be gone with an earlier session
		}
		if lk.err == nil {
			if err := h.p.DestroyObject(sh, lk.handle); err != nil && classify(err) != classStale {
				return fmt.Errorf("unload %s: %w", ref, err)
			}
		}
		return nil
	})
}
