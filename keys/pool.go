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
// After a recovery the epoch is bumped: idle sessions from an older epoch
// are checked with C_GetSessionInfo before reuse and dropped if dead.
// A dead handle is never passed to C_CloseSession, since a library may have
// reissued its number to a new session.
type pool struct {
	p    p11
	slot uint
	sem  chan struct{}

	mu     sync.Mutex
	idle   []*session
	epoch  uint64
	closed bool

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
	epoch := pl.epoch
	var s *session
	if n := len(pl.idle); n > 0 {
		s = pl.idle[n-1]
		pl.idle = pl.idle[:n-1]
	}
	pl.mu.Unlock()
	if s != nil && s.epoch != epoch {
		if _, err := pl.p.GetSessionInfo(s.h); err != nil {
			pl.evicted.Add(1)
			s = nil
		} else {
			s.epoch = epoch
		}
	}
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

// put returns a healthy session to the pool.
func (pl *pool) put(s *session) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		_ = pl.p.CloseSession(s.h)
	} else {
		pl.idle = append(pl.idle, s)
		pl.mu.Unlock()
	}
	<-pl.sem
}

// evict discards a session that failed. It is closed only if it is still
// alive (see the type comment).
func (pl *pool) evict(s *session) {
	pl.evicted.Add(1)
	if _, err := pl.p.GetSessionInfo(s.h); err == nil {
		_ = pl.p.CloseSession(s.h)
	}
	<-pl.sem
}

// bump starts a new epoch after a recovery.
func (pl *pool) bump() {
	pl.mu.Lock()
	pl.epoch++
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
	epoch := pl.epoch
	pl.mu.Unlock()
	for _, s := range idle {
		if s.epoch == epoch {
			_ = pl.p.CloseSession(s.h)
		} else if _, err := pl.p.GetSessionInfo(s.h); err == nil {
			_ = pl.p.CloseSession(s.h)
		}
	}
}

// PoolStats is a snapshot of an HSM's session pool, for metrics.
type PoolStats struct {
	Size     int           // maximum sessions lent at once
	InUse    int           // sessions lent now
	Idle     int           // open sessions waiting in the pool
	Opened   uint64        // sessions opened since Open
	Evicted  uint64        // sessions dropped after an error
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
		Waits:    pl.waits.Load(),
		WaitTime: time.Duration(pl.waitNanos.Load()),
	}
}
