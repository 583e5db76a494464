package softhsm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/panvault/panvault/keys"
)

// Token is a SoftHSM token created by an Env, with its PINs. The PINs are
// in memory for tests and dev mode only; String masks them. A Token is a
// plain value: safe for concurrent reads.
type Token struct {
	Lib     string
	Label   string
	Serial  string
	SOPIN   string
	UserPIN string

	env *Env
}

// Config returns a keys.Config for this token (other fields at defaults).
func (t *Token) Config() keys.Config {
	return keys.Config{Lib: t.Lib, TokenLabel: t.Label, PIN: t.UserPIN}
}

// String describes the token without its PINs.
func (t *Token) String() string {
	return fmt.Sprintf("softhsm.Token{Label:%q Serial:%s}", t.Label, t.Serial)
}

// GoString is String.
func (t *Token) GoString() string { return t.String() }

// RandomPIN returns a 32-hex-digit PIN from crypto/rand.
func RandomPIN() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("softhsm: random pin: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// CreateToken creates a token with the label and random SO and user PINs.
func (e *Env) CreateToken(label string) (*Token, error) {
	so, err := RandomPIN()
	if err != nil {
		return nil, err
	}
	user, err := RandomPIN()
	if err != nil {
		return nil, err
	}
	return e.CreateTokenWithPINs(label, so, user)
}

// CreateTokenWithPINs creates a token with the given label and PINs in this
// process, through the shared PKCS#11 module (keys.InitToken), so that it is
// visible at once to every HSM of the process. The label must be unused.
func (e *Env) CreateTokenWithPINs(label, soPIN, userPIN string) (*Token, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ephemeral {
		// The directory may have been removed with the previous last token.
		if err := e.materialise(); err != nil {
			return nil, err
		}
	}
	ti, err := keys.InitToken(e.lib, label, soPIN, userPIN)
	if err != nil {
		return nil, fmt.Errorf("softhsm: create token %q: %w", label, err)
	}
	t := &Token{Lib: e.lib, Label: ti.Label, Serial: ti.Serial, SOPIN: soPIN, UserPIN: userPIN, env: e}
	e.live[t.Serial] = t
	return t, nil
}

// Delete removes the token's directory. It fails with ErrTokenInUse while
// an HSM of this process has the token open (close it first). Deleting the
// last token of a Temp environment removes the whole directory.
func (t *Token) Delete() error {
	if t.env == nil {
		return fmt.Errorf("%w: token %q was not created by an Env", ErrInvalid, t.Label)
	}
	return t.env.deleteToken(t)
}

func (e *Env) deleteToken(t *Token) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if keys.TokenInUse(e.lib, t.Serial) {
		return fmt.Errorf("%w: %q is open; close its HSM first", ErrTokenInUse, t.Label)
	}
	dir, err := e.tokenPath(t.Serial)
	if err != nil {
		if _, live := e.live[t.Serial]; !live {
			return nil // already deleted
		}
		return fmt.Errorf("token %q: %w", t.Label, err)
	}
	// Move the directory out of SoftHSM's sight in one step, then delete it:
	// the library never sees a half-deleted token.
	trash := filepath.Join(e.root, "deleted-"+filepath.Base(dir))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("softhsm: delete token %q: %w", t.Label, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("softhsm: delete token %q: %w", t.Label, err)
	}
	delete(e.live, t.Serial)
	return e.tidy()
}

// tidy removes a Temp directory that holds no token any more, once nothing
// has the library initialised with it. e.mu held.
func (e *Env) tidy() error {
	if e.ephemeral && len(e.live) == 0 && !keys.ModuleInitialized(e.lib) {
		if err := os.RemoveAll(e.root); err != nil {
			return fmt.Errorf("softhsm: remove %s: %w", e.root, err)
		}
	}
	return nil
}

// tokenPath finds a token's directory. SoftHSM 2 names it by a UUID whose
// last 16 hex digits are the token's serial number.
func (e *Env) tokenPath(serial string) (string, error) {
	serial = strings.ToLower(serial)
	if len(serial) != 16 {
		return "", fmt.Errorf("%w: serial %q", ErrTokenNotFound, serial)
	}
	ents, err := os.ReadDir(e.TokenDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: serial %s", ErrTokenNotFound, serial)
		}
		return "", fmt.Errorf("softhsm: %w", err)
	}
	for _, d := range ents {
		if d.IsDir() && strings.HasSuffix(strings.ReplaceAll(strings.ToLower(d.Name()), "-", ""), serial) {
			return filepath.Join(e.TokenDir(), d.Name()), nil
		}
	}
	return "", fmt.Errorf("%w: serial %s", ErrTokenNotFound, serial)
}

// Tokens lists the initialised tokens SoftHSM sees in this environment.
func (e *Env) Tokens() ([]keys.TokenInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ephemeral {
		// SoftHSM cannot initialise without its configuration file.
		if err := e.materialise(); err != nil {
			return nil, err
		}
	}
	toks, err := keys.ListTokens(e.lib)
	if terr := e.tidy(); err == nil {
		err = terr
	}
	return toks, err
}
