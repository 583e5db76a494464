package fpetest

import (
	"errors"
	"sync/atomic"

	"github.com/panvault/panvault/keys/fpe"
)

// ErrInjected is the error CountingCipher returns once its FailAt call is reached.
var ErrInjected = errors.New("fpetest: injected block cipher failure")

// CountingCipher wraps a BlockCipher, counting calls and blocks, and can
// fail from a given call on. It is safe for concurrent use.
type CountingCipher struct {
	Inner fpe.BlockCipher
	// FailAt, when positive, makes the FailAt-th call and every later one
	// return ErrInjected without touching dst. Set it before use.
	FailAt int64

	calls, blocks atomic.Int64
}

// EncryptBlocks counts the call and forwards it (or fails, see FailAt).
func (c *CountingCipher) EncryptBlocks(dst, src []byte) error {
	n := c.calls.Add(1)
	if c.FailAt > 0 && n >= c.FailAt {
		return ErrInjected
	}
	c.blocks.Add(int64(len(src) / 16))
	return c.Inner.EncryptBlocks(dst, src)
}

// Calls returns the number of EncryptBlocks calls so far.
func (c *CountingCipher) Calls() int64 { return c.calls.Load() }

// Blocks returns the number of blocks encrypted so far.
func (c *CountingCipher) Blocks() int64 { return c.blocks.Load() }

// Reset sets both counters to zero.
func (c *CountingCipher) Reset() { c.calls.Store(0); c.blocks.Store(0) }
