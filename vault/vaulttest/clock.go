package vaulttest

import (
	"sync"
	"time"
)

// Clock is an adjustable clock: real time plus an offset that Advance moves
// forward. Every node of a Cluster reads it (vault.Config.Now), so a test
// can expire tokens without waiting. Safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// NewClock returns a clock at real time.
func NewClock() *Clock { return &Clock{} }

// Now returns real time plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
