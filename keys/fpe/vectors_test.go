package fpe_test

import (
	"encoding/hex"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test table: %v", err)
	}
	return b
}

func newAES(t testing.TB, key []byte) *fpetest.AESCipher {
	t.Helper()
	c, err := fpetest.NewAESCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newFF1(t testing.TB, c fpe.BlockCipher, radix int) *fpe.FF1 {
	t.Helper()
	f, err := fpe.NewFF1(c, radix)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// cipherKinds are the two ways FF1 reaches AES: one EncryptBlocks call per
// step (plain), and every step of an FF1 call through one Pass (pass, a
// PassCipher over the same software AES). Each vector test runs on both;
// after a test, check verifies on that (sub)test that the pass contract was
// kept.
func cipherKinds(t testing.TB, key []byte) map[string]struct {
	c     fpe.BlockCipher
	check func(t testing.TB)
} {
	t.Helper()
	pc := &fpetest.PassCipher{Inner: newAES(t, key)}
	return map[string]struct {
		c     fpe.BlockCipher
		check func(t testing.TB)
	}{
		"plain": {newAES(t, key), func(testing.TB) {}},
		"pass": {pc, func(t testing.TB) {
			t.Helper()
			if pc.Opened() == 0 || pc.Opened() != pc.Closed() || pc.PlainCalls() != 0 || pc.Misuses() != 0 {
				t.Fatalf("pass contract: opened %d closed %d plain calls %d misuses %d",
					pc.Opened(), pc.Closed(), pc.PlainCalls(), pc.Misuses())
			}
		}},
	}
}

// The NIST vectors are public test data, so printing them on failure is fine.
func TestNISTVectorsString(t *testing.T) {
	for _, v := range fpetest.Vectors() {
		for kind, kc := range cipherKinds(t, mustHex(t, v.Key)) {
			t.Run(v.Name+"/"+kind, func(t *testing.T) {
				defer kc.check(t)
				testVectorString(t, newFF1(t, kc.c, v.Radix), v)
			})
		}
	}
}

func testVectorString(t *testing.T, f *fpe.FF1, v fpetest.Vector) {
	t.Helper()
	tw := mustHex(t, v.Tweak)
	ct, err := f.EncryptString(tw, v.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if ct != v.Ciphertext {
		t.Fatalf("encrypt = %q, want %q", ct, v.Ciphertext)
	}
	pt, err := f.DecryptString(tw, v.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	if pt != v.Plaintext {
		t.Fatalf("decrypt = %q, want %q", pt, v.Plaintext)
	}
}

func toNumerals(s string) []byte {
	x := make([]byte, len(s))
	for i := range len(s) {
		c := s[i]
		if c <= '9' {
			x[i] = c - '0'
		} else {
			x[i] = c - 'a' + 10
		}
	}
	return x
}

// Every vector through every entry point: numerals, general path, batch of
// one, and a batch that mixes the vector with other tweaks and inputs; each
// over the plain and the pass cipher.
func TestNISTVectorsAllPaths(t *testing.T) {
	for _, v := range fpetest.Vectors() {
		for kind, kc := range cipherKinds(t, mustHex(t, v.Key)) {
			t.Run(v.Name+"/"+kind, func(t *testing.T) {
				defer kc.check(t)
				testVectorAllPaths(t, newFF1(t, kc.c, v.Radix), v)
			})
		}
	}
}

func testVectorAllPaths(t *testing.T, f *fpe.FF1, v fpetest.Vector) {
	t.Helper()
	tw := mustHex(t, v.Tweak)
	want := toNumerals(v.Ciphertext)
	paths := map[string]func(tw, x []byte) error{
		"numerals": f.Encrypt,
		"general":  f.EncryptGeneral,
		"batch1": func(tw, x []byte) error {
			return f.EncryptBatch([][]byte{tw}, [][]byte{x})
		},
		"batchMixed": func(tw, x []byte) error {
			other := toNumerals(v.Plaintext)
			other[0] = (other[0] + 1) % byte(v.Radix)
			xs := [][]byte{other, x, append([]byte(nil), other...)}
			return f.EncryptBatch([][]byte{[]byte("other"), tw, nil}, xs)
		},
		"batchGeneral": func(tw, x []byte) error {
			return f.EncryptBatchGeneral([][]byte{[]byte("x"), tw}, [][]byte{toNumerals(v.Plaintext), x})
		},
	}
	for name, enc := range paths {
		x := toNumerals(v.Plaintext)
		if err := enc(tw, x); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(x) != string(want) {
			t.Fatalf("%s: encrypt = %v, want %v", name, x, want)
		}
	}
	for name, dec := range map[string]func(tw, x []byte) error{
		"numerals": f.Decrypt,
		"general":  f.DecryptGeneral,
		"batch": func(tw, x []byte) error {
			return f.DecryptBatch([][]byte{tw}, [][]byte{x})
		},
	} {
		x := toNumerals(v.Ciphertext)
		if err := dec(tw, x); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(x) != string(toNumerals(v.Plaintext)) {
			t.Fatalf("%s: decrypt = %v", name, x)
		}
	}
}
