package fpe_test

import (
	"encoding/hex"
	"fmt"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// NIST SP 800-38G FF1 sample 1, on software AES. In production the
// BlockCipher is an HSM-resident key (package keys).
func ExampleFF1_EncryptString() {
	key, _ := hex.DecodeString("2B7E151628AED2A6ABF7158809CF4F3C")
	aesc, err := fpetest.NewAESCipher(key)
	if err != nil {
		panic(err)
	}
	f, err := fpe.NewFF1(aesc, 10)
	if err != nil {
		panic(err)
	}
	ct, err := f.EncryptString(nil, "0123456789")
	if err != nil {
		panic(err)
	}
	pt, err := f.DecryptString(nil, ct)
	if err != nil {
		panic(err)
	}
	fmt.Println(ct, pt)
	// Output: 2433477484 0123456789
}

// A batch of inputs of one length, each with its own tweak, costs about ten
// BlockCipher calls in total.
func ExampleFF1_EncryptBatch() {
	key, _ := hex.DecodeString("2B7E151628AED2A6ABF7158809CF4F3C")
	aesc, _ := fpetest.NewAESCipher(key)
	counter := &fpetest.CountingCipher{Inner: aesc}
	f, _ := fpe.NewFF1(counter, 10)
	xs := [][]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
	tweaks := [][]byte{nil, []byte("9876543210")}
	if err := f.EncryptBatch(tweaks, xs); err != nil {
		panic(err)
	}
	fmt.Println(xs[0], xs[1], counter.Calls())
	// Output: [2 4 3 3 4 7 7 4 8 4] [6 1 2 4 2 0 0 7 7 3] 11
}
