package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// MaxMACSize bounds one HMAC message.
const MaxMACSize = 64 << 10

// HMAC returns HMAC-SHA256 of msg under the loaded KeyHMACSHA256 key ref
// (32 bytes). Safe for concurrent use.
func (h *HSM) HMAC(ctx context.Context, ref KeyRef, msg []byte) ([]byte, error) {
	if len(msg) > MaxMACSize {
		return nil, fmt.Errorf("%w: message longer than %d bytes", ErrInvalidInput, MaxMACSize)
	}
	var out []byte
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		kh, _, err := h.keyHandle(ref, KeyHMACSHA256)
		if err != nil {
			return err
		}
		if err := h.p.SignInit(sh, mech(pkcs11.CKM_SHA256_HMAC, nil), kh); err != nil {
			return fmt.Errorf("hmac init: %w", err)
		}
		mac, err := h.p.Sign(sh, msg)
		if err != nil {
			return fmt.Errorf("hmac: %w", err)
		}
		if len(mac) != 32 {
			return fmt.Errorf("%w: hmac returned %d bytes", ErrHSMUnavailable, len(mac))
		}
		out = mac
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hmac with %s: %w", ref, err)
	}
	return out, nil
}
