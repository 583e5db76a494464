package keys

import (
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// TokenInfo describes an initialised token. A plain value, safe for
// concurrent use.
type TokenInfo struct {
	Label  string
	Serial string
	Slot   uint // valid until the library is next initialised; find tokens by label
}

const maxLabelLen = 32 // CK_TOKEN_INFO.label is 32 bytes, blank padded

func validTokenLabel(label string) error {
	if label == "" || len(label) > maxLabelLen || strings.TrimSpace(label) != label {
		return fmt.Errorf("%w: token label must be 1..%d bytes without leading or trailing blanks", ErrInvalidInput, maxLabelLen)
	}
	return nil
}

func validPIN(pin string) error {
	// 4..255 is the range SoftHSM accepts and common HSMs are within it.
	if len(pin) < 4 || len(pin) > 255 {
		return fmt.Errorf("%w: pin must be 4..255 bytes", ErrInvalidInput)
	}
	return nil
}

func listTokens(p p11) ([]TokenInfo, []uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: list slots: %w", ErrHSMUnavailable, err)
	}
	var toks []TokenInfo
	var free []uint
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue // a slot whose token vanished between the calls
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free = append(free, s)
			continue
		}
		toks = append(toks, TokenInfo{
			Label:  strings.TrimRight(ti.Label, " \x00"),
			Serial: strings.TrimRight(ti.SerialNumber, " \x00"),
			Slot:   s,
		})
	}
	return toks, free, nil
}

// findToken returns the one initialised token with the label.
func findToken(p p11, label string) (TokenInfo, error) {
	toks, _, err := listTokens(p)
	if err != nil {
		return TokenInfo{}, err
	}
	var found []TokenInfo
	for _, t := range toks {
		if t.Label == label {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return TokenInfo{}, fmt.Errorf("%w: label %q", ErrTokenNotFound, label)
	case 1:
		return found[0], nil
	default:
		return TokenInfo{}, fmt.Errorf("%w: %d tokens have label %q", ErrAmbiguous, len(found), label)
	}
}

// ListTokens returns the initialised tokens of the PKCS#11 library lib.
// Safe for concurrent use.
func ListTokens(lib string) ([]TokenInfo, error) {
	m, err := acquireModule(lib)
	if err != nil {
		return nil, err
	}
	defer releaseModule(m)
	toks, _, err := listTokens(m.p)
	return toks, err
}

// TokenInUse reports whether an open HSM of this process uses the token
// with the given serial number in library lib. Safe for concurrent use.
func TokenInUse(lib, serial string) bool {
	path, err := resolveLib(lib)
	if err != nil {
		return false
	}
	registry.mu.Lock()
	e := registry.entries[path]
	var m *module
	if e != nil {
		m = e.mod
	}
	registry.mu.Unlock()
	return m != nil && m.tokenInUse(serial)
}

// InitToken initialises a new token with the given label, SO PIN and user
// PIN on a free slot of library lib, through this process's shared module.
//
// Creating tokens in-process matters for SoftHSM: a token created by another
// process (softhsm2-util) after this process initialised the library stays
// invisible until the library is initialised again, which cannot happen while
// any HSM is open. A slot whose token directory was deleted while the library
// was initialised also looks free but refuses C_InitToken
// (CKR_GENERAL_ERROR); such slots are skipped.
//
// Safe for concurrent use; calls on one library are serialised.
func InitToken(lib, label, soPIN, userPIN string) (TokenInfo, error) {
	if err := validTokenLabel(label); err != nil {
		return TokenInfo{}, err
	}
	if err := validPIN(soPIN); err != nil {
		return TokenInfo{}, fmt.Errorf("so pin: %w", err)
	}
	if err := validPIN(userPIN); err != nil {
		return TokenInfo{}, fmt.Errorf("user pin: %w", err)
	}
	m, err := acquireModule(lib)
	if err != nil {
		return TokenInfo{}, err
	}
	defer releaseModule(m)
	m.mu.Lock()
	defer m.mu.Unlock()

	toks, free, err := listTokens(m.p)
	if err != nil {
		return TokenInfo{}, err
	}
	for _, t := range toks {
		if t.Label == label {
			return TokenInfo{}, fmt.Errorf("%w: %q", ErrTokenExists, label)
		}
	}
	var lastErr error
	initialised := false
	// SoftHSM appends its fresh empty slot last; stale slots come earlier.
	for i := len(free) - 1; i >= 0; i-- {
		if err := m.p.InitToken(free[i], soPIN, label); err != nil {
			lastErr = err
			continue
		}
		initialised = true
		break
	}
	if !initialised {
		if lastErr != nil {
			return TokenInfo{}, fmt.Errorf("%w: init token %q: %w", ErrNoFreeSlot, label, lastErr)
		}
		return TokenInfo{}, fmt.Errorf("%w: init token %q", ErrNoFreeSlot, label)
	}
	ti, err := findToken(m.p, label)
	if err != nil {
		return TokenInfo{}, err
	}
	if err := setUserPIN(m.p, ti.Slot, soPIN, userPIN); err != nil {
		return TokenInfo{}, fmt.Errorf("token %q: %w", label, err)
	}
	return ti, nil
}

// setUserPIN logs in as SO on a fresh session, sets the user PIN and closes
// the session (which logs the SO out).
func setUserPIN(p p11, slot uint, soPIN, userPIN string) error {
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("%w: open session: %w", ErrHSMUnavailable, err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("%w: so login: %w", ErrBadPIN, err)
	}
	defer p.Logout(sh)
	if err := p.InitPIN(sh, userPIN); err != nil {
		return fmt.Errorf("%w: init user pin: %w", ErrHSMUnavailable, err)
	}
	return nil
}
