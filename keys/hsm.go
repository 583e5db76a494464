package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// HSM is one open, logged-in token: a session pool for operations, a
// long-lived anchor session that owns the loaded working keys (session
// objects), the master key handle and the loaded keys' wrapped blobs.
//
// HSM is safe for concurrent use by any number of goroutines; concurrency
// against the token is bounded by Config.PoolSize.
type HSM struct {
	cfg   Config
	mod   *module
	p     p11
	token TokenInfo
	pool  *pool

	// amu serialises everything that uses the anchor session: recovery,
	// loading and unloading keys, importing the master key.
	amu    sync.Mutex
	anchor pkcs11.SessionHandle // guarded by amu

	// smu guards the handle state read on every operation.
	smu   sync.RWMutex
	gen   uint64 // bumped by each recovery
	mk    pkcs11.ObjectHandle
	mkOK  bool
	mkKCV KCV
	keys  map[KeyRef]*loadedKey
	fatal error // latched: a PIN refused during recovery; nothing retries it

	closed     atomic.Bool
	closeOnce  sync.Once
	recoveries atomic.Uint64
}

// loadedKey is a working key present in this HSM as a session object.
// blob is the wrapped form (ciphertext under the master key) kept so the key
// can be unwrapped again after a session loss.
type loadedKey struct {
	info   KeyInfo
	wk     *WrappedKey
	blob   []byte
	handle pkcs11.ObjectHandle
	err    error // non-nil while the key could not be restored
	// retired are objects replaced by ReplaceBlob, kept for operations in
	// flight and destroyed by Unload (or with their session).
	retired []pkcs11.ObjectHandle
}

// Open opens the token cfg.TokenLabel of library cfg.Lib, logs in with
// cfg.PIN (exactly one C_Login; a wrong PIN is ErrBadPIN, never retried) and
// looks up the master key by label. A missing master key is not an error
// (see MasterKeyKCV, LoadMasterKey); two objects with its label are.
//
// ctx bounds nothing inside the library (PKCS#11 calls cannot be
// cancelled); Open returns early only if ctx is already done.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mod, err := acquireModule(cfg.Lib)
	if err != nil {
		return nil, err
	}
	tok, err := findToken(mod.p, cfg.TokenLabel)
	if err != nil {
		releaseModule(mod)
		return nil, err
	}
	anchor, err := mod.p.OpenSession(tok.Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		releaseModule(mod)
		return nil, fmt.Errorf("%w: token %q: open session: %w", ErrHSMUnavailable, tok.Label, err)
	}
	mod.addUser(tok.Serial)
	fail := func(err error) (*HSM, error) {
		_ = mod.p.CloseSession(anchor)
		mod.dropUser(tok.Serial)
		releaseModule(mod)
		return nil, err
	}
	if err := mod.login(mod.p, anchor, tok.Serial, cfg.PIN); err != nil {
		return fail(fmt.Errorf("token %q: %w", tok.Label, err))
	}
	h := &HSM{
		cfg:    cfg,
		mod:    mod,
		p:      mod.p,
		token:  tok,
		pool:   newPool(mod.p, tok.Slot, cfg.PoolSize),
		anchor: anchor,
		keys:   make(map[KeyRef]*loadedKey),
	}
	h.amu.Lock()
	err = h.refreshMasterKeyLocked()
	h.amu.Unlock()
	if err != nil {
		return fail(err)
	}
	return h, nil
}

// Token returns the label and serial number of the open token.
func (h *HSM) Token() TokenInfo { return h.token }

// Close waits for operations in flight, closes every session (which
// destroys the loaded working keys, session objects, inside the HSM) and
// releases the library. Later calls fail with ErrClosed. Close is idempotent.
func (h *HSM) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		h.pool.close()
		h.amu.Lock()
		if info, err := h.p.GetSessionInfo(h.anchor); err == nil && info.Flags&pkcs11.CKF_RW_SESSION != 0 {
			_ = h.p.CloseSession(h.anchor)
		}
		h.smu.Lock()
		h.keys = nil
		h.mkOK = false
		h.smu.Unlock()
		h.amu.Unlock()
		h.mod.dropUser(h.token.Serial)
		releaseModule(h.mod)
	})
	return nil
}

func (h *HSM) usable() error {
	_, err := h.usableGen()
	return err
}

// usableGen is usable plus the recovery generation, in one read of smu.
func (h *HSM) usableGen() (uint64, error) {
	if h.closed.Load() {
		return 0, ErrClosed
	}
	h.smu.RLock()
	defer h.smu.RUnlock()
	return h.gen, h.fatal
}

// withSession runs fn on a pooled session. If fn fails because the session,
// the login or an object handle is gone, the session is evicted, the HSM
// recovers (once, shared with concurrent callers) and fn runs once more.
// fn must look up handles itself (they change across a recovery) and must
// be safe to run twice.
//
// Locking: one RLock of smu reads both the latched fatal error and gen, the
// recovery generation a failure is reported against (both are written only
// by recoverLocked). This is a consistent snapshot; compared with reading
// fatal, then gen, under two RLocks, the only difference is that gen may be
// a few instructions older, which is the case below. gen must be read
// before fn touches the token, and it is read before the session is even
// borrowed: if a recovery ends after that read, recover(gen) counts it as
// the one this failure needed and does not recover again; the failed
// session is evicted and the retry runs on another. gen is not read again:
// the retry is the last attempt, and its failure is returned without
// another recovery.
func (h *HSM) withSession(ctx context.Context, fn func(sh pkcs11.SessionHandle) error) error {
	gen, err := h.usableGen()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		s, err := h.pool.get(ctx)
		if err != nil {
			return err
		}
		err = fn(s.h)
		switch classify(err) {
		case classNone, classKeep:
			h.pool.put(s)
			return err
		case classEvict:
			h.pool.evict(s, err)
			return err
		}
		h.pool.evict(s, err)
		if attempt > 0 {
			return fmt.Errorf("%w: after recovery: %w", ErrHSMUnavailable, err)
		}
		if rerr := h.recover(gen); rerr != nil {
			return rerr
		}
	}
}

// withAnchor runs fn on the anchor session under amu, with the same one
// recovery-and-retry rule as withSession.
func (h *HSM) withAnchor(fn func(sh pkcs11.SessionHandle) error) error {
	h.amu.Lock()
	defer h.amu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := h.usable(); err != nil {
			return err
		}
		err := fn(h.anchor)
		if classify(err) != classStale {
			return err
		}
		if attempt > 0 {
			return fmt.Errorf("%w: after recovery: %w", ErrHSMUnavailable, err)
		}
		if rerr := h.recoverLocked(); rerr != nil {
			return rerr
		}
	}
}

// recover restores the anchor session, the login, the master key handle and
// the loaded keys, unless another goroutine already did since generation
// seen.
func (h *HSM) recover(seen uint64) error {
	h.amu.Lock()
	defer h.amu.Unlock()
	gen, err := h.usableGen()
	if err != nil {
		return err
	}
	if gen != seen {
		return nil
	}
	return h.recoverLocked()
}

// recoverLocked is recover's body; amu must be held. It makes at most one
// C_Login call, and latches a refused PIN so that no later operation tries
// again.
func (h *HSM) recoverLocked() error {
	if err := h.usable(); err != nil {
		return err
	}
	h.recoveries.Add(1)
	newAnchor := false
	info, err := h.p.GetSessionInfo(h.anchor)
	// Pool sessions are read-only: a read-only session under the anchor's
	// handle means the anchor is gone and its number was reissued.
	if err != nil || info.Flags&pkcs11.CKF_RW_SESSION == 0 {
		sh, oerr := h.p.OpenSession(h.token.Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if oerr != nil {
			return fmt.Errorf("%w: token %q: reopen session: %w", ErrHSMUnavailable, h.token.Label, oerr)
		}
		h.anchor = sh
		newAnchor = true
	}
	if newAnchor || info.State != pkcs11.CKS_RW_USER_FUNCTIONS {
		if err := h.mod.login(h.p, h.anchor, h.token.Serial, h.cfg.PIN); err != nil {
			if errors.Is(err, ErrBadPIN) || errors.Is(err, ErrPINLocked) {
				h.smu.Lock()
				h.fatal = fmt.Errorf("token %q: login lost and not re-established: %w", h.token.Label, err)
				h.smu.Unlock()
			}
			return fmt.Errorf("token %q: re-login: %w", h.token.Label, err)
		}
	}
	if err := h.refreshMasterKeyLocked(); err != nil {
		return err
	}
	if newAnchor {
		// The anchor was gone, so were (as far as we can know) all
		// sessions: forget them without touching their handles.
		h.pool.discard()
	}
	h.restoreKeysLocked(newAnchor)
	h.smu.Lock()
	h.gen++
	h.smu.Unlock()
	return nil
}

// Stats is a snapshot of an HSM's session pool and recoveries, for metrics.
// A plain value, safe for concurrent use.
type Stats struct {
	PoolStats
	Recoveries uint64 // session-loss recoveries attempted since Open
	Keys       int    // working keys loaded
}

// Stats returns pool and recovery counters. Safe for concurrent use.
func (h *HSM) Stats() Stats {
	h.smu.RLock()
	n := len(h.keys)
	h.smu.RUnlock()
	return Stats{PoolStats: h.pool.stats(), Recoveries: h.recoveries.Load(), Keys: n}
}
