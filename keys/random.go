package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// MaxRandom bounds one Random call.
const MaxRandom = 4096

// Random returns n (1..MaxRandom) bytes from the HSM's RNG. Safe for
// concurrent use.
func (h *HSM) Random(ctx context.Context, n int) ([]byte, error) {
	if n < 1 || n > MaxRandom {
		return nil, fmt.Errorf("%w: random length %d (want 1..%d)", ErrInvalidInput, n, MaxRandom)
	}
	var out []byte
	err := h.withSession(ctx, func(sh pkcs11.SessionHandle) error {
		b, err := h.p.GenerateRandom(sh, n)
		if err != nil {
			return fmt.Errorf("random: %w", err)
		}
		if len(b) != n {
			return fmt.Errorf("%w: rng returned %d bytes", ErrHSMUnavailable, len(b))
		}
		out = b
		return nil
	})
	return out, err
}
