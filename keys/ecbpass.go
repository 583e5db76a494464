package keys

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys/fpe"
)

var _ fpe.PassCipher = (*BlockCipher)(nil)

// OpenPass starts a pass for one FF1 call (see fpe.PassCipher): its
// EncryptBlocks calls share one pooled session and one multi-part AES-ECB
// operation, one C_EncryptInit for the pass and one C_EncryptUpdate per
// call, instead of a C_EncryptInit and a C_Encrypt per call. The session is
// borrowed on the first EncryptBlocks and given back by Close.
//
// The pass holds its session between calls, so a pass left open blocks
// one session of the pool: every pass must be closed. The returned Pass is
// for one goroutine; OpenPass is safe for concurrent use.
func (b *BlockCipher) OpenPass() fpe.Pass {
	return &ecbPass{h: b.h, ref: b.ref, ctx: b.ctx}
}

// ecbPass is one pass: a pooled session with an AES-ECB encryption in
// progress, or none (s == nil) before the first call and after a failure.
//
// ECB blocks are independent, so the operation carries nothing from one
// update to the next: a failed update is never resumed. The session it ran
// on is evicted (closing a session ends its operation, so no half-finished
// operation reaches the session's next user), and a call that failed because
// the session, login or key handle was lost is redone once, after the same
// recovery as HSM.withSession, on a fresh session and operation.
type ecbPass struct {
	h      *HSM
	ref    KeyRef
	ctx    context.Context
	s      *session // nil: no session and no operation
	closed bool
}

// EncryptBlocks encrypts len(src)/16 independent blocks into dst with one
// C_EncryptUpdate (and, on the first call, the C_EncryptInit). The buffer
// rules are those of BlockCipher.EncryptBlocks. On error dst is unchanged.
func (p *ecbPass) EncryptBlocks(dst, src []byte) error {
	if err := checkECB(dst, src); err != nil {
		return err
	}
	if p.closed {
		return fmt.Errorf("%w: ecb pass used after close", ErrInvalidInput)
	}
	if err := p.update(dst, src); err != nil {
		return fmt.Errorf("ecb with %s: %w", p.ref, err)
	}
	return nil
}

// update is EncryptBlocks after the argument checks, with withSession's
// rule: one recovery and one retry when the failure says handles are stale.
func (p *ecbPass) update(dst, src []byte) error {
	gen, err := p.h.usableGen()
	if err != nil {
		p.release()
		return err
	}
	for attempt := 0; ; attempt++ {
		err := p.tryUpdate(dst, src)
		if err == nil || classify(err) != classStale {
			return err
		}
		if attempt > 0 {
			return fmt.Errorf("%w: after recovery: %w", ErrHSMUnavailable, err)
		}
		if rerr := p.h.recover(gen); rerr != nil {
			return rerr
		}
	}
}

// tryUpdate runs one update, opening the session and the operation first if
// the pass has none. On any failure the pass is left without a session.
func (p *ecbPass) tryUpdate(dst, src []byte) error {
	if p.s != nil && p.h.pool.lentBeforeDiscard(p.s) {
		// A recovery found every session gone while this one was held:
		// its handle may belong to someone else by now. Drop it unused.
		p.h.pool.put(p.s)
		p.s = nil
	}
	if p.s == nil {
		if err := p.begin(); err != nil {
			return err
		}
	}
	out, err := p.h.p.EncryptUpdate(p.s.h, src)
	if err == nil && len(out) != len(src) {
		err = fmt.Errorf("%w: ecb update returned %d bytes for %d", ErrHSMUnavailable, len(out), len(src))
	}
	if err != nil {
		// The operation may still be active: never hand the session on.
		p.h.pool.evict(p.s, fmt.Errorf("ecb update: %w", err))
		p.s = nil
		return fmt.Errorf("ecb update: %w", err)
	}
	copy(dst, out)
	return nil
}

// begin borrows a session and starts the ECB operation on it.
func (p *ecbPass) begin() error {
	s, err := p.h.pool.get(p.ctx)
	if err != nil {
		return err
	}
	kh, _, err := p.h.keyHandle(p.ref, KeyAES256FF1)
	if err != nil {
		p.h.pool.put(s) // nothing was started on the session
		return err
	}
	if err := p.h.p.EncryptInit(s.h, mech(pkcs11.CKM_AES_ECB, nil), kh); err != nil {
		err = fmt.Errorf("ecb init: %w", err)
		if classify(err) == classKeep {
			p.h.pool.put(s)
		} else {
			p.h.pool.evict(s, err)
		}
		return err
	}
	p.s = s
	return nil
}

// Close ends the operation with C_EncryptFinal and returns the session. For
// whole blocks the final part is empty; if the call fails or returns data,
// the session is evicted instead, so the operation cannot outlive the pass.
func (p *ecbPass) Close() {
	p.closed = true
	p.release()
}

func (p *ecbPass) release() {
	s := p.s
	if s == nil {
		return
	}
	p.s = nil
	if p.h.pool.lentBeforeDiscard(s) {
		p.h.pool.put(s) // dropped unused, see tryUpdate
		return
	}
	out, err := p.h.p.EncryptFinal(s.h)
	if err == nil && len(out) != 0 {
		err = fmt.Errorf("%w: ecb final returned %d bytes", ErrHSMUnavailable, len(out))
	}
	if err != nil {
		p.h.pool.evict(s, err)
		return
	}
	p.h.pool.put(s)
}

// lentBeforeDiscard reports whether s was lent before the pool last
// discarded its sessions (a recovery found them all closed): its handle must
// not be used again, and put drops it.
func (pl *pool) lentBeforeDiscard(s *session) bool { return s.epoch != pl.epoch.Load() }
