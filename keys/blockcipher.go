package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// BlockSize is the AES block size.
const BlockSize = 16

// MaxBlocks bounds one EncryptBlocks call (1 MiB of blocks).
const MaxBlocks = 65536

// BlockCipher is AES-256 in ECB form under one loaded KeyAES256FF1 key: the
// forward cipher only, many independent blocks per PKCS#11 call. It
// satisfies keys/fpe.BlockCipher, and keys/fpe.PassCipher through OpenPass,
// so that one FF1 call costs one C_EncryptInit on one session and one
// C_EncryptUpdate per step. It is a small value; making one is cheap.
// It names the key by ref: once the key is unloaded its calls fail with
// ErrKeyNotFound (never reuse a ref for another key). Safe for concurrent use.
type BlockCipher struct {
	h   *HSM
	ref KeyRef
	ctx context.Context
}

// BlockCipher returns the block cipher of a loaded KeyAES256FF1 key. Its
// calls use ctx (for waiting on a session) when the interface gives no
// context; see WithContext.
func (h *HSM) BlockCipher(ctx context.Context, ref KeyRef) (*BlockCipher, error) {
	if _, _, err := h.keyHandle(ref, KeyAES256FF1); err != nil {
		return nil, err
	}
	return &BlockCipher{h: h, ref: ref, ctx: ctx}, nil
}

// WithContext returns a copy that uses ctx.
func (b *BlockCipher) WithContext(ctx context.Context) *BlockCipher {
	return &BlockCipher{h: b.h, ref: b.ref, ctx: ctx}
}

// EncryptBlocks encrypts len(src)/16 independent blocks of src into dst in
// one C_Encrypt call. len(dst) must equal len(src), a non-zero multiple of
// 16 of at most MaxBlocks blocks. On error dst is unchanged.
func (b *BlockCipher) EncryptBlocks(dst, src []byte) error {
	return b.h.EncryptBlocks(b.ctx, b.ref, dst, src)
}

// EncryptBlocks is BlockCipher.EncryptBlocks with an explicit context.
func (h *HSM) EncryptBlocks(ctx context.Context, ref KeyRef, dst, src []byte) error {
	if err := checkECB(dst, src); err != nil {
		return err
	}
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		kh, _, err := h.keyHandle(ref, KeyAES256FF1)
		if err != nil {
			return err
		}
		if err := h.p.EncryptInit(sh, mech(pkcs11.CKM_AES_ECB, nil), kh); err != nil {
			return fmt.Errorf("ecb init: %w", err)
		}
		out, err := h.p.Encrypt(sh, src)
		if err != nil {
			return fmt.Errorf("ecb: %w", err)
		}
		if len(out) != len(src) {
			return fmt.Errorf("%w: ecb returned %d bytes for %d", ErrHSMUnavailable, len(out), len(src))
		}
		copy(dst, out)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ecb with %s: %w", ref, err)
	}
	return nil
}

// checkECB enforces the buffer rules of EncryptBlocks: equal dst and src of
// 1..MaxBlocks whole blocks.
func checkECB(dst, src []byte) error {
	if len(src) == 0 || len(src)%BlockSize != 0 || len(dst) != len(src) || len(src) > MaxBlocks*BlockSize {
		return fmt.Errorf("%w: ecb wants equal dst and src of 1..%d whole blocks (got %d and %d bytes)",
			ErrInvalidInput, MaxBlocks, len(dst), len(src))
	}
	return nil
}
