package fpetest

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// ErrBlocks: EncryptBlocks was given buffers that are not whole, equal-length
// block sequences.
var ErrBlocks = errors.New("fpetest: buffers are not whole aes blocks of equal length")

// AESCipher is a software AES BlockCipher (ECB over independent blocks).
// It is safe for concurrent use: crypto/aes block ciphers are.
type AESCipher struct{ b cipher.Block }

// NewAESCipher returns AES under key (16, 24 or 32 bytes). Tests only: the
// key lives in Go memory.
func NewAESCipher(key []byte) (*AESCipher, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("fpetest: %w", err)
	}
	return &AESCipher{b: b}, nil
}

// EncryptBlocks encrypts len(src)/16 independent blocks of src into dst.
func (c *AESCipher) EncryptBlocks(dst, src []byte) error {
	if len(src) == 0 || len(src)%aes.BlockSize != 0 || len(dst) != len(src) {
		return ErrBlocks
	}
	for i := 0; i < len(src); i += aes.BlockSize {
		c.b.Encrypt(dst[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
	return nil
}
