package keys

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/miekg/pkcs11"
)

// AES-GCM parameters: 96-bit random nonces, 128-bit tags.
const (
	GCMNonceSize = 12
	GCMTagSize   = 16
	// MaxSealSize bounds one Seal's plaintext. The vault seals PANs and
	// small records; large data does not belong in the HSM path.
	MaxSealSize = 64 << 10
)

// Seal encrypts plaintext with AES-256-GCM under the loaded KeyAES256GCM
// key ref, authenticating aad too. It returns nonce || ciphertext || tag.
// The nonce is random (crypto/rand): keep each key version below 2^32
// seals (rotate well before). Safe for concurrent use.
func (h *HSM) Seal(ctx context.Context, ref KeyRef, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) > MaxSealSize {
		return nil, fmt.Errorf("%w: plaintext longer than %d bytes", ErrInvalidInput, MaxSealSize)
	}
	// One buffer for the result: the nonce is drawn straight into its
	// head and the ciphertext appended once.
	out := make([]byte, GCMNonceSize, GCMNonceSize+len(plaintext)+GCMTagSize)
	nonce := out[:GCMNonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("%w: nonce: %w", ErrHSMUnavailable, err)
	}
	err := h.withGCM(ctx, ref, nonce, aad, p11.EncryptInit, func(sh pkcs11.SessionHandle) error {
		ct, err := h.p.Encrypt(sh, plaintext)
		if err != nil {
			return fmt.Errorf("gcm seal: %w", err)
		}
		if len(ct) != len(plaintext)+GCMTagSize {
			return fmt.Errorf("%w: gcm returned %d bytes", ErrHSMUnavailable, len(ct))
		}
		// Appending to nonce writes after it, never over it.
		out = append(nonce, ct...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seal with %s: %w", ref, err)
	}
	return out, nil
}

// Open decrypts and authenticates what Seal returned, with the same aad.
// A wrong key, aad or any altered byte is ErrDecrypt. Safe for concurrent use.
func (h *HSM) Open(ctx context.Context, ref KeyRef, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < GCMNonceSize+GCMTagSize || len(sealed) > GCMNonceSize+MaxSealSize+GCMTagSize {
		return nil, fmt.Errorf("open with %s: %w: ciphertext length %d", ref, ErrDecrypt, len(sealed))
	}
	nonce, ct := sealed[:GCMNonceSize], sealed[GCMNonceSize:]
	var out []byte
	err := h.withGCM(ctx, ref, nonce, aad, p11.DecryptInit, func(sh pkcs11.SessionHandle) error {
		pt, err := h.p.Decrypt(sh, ct)
		if err != nil {
			switch ckr(err) {
			case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, pkcs11.CKR_GENERAL_ERROR:
				// SoftHSM 2.6.1 reports a bad tag as CKR_GENERAL_ERROR;
				// the operation is over and the session stays usable.
				return ErrDecrypt
			}
			return fmt.Errorf("gcm open: %w", err)
		}
		out = pt
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open with %s: %w", ref, err)
	}
	return out, nil
}

// withGCM runs op on a pooled session (withSession: op may run twice) after
// starting an AES-256-GCM operation there under the loaded KeyAES256GCM key
// ref, with nonce, aad and a GCMTagSize tag. start is p11.EncryptInit or
// p11.DecryptInit, called on h.p as it is at each attempt. op makes the
// single-part C_Encrypt or C_Decrypt call that finishes the operation.
func (h *HSM) withGCM(ctx context.Context, ref KeyRef, nonce, aad []byte,
	start func(p11, pkcs11.SessionHandle, []*pkcs11.Mechanism, pkcs11.ObjectHandle) error,
	op func(pkcs11.SessionHandle) error) error {
	return h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		kh, _, err := h.keyHandle(ref, KeyAES256GCM)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(nonce, aad, GCMTagSize*8)
		defer params.Free()
		if err := start(h.p, sh, mech(pkcs11.CKM_AES_GCM, params), kh); err != nil {
			return fmt.Errorf("gcm init: %w", err)
		}
		return op(sh)
	})
}
