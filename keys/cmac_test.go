package keys_test

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"testing"
)

// dbl is the doubling in GF(2^128) of NIST SP 800-38B.
func dbl(b []byte) []byte {
	out := make([]byte, 16)
	carry := byte(0)
	for i := 15; i >= 0; i-- {
		out[i] = b[i]<<1 | carry
		carry = b[i] >> 7
	}
	if b[0]&0x80 != 0 {
		out[15] ^= 0x87
	}
	return out
}

// softCMAC is AES-CMAC (NIST SP 800-38B) in Go, used only by tests to check
// the KCVs the HSM computes over bytes the test already holds (components).
func softCMAC(key, msg []byte) []byte {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	l := make([]byte, 16)
	c.Encrypt(l, l)
	k1 := dbl(l)
	k2 := dbl(k1)
	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	last := make([]byte, 16)
	if complete {
		copy(last, msg[16*(n-1):])
		for i := range last {
			last[i] ^= k1[i]
		}
	} else {
		rem := msg[16*(n-1):]
		copy(last, rem)
		last[len(rem)] = 0x80
		for i := range last {
			last[i] ^= k2[i]
		}
	}
	x := make([]byte, 16)
	for i := 0; i < n-1; i++ {
		for j := range x {
			x[j] ^= msg[16*i+j]
		}
		c.Encrypt(x, x)
	}
	for j := range x {
		x[j] ^= last[j]
	}
	c.Encrypt(x, x)
	return x
}

func softKCV(key []byte) string {
	return hex.EncodeToString(softCMAC(key, make([]byte, 16))[:3])
}

// The software CMAC is itself checked against the AES-256 examples of NIST
// SP 800-38B (also in RFC 4493's style), so it can be trusted as a reference.
func TestSoftCMACVectors(t *testing.T) {
	key, _ := hex.DecodeString("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "028962f61b7bf89efc6b551f4667d983"},
		{16, "28a7023f452e8f82bd4bf28d8c37c35c"},
		{40, "aaf3d8f1de5640c232f5b169b9c911e6"},
		{64, "e1992190549f6ed5696a2c056c315410"},
	} {
		want, _ := hex.DecodeString(tc.want)
		if got := softCMAC(key, msg[:tc.n]); !bytes.Equal(got, want) {
			t.Errorf("CMAC-AES256 of %d bytes = %x, want %x", tc.n, got, want)
		}
	}
}
