package keys_test

import (
	"strconv"
	"testing"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// BenchmarkFF1HSM is FF1 of 16-digit PANs with the AES key inside SoftHSM:
// one PAN at a time (about ten PKCS#11 calls each) and batched, where a whole
// batch costs about ten calls. Compare with keys/fpe's BenchmarkFF1PAN16 (the
// same FF1 on crypto/aes) from the same `make bench` run.
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
	b.Run("single", func(b *testing.B) { fpetest.BenchSingle(b, f, 16) })
	for _, size := range []int{16, 256, 4096} {
		b.Run("batch"+strconv.Itoa(size), func(b *testing.B) { fpetest.BenchBatch(b, f, 16, size) })
	}
}
