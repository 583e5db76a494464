package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// A module is one PKCS#11 library, initialised once per process and shared by
// every HSM (and every InitToken call) that names the same resolved path.
//
// PKCS#11 state is per process: a second C_Initialize fails with
// CKR_CRYPTOKI_ALREADY_INITIALIZED, login is per application and token, and
// C_Finalize while calls are in flight crashes them. So modules are
// refcounted; the last release finalises (only if this package initialised
// it), and by then no HSM using it exists, so no call is in flight. The
// library stays loaded (never dlclose'd) and is initialised again on next use.
type module struct {
	path string
	p    p11

	mu     sync.Mutex             // guards tokens; serialises logins and token creation
	tokens map[string]*tokenLogin // by token serial number
}

// tokenLogin records this process's login to one token. Login is shared by
// all sessions of the process on that token, so a second HSM opening an
// already logged-in token gets CKR_USER_ALREADY_LOGGED_IN whatever PIN it
// presents: the keyed digest of the PIN that logged in lets us still refuse
// a wrong PIN.
type tokenLogin struct {
	pinMAC []byte
	users  int
}

type moduleEntry struct {
	ctx   *pkcs11.Ctx // loaded once, kept for the life of the process
	mod   *module     // nil while not initialised
	refs  int
	owned bool // we called C_Initialize successfully, so we finalise
}

var registry struct {
	mu      sync.Mutex
	entries map[string]*moduleEntry
}

// pinKey keys the in-memory PIN digests; it never leaves the process.
var pinKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	return k
}()

func pinDigest(pin string) []byte {
	m := hmac.New(sha256.New, pinKey)
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// resolveLib turns a library path into the canonical path modules are keyed by.
func resolveLib(lib string) (string, error) {
	if lib == "" {
		return "", fmt.Errorf("%w: %w: empty library path", ErrHSMUnavailable, ErrLibrary)
	}
	abs, err := filepath.Abs(lib)
	if err != nil {
		return "", fmt.Errorf("%w: %w: %s: %w", ErrHSMUnavailable, ErrLibrary, lib, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %w: %s: %w", ErrHSMUnavailable, ErrLibrary, lib, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%w: %w: %s: %w", ErrHSMUnavailable, ErrLibrary, lib, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %w: %s: not a regular file", ErrHSMUnavailable, ErrLibrary, lib)
	}
	return real, nil
}

// acquireModule returns the initialised module for lib, loading and
// initialising it on first use. Each successful call must be paired with
// releaseModule.
func acquireModule(lib string) (*module, error) {
	path, err := resolveLib(lib)
	if err != nil {
		return nil, err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.entries == nil {
		registry.entries = make(map[string]*moduleEntry)
	}
	e := registry.entries[path]
	if e == nil {
		ctx := pkcs11.New(path)
		if ctx == nil {
			return nil, fmt.Errorf("%w: %w: %s: dlopen failed or not a pkcs11 library", ErrHSMUnavailable, ErrLibrary, path)
		}
		e = &moduleEntry{ctx: ctx}
		registry.entries[path] = e
	}
	if e.mod == nil {
		err := e.ctx.Initialize()
		switch {
		case err == nil:
			e.owned = true
		case ckr(err) == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED:
			// Someone else in this process initialised it; they finalise.
			e.owned = false
		default:
			return nil, fmt.Errorf("%w: initialize %s: %w", ErrHSMUnavailable, path, err)
		}
		e.mod = &module{path: path, p: e.ctx, tokens: make(map[string]*tokenLogin)}
	}
	e.refs++
	return e.mod, nil
}

// releaseModule drops one reference; the last one finalises the library if
// this package initialised it. The caller must have no call in flight.
func releaseModule(m *module) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e := registry.entries[m.path]
	if e == nil || e.mod != m {
		return
	}
	e.refs--
	if e.refs > 0 {
		return
	}
	if e.owned {
		_ = e.ctx.Finalize()
	}
	e.mod = nil
	e.owned = false
}

// moduleInitialized reports whether this package currently holds lib
// initialised (some HSM or token operation is using it).
func moduleInitialized(lib string) bool {
	path, err := resolveLib(lib)
	if err != nil {
		return false
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e := registry.entries[path]
	return e != nil && e.mod != nil
}

// ModuleInitialized reports whether lib is currently initialised by this
// package, that is whether an HSM is open on it. Configuration that the
// library reads at C_Initialize (SOFTHSM2_CONF) cannot change while it is.
// Safe for concurrent use.
func ModuleInitialized(lib string) bool { return moduleInitialized(lib) }

// login logs the user in (through p, normally m.p) on session sh of the token with the given serial,
// or, if the process is already logged in there, checks that pin is the PIN
// that logged in. It makes exactly one C_Login call: PINs are never retried.
func (m *module) login(p p11, sh pkcs11.SessionHandle, serial, pin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := pinDigest(pin)
	err := p.Login(sh, pkcs11.CKU_USER, pin)
	switch ckr(err) {
	case pkcs11.CKR_OK:
		if st := m.tokens[serial]; st != nil {
			st.pinMAC = d
		} else {
			m.tokens[serial] = &tokenLogin{pinMAC: d}
		}
		return nil
	case pkcs11.CKR_USER_ALREADY_LOGGED_IN:
		st := m.tokens[serial]
		if st == nil || st.pinMAC == nil {
			return fmt.Errorf("%w: token is logged in by code outside this package; cannot verify the pin", ErrBadPIN)
		}
		if !hmac.Equal(st.pinMAC, d) {
			return fmt.Errorf("%w: differs from the pin this process logged in with", ErrBadPIN)
		}
		return nil
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
		return fmt.Errorf("%w: %w", ErrBadPIN, err)
	case pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("%w: %w", ErrPINLocked, err)
	case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return fmt.Errorf("%w: user pin not initialised: %w", ErrBadPIN, err)
	default:
		return fmt.Errorf("%w: login: %w", ErrHSMUnavailable, err)
	}
}

// addUser and dropUser count the HSMs open on a token; the login record is
// forgotten with the last one (closing its sessions logs the process out).
func (m *module) addUser(serial string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.tokens[serial]
	if st == nil {
		st = &tokenLogin{}
		m.tokens[serial] = st
	}
	st.users++
}

func (m *module) dropUser(serial string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.tokens[serial]
	if st == nil {
		return
	}
	st.users--
	if st.users <= 0 {
		delete(m.tokens, serial)
	}
}

func (m *module) tokenInUse(serial string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.tokens[serial]
	return st != nil && st.users > 0
}
