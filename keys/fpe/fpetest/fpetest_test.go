package fpetest_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// FIPS-197 Appendix C.1 (AES-128), twice in one call to check block striding.
func TestAESCipherKnownAnswer(t *testing.T) {
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	pt, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	want, _ := hex.DecodeString("69c4e0d86a7b0430d8cdb78070b4c55a")
	c, err := fpetest.NewAESCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	src := append(bytes.Clone(pt), pt...)
	dst := make([]byte, len(src))
	if err := c.EncryptBlocks(dst, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst[:16], want) || !bytes.Equal(dst[16:], want) {
		t.Fatalf("got %x, want %x twice", dst, want)
	}
}

func TestAESCipherRejectsBadBuffers(t *testing.T) {
	c, err := fpetest.NewAESCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range [][2]int{{0, 0}, {15, 15}, {17, 17}, {16, 32}} {
		if err := c.EncryptBlocks(make([]byte, n[0]), make([]byte, n[1])); !errors.Is(err, fpetest.ErrBlocks) {
			t.Errorf("dst %d src %d: got %v", n[0], n[1], err)
		}
	}
	if _, err := fpetest.NewAESCipher(make([]byte, 15)); err == nil {
		t.Error("15-byte key accepted")
	}
}

func TestCountingCipher(t *testing.T) {
	aesc, err := fpetest.NewAESCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	c := &fpetest.CountingCipher{Inner: aesc, FailAt: 3}
	buf := make([]byte, 48)
	for i := 1; i <= 4; i++ {
		err := c.EncryptBlocks(make([]byte, 48), buf)
		if (i >= 3) != errors.Is(err, fpetest.ErrInjected) {
			t.Fatalf("call %d: got %v", i, err)
		}
	}
	if c.Calls() != 4 || c.Blocks() != 6 {
		t.Fatalf("calls %d blocks %d, want 4 and 6", c.Calls(), c.Blocks())
	}
	c.Reset()
	if c.Calls() != 0 || c.Blocks() != 0 {
		t.Fatal("Reset did not clear the counters")
	}
}

func TestVectorsTable(t *testing.T) {
	vs := fpetest.Vectors()
	if len(vs) != 9 {
		t.Fatalf("%d vectors, want 9", len(vs))
	}
	for i, v := range vs {
		wantKeyLen := []int{16, 24, 32}[i/3]
		if k, err := hex.DecodeString(v.Key); err != nil || len(k) != wantKeyLen {
			t.Errorf("%s: key length %d, want %d", v.Name, len(k), wantKeyLen)
		}
		if len(v.Plaintext) != len(v.Ciphertext) {
			t.Errorf("%s: length mismatch", v.Name)
		}
	}
}

func TestInputsDeterministic(t *testing.T) {
	a, b := fpetest.Inputs(7, 10, 16, 5), fpetest.Inputs(7, 10, 16, 5)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) || len(a[i]) != 16 {
			t.Fatal("Inputs is not deterministic")
		}
		for _, d := range a[i] {
			if d >= 10 {
				t.Fatal("numeral out of radix")
			}
		}
	}
}

func TestPassCipher(t *testing.T) {
	aesc, err := fpetest.NewAESCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	c := &fpetest.PassCipher{Inner: aesc, FailAt: 3}
	src := make([]byte, 32)
	want := make([]byte, 32)
	if err := aesc.EncryptBlocks(want, src); err != nil {
		t.Fatal(err)
	}
	if err := c.EncryptBlocks(make([]byte, 32), src); err != nil || c.PlainCalls() != 1 {
		t.Fatalf("plain call: %v, %d counted", err, c.PlainCalls())
	}
	p := c.OpenPass()
	for i := 1; i <= 3; i++ {
		dst := make([]byte, 32)
		err := p.EncryptBlocks(dst, src)
		if (i >= 3) != errors.Is(err, fpetest.ErrInjected) {
			t.Fatalf("pass call %d: got %v", i, err)
		}
		if err == nil && !bytes.Equal(dst, want) {
			t.Fatalf("pass call %d: wrong output", i)
		}
	}
	p.Close()
	if err := p.EncryptBlocks(make([]byte, 32), src); !errors.Is(err, fpetest.ErrPassMisuse) {
		t.Fatalf("call after Close: %v", err)
	}
	p.Close()
	if c.Opened() != 1 || c.Closed() != 1 || c.PassCalls() != 3 || c.Misuses() != 2 {
		t.Fatalf("opened %d closed %d pass calls %d misuses %d, want 1 1 3 2",
			c.Opened(), c.Closed(), c.PassCalls(), c.Misuses())
	}
	c.Reset()
	if c.Opened()+c.Closed()+c.PassCalls()+c.PlainCalls()+c.Misuses() != 0 {
		t.Fatal("Reset did not clear the counters")
	}
}
