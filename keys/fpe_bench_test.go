package keys_test

import (
	"strconv"
	"testing"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// BenchmarkFF1HSM is FF1 of 16-digit PANs with the AES key inside SoftHSM:
// one PAN at a time and batched. Each FF1 call (a PAN or a whole batch) is
// one pass: one C_EncryptInit, about ten C_EncryptUpdate, one
// C_EncryptFinal. The plain- cases hide the pass (one C_EncryptInit and one
// C_Encrypt per step, the cost before passes). Compare with keys/fpe's
// BenchmarkFF1PAN16 (the same FF1 on crypto/aes) from the same run.
func BenchmarkFF1HSM(b *testing.B) {
	h, refs := benchNode(b)
	bc, err := h.BlockCipher(b.Context(), refs[keys.KeyAES256FF1])
	if err != nil {
		b.Fatal(err)
	}
	f, err := fpe.NewFF1(bc, 10)
	if err != nil {
		b.Fatal(err)
	}
	plain, err := fpe.NewFF1(plainCipher{bc}, 10)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("single", func(b *testing.B) { fpetest.BenchSingle(b, f, 16) })
	b.Run("plain-single", func(b *testing.B) { fpetest.BenchSingle(b, plain, 16) })
	for _, size := range []int{16, 256, 4096} {
		b.Run("batch"+strconv.Itoa(size), func(b *testing.B) { fpetest.BenchBatch(b, f, 16, size) })
		b.Run("plain-batch"+strconv.Itoa(size), func(b *testing.B) { fpetest.BenchBatch(b, plain, 16, size) })
	}
}
