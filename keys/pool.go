package keys

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// pool lends PKCS#11 sessions, one goroutine per session at a time: SoftHSM
// 2.6 crashes the process (SIGSEGV) when two goroutines share a session.
//
// At most size sessions are lent at once (sem holds one token per lent
// session); idle sessions are kept for reuse. Sessions are opened lazily.
//
// A handle whose session is gone is never passed to the library again, not
// even to C_CloseSession: a library may reissue the number to a new session
// that another goroutine now uses. So a session that failed with a
// session-gone error is dropped silently, and when a recovery finds the
// anchor session gone too (all sessions closed), discard drops every idle
// session and every lent one when it comes back. A session opened between
// the loss and the discard is dropped alive: at most size sessions per loss
// stay open until the library is finalised, the price of never touching a
// possibly reissued handle.
type pool struct {
	p    p11
	slot uint
	sem  chan struct{}

	mu   sync.Mutex
	idle []*session
	// epoch: sessions opened before a discard have an older one. Written
	// under mu (with idle); read without it where only staleness matters.
	epoch   atomic.Uint64
	closed  bool
	dropped atomic.Uint64

	opened, evicted, waits atomic.Uint64
	waitNanos              atomic.Int64
}

// session is one lent session. Only the goroutine holding it may use h.
type session struct {
	h     pkcs11.SessionHandle
	epoch uint64
}

func newPool(p p11, slot uint, size int) *pool {
	return &pool{p: p, slot: slot, sem: make(chan struct{}, size)}
}

// get lends a session, waiting until one is free or ctx ends.
func (pl *pool) get(ctx context.Context) (*session, error) {
	select {
	case pl.sem <- struct{}{}:
	default:
		pl.waits.Add(1)
		start := time.Now()
		select {
		case pl.sem <- struct{}{}:
			pl.waitNanos.Add(int64(time.Since(start)))
		case <-ctx.Done():
			pl.waitNanos.Add(int64(time.Since(start)))
			return nil, fmt.Errorf("%w: %w", ErrNoSession, ctx.Err())
		}
	}
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		<-pl.sem
		return nil, ErrClosed
	}
	var s *session
	if n := len(pl.idle); n > 0 {
		s = pl.idle[n-1]
		pl.idle = pl.idle[:n-1]
	}
	epoch := pl.epoch.Load()
	pl.mu.Unlock()
	if s == nil {
		h, err := pl.p.OpenSession(pl.slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			<-pl.sem
			return nil, fmt.Errorf("%w: open session: %w", ErrHSMUnavailable, err)
		}
		pl.opened.Add(1)
		s = &session{h: h, epoch: epoch}
	}
	return s, nil
}

// put returns a healthy session to the pool (or drops it if a discard
// happened while it was lent).
func (pl *pool) put(s *session) {
	pl.mu.Lock()
	switch {
	case s.epoch != pl.epoch.Load():
		pl.mu.Unlock()
		pl.dropped.Add(1)
	case pl.closed:
		pl.mu.Unlock()
		_ = pl.p.CloseSession(s.h)
	default:
		pl.idle = append(pl.idle, s)
		pl.mu.Unlock()
	}
	<-pl.sem
}

// evict discards a session that failed. If the failure says the session is
// gone it is dropped without another call; otherwise it is closed.
func (pl *pool) evict(s *session, err error) {
	pl.evicted.Add(1)
	if s.epoch == pl.epoch.Load() && !sessionGone(err) {
		_ = pl.p.CloseSession(s.h)
	}
	<-pl.sem
}

// sessionGone reports whether err means the session no longer exists.
func sessionGone(err error) bool {
	switch ckr(err) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT:
		return true
	}
	return false
}

// discard forgets every session opened so far: they were closed behind the
// pool's back.
func (pl *pool) discard() {
	pl.mu.Lock()
	pl.epoch.Add(1)
	pl.dropped.Add(uint64(len(pl.idle)))
	pl.idle = nil
	pl.mu.Unlock()
}

// close waits until every lent session is back, then closes the idle ones.
// Later gets fail with ErrClosed.
func (pl *pool) close() {
	pl.mu.Lock()
	pl.closed = true
	pl.mu.Unlock()
	for range cap(pl.sem) {
		pl.sem <- struct{}{}
	}
	pl.mu.Lock()
	idle := pl.idle
	pl.idle = nil
	pl.mu.Unlock()
	for _, s := range idle {
		_ = pl.p.CloseSession(s.h)
	}
}

// PoolStats is a snapshot of an HSM's session pool, for metrics. A plain
// value, safe for concurrent use.
type PoolStats struct {
	Size     int           // maximum sessions lent at once
	InUse    int           // sessions lent now
	Idle     int           // open sessions waiting in the pool
	Opened   uint64        // sessions opened since Open
	Evicted  uint64        // sessions evicted after an error
	Dropped  uint64        // sessions forgotten because they were closed behind the pool's back
	Waits    uint64        // gets that had to wait for a free session
	WaitTime time.Duration // total time spent waiting
}

func (pl *pool) stats() PoolStats {
	pl.mu.Lock()
	idle := len(pl.idle)
	pl.mu.Unlock()
	return PoolStats{
		Size:     cap(pl.sem),
		InUse:    len(pl.sem),
		Idle:     idle,
		Opened:   pl.opened.Load(),
		Evicted:  pl.evicted.Load(),
		Dropped:  pl.dropped.Load(),
		Waits:    pl.waits.Load(),
		WaitTime: time.Duration(pl.waitNanos.Load()),
	}
}
