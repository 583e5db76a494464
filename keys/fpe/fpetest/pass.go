package fpetest

import (
	"errors"
	"sync/atomic"

	"github.com/panvault/panvault/keys/fpe"
)

// ErrPassMisuse: a pass was used against the fpe.Pass contract (a call after
// Close, a second Close, or two goroutines in it at once).
var ErrPassMisuse = errors.New("fpetest: pass used against its contract")

// PassCipher wraps a BlockCipher as a software fpe.PassCipher and records
// how FF1 uses it: passes opened and closed, calls made through a pass and
// outside one, and contract violations. It does no work of its own beyond
// Inner; it exists to test FF1's pass path without an HSM. It is safe for
// concurrent use.
type PassCipher struct {
	Inner fpe.BlockCipher
	// FailAt, when positive, makes the FailAt-th EncryptBlocks call made
	// through any pass (counted since the last Reset) and every later one
	// return ErrInjected without touching dst. Set it before use.
	FailAt int64

	opened, closed, passCalls, plainCalls, misuse atomic.Int64
}

// EncryptBlocks is a call outside any pass; it is counted and forwarded.
func (c *PassCipher) EncryptBlocks(dst, src []byte) error {
	c.plainCalls.Add(1)
	return c.Inner.EncryptBlocks(dst, src)
}

// OpenPass opens a pass over Inner.
func (c *PassCipher) OpenPass() fpe.Pass {
	c.opened.Add(1)
	return &pass{c: c}
}

// Opened returns the number of passes opened so far.
func (c *PassCipher) Opened() int64 { return c.opened.Load() }

// Closed returns the number of passes closed so far.
func (c *PassCipher) Closed() int64 { return c.closed.Load() }

// PassCalls returns the number of EncryptBlocks calls made through passes.
func (c *PassCipher) PassCalls() int64 { return c.passCalls.Load() }

// PlainCalls returns the number of EncryptBlocks calls made outside passes.
func (c *PassCipher) PlainCalls() int64 { return c.plainCalls.Load() }

// Misuses returns the number of contract violations seen (each also
// returned ErrPassMisuse, or was a Close that did nothing).
func (c *PassCipher) Misuses() int64 { return c.misuse.Load() }

// Reset sets every counter to zero.
func (c *PassCipher) Reset() {
	c.opened.Store(0)
	c.closed.Store(0)
	c.passCalls.Store(0)
	c.plainCalls.Store(0)
	c.misuse.Store(0)
}

type pass struct {
	c      *PassCipher
	busy   atomic.Bool
	closed atomic.Bool
}

func (p *pass) EncryptBlocks(dst, src []byte) error {
	if p.closed.Load() || !p.busy.CompareAndSwap(false, true) {
		p.c.misuse.Add(1)
		return ErrPassMisuse
	}
	defer p.busy.Store(false)
	if n := p.c.passCalls.Add(1); p.c.FailAt > 0 && n >= p.c.FailAt {
		return ErrInjected
	}
	return p.c.Inner.EncryptBlocks(dst, src)
}

func (p *pass) Close() {
	if !p.closed.CompareAndSwap(false, true) {
		p.c.misuse.Add(1)
		return
	}
	p.c.closed.Add(1)
}
