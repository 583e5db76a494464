package softhsm

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/panvault/panvault/keys"
)

// ConfEnv is the variable SoftHSM reads its configuration file path from.
const ConfEnv = "SOFTHSM2_CONF"

// Env is this process's SoftHSM token directory and configuration file.
// There is at most one per process (see the package doc). Env is safe for
// concurrent use.
type Env struct {
	lib       string
	root      string
	ephemeral bool

	mu   sync.Mutex
	live map[string]*Token // tokens created through this Env and not deleted, by serial
}

var process struct {
	mu  sync.Mutex
	env *Env
}

// Setup makes dir (created if needed) the process's SoftHSM directory:
// dir/softhsm2.conf pointing at dir/tokens, with SOFTHSM2_CONF set to it.
// Tokens there persist (for `panvault dev`). Calling Setup again with the
// same dir returns the same Env; another dir, or a process that already
// initialised the library with another configuration, is ErrConflict.
func Setup(dir string) (*Env, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: dir %q: %w", ErrInvalid, dir, err)
	}
	return setup(abs, false)
}

// Temp returns the process's throwaway SoftHSM directory, creating it on
// first use under os.TempDir(). It is removed when the last token created in
// it is deleted (and made again if another token is created later). ErrConflict
// if the process already uses a persistent directory (Setup).
func Temp() (*Env, error) {
	process.mu.Lock()
	env := process.env
	process.mu.Unlock()
	if env != nil {
		if !env.ephemeral {
			return nil, fmt.Errorf("%w: persistent directory %s", ErrConflict, env.root)
		}
		return env, nil
	}
	root, err := os.MkdirTemp("", "panvault-softhsm-")
	if err != nil {
		return nil, fmt.Errorf("softhsm: temp dir: %w", err)
	}
	env, err = setup(root, true)
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return env, nil
}

func setup(root string, ephemeral bool) (*Env, error) {
	process.mu.Lock()
	defer process.mu.Unlock()
	if e := process.env; e != nil {
		if e.root == root {
			return e, nil
		}
		if ephemeral && e.ephemeral {
			// Lost a race with another Temp: use the winner's.
			os.RemoveAll(root)
			return e, nil
		}
		return nil, fmt.Errorf("%w: %s already set up, not %s", ErrConflict, e.root, root)
	}
	lib, err := FindLibrary()
	if err != nil {
		return nil, err
	}
	e := &Env{lib: lib, root: root, ephemeral: ephemeral, live: make(map[string]*Token)}
	if cur := os.Getenv(ConfEnv); cur != e.ConfPath() && keys.ModuleInitialized(lib) {
		return nil, fmt.Errorf("%w: the library is already initialised with %s=%q", ErrConflict, ConfEnv, cur)
	}
	if err := e.materialise(); err != nil {
		return nil, err
	}
	if err := os.Setenv(ConfEnv, e.ConfPath()); err != nil {
		return nil, fmt.Errorf("softhsm: set %s: %w", ConfEnv, err)
	}
	process.env = e
	return e, nil
}

// materialise writes the directory layout and configuration file.
func (e *Env) materialise() error {
	if err := os.MkdirAll(e.TokenDir(), 0o700); err != nil {
		return fmt.Errorf("softhsm: token dir: %w", err)
	}
	conf := fmt.Sprintf(`# Written by panvault/softhsm. One token directory per process.
directories.tokendir = %s
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
`, e.TokenDir())
	if err := os.WriteFile(e.ConfPath(), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("softhsm: write %s: %w", e.ConfPath(), err)
	}
	return nil
}

// Lib returns the path of the SoftHSM library.
func (e *Env) Lib() string { return e.lib }

// Dir returns the root directory.
func (e *Env) Dir() string { return e.root }

// ConfPath returns the path of softhsm2.conf.
func (e *Env) ConfPath() string { return filepath.Join(e.root, "softhsm2.conf") }

// TokenDir returns the directory SoftHSM keeps tokens in.
func (e *Env) TokenDir() string { return filepath.Join(e.root, "tokens") }
