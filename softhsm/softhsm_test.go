package softhsm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

func TestFindLibrary(t *testing.T) {
	softhsmtest.Env(t) // skip, or fail under CI=true, without SoftHSM
	t.Setenv(softhsm.EnvLib, "")
	lib, err := softhsm.FindLibrary()
	if err != nil || lib != softhsm.DefaultPaths[0] && !strings.HasSuffix(lib, "libsofthsm2.so") {
		t.Fatalf("default: %q, %v", lib, err)
	}

	override := filepath.Join(t.TempDir(), "libother.so")
	if err := os.WriteFile(override, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(softhsm.EnvLib, override)
	if got, err := softhsm.FindLibrary(); err != nil || got != override {
		t.Fatalf("override: %q, %v", got, err)
	}

	missing := filepath.Join(t.TempDir(), "libmissing.so")
	t.Setenv(softhsm.EnvLib, missing)
	_, err = softhsm.FindLibrary()
	if !errors.Is(err, softhsm.ErrNotFound) || !strings.Contains(err.Error(), softhsm.EnvLib) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing override: %v", err)
	}
	t.Setenv(softhsm.EnvLib, t.TempDir())
	if _, err := softhsm.FindLibrary(); !errors.Is(err, softhsm.ErrNotFound) {
		t.Fatalf("directory as library: %v", err)
	}
}

func open(t *testing.T, tok *softhsm.Token) *keys.HSM {
	t.Helper()
	h, err := keys.Open(context.Background(), tok.Config())
	if err != nil {
		t.Fatalf("open %s: %v", tok, err)
	}
	return h
}

func listed(t *testing.T, env *softhsm.Env, label string) bool {
	t.Helper()
	toks, err := env.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range toks {
		if ti.Label == label {
			return true
		}
	}
	return false
}

// Several tokens (one per simulated node) in one process and one token
// directory, created while others are open, deleted only when closed; the
// temporary directory goes with the last token.
func TestTokenLifecycle(t *testing.T) {
	env := softhsmtest.Env(t)
	if got := os.Getenv(softhsm.ConfEnv); got != env.ConfPath() {
		t.Fatalf("%s = %q, want %q", softhsm.ConfEnv, got, env.ConfPath())
	}

	var toks []*softhsm.Token
	var hs []*keys.HSM
	for _, label := range []string{"life-node-1", "life-node-2", "life-node-3"} {
		tok, err := env.CreateToken(label)
		if err != nil {
			t.Fatal(err)
		}
		conf, err := os.ReadFile(env.ConfPath())
		if err != nil || !strings.Contains(string(conf), "directories.tokendir = "+env.TokenDir()) {
			t.Fatalf("conf: %v\n%s", err, conf)
		}
		if tok.Label != label || len(tok.Serial) != 16 || tok.UserPIN == tok.SOPIN || len(tok.UserPIN) < 16 {
			t.Fatalf("token %s: unexpected fields", tok)
		}
		if strings.Contains(tok.String(), tok.UserPIN) || strings.Contains(tok.String(), tok.SOPIN) {
			t.Fatal("Token.String shows a PIN")
		}
		toks = append(toks, tok)
		hs = append(hs, open(t, tok)) // created while the others are open: visible at once
	}
	for i, h := range hs {
		if h.Token().Serial != toks[i].Serial {
			t.Fatalf("HSM %d opened token %s, want %s", i, h.Token().Serial, toks[i].Serial)
		}
		if _, err := h.Random(context.Background(), 8); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.CreateToken("life-node-1"); !errors.Is(err, keys.ErrTokenExists) {
		t.Fatalf("duplicate label: %v", err)
	}
	if _, err := env.CreateToken(strings.Repeat("x", 33)); !errors.Is(err, keys.ErrInvalidInput) {
		t.Fatalf("33-byte label: %v", err)
	}

	if err := toks[0].Delete(); !errors.Is(err, softhsm.ErrTokenInUse) {
		t.Fatalf("delete while open: %v", err)
	}
	hs[0].Close()
	if err := toks[0].Delete(); err != nil {
		t.Fatal(err)
	}
	if listed(t, env, "life-node-1") {
		t.Fatal("deleted token still listed")
	}
	if err := toks[0].Delete(); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	// The library stays initialised (other HSMs are open), so the deleted
	// token's slot is stale; a new token must still be created.
	again, err := env.CreateToken("life-node-4")
	if err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	h4 := open(t, again)
	if _, err := h4.Random(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	h4.Close()
	for _, h := range hs[1:] {
		h.Close()
	}
	for _, tok := range append(toks[1:], again) {
		if err := tok.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	if keys.ModuleInitialized(env.Lib()) {
		t.Fatal("library still initialised after every HSM closed")
	}
	if _, err := os.Stat(env.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary directory left behind: %v", err)
	}
	// And it comes back for the next token.
	tok, err := env.CreateToken("life-node-5")
	if err != nil {
		t.Fatal(err)
	}
	h := open(t, tok)
	h.Close()
	if err := tok.Delete(); err != nil {
		t.Fatal(err)
	}
}

func TestOneEnvPerProcess(t *testing.T) {
	env := softhsmtest.Env(t)
	if _, err := softhsm.Setup(t.TempDir()); !errors.Is(err, softhsm.ErrConflict) {
		t.Fatalf("Setup after Temp: %v", err)
	}
	again, err := softhsm.Temp()
	if err != nil || again != env {
		t.Fatalf("Temp twice: %v", err)
	}
}

const childEnv = "PANVAULT_SOFTHSM_TEST_CHILD"

// A persistent directory (panvault dev) keeps its tokens across processes.
// Each step runs in a fresh process, since one process has one Env.
func TestPersistentSetup(t *testing.T) {
	if step := os.Getenv(childEnv); step != "" {
		persistentChild(t, step)
		return
	}
	softhsmtest.Env(t)
	dir := t.TempDir()
	for _, step := range []string{"create", "reopen"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPersistentSetup$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+step, "PANVAULT_SOFTHSM_TEST_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("step %s: %v\n%s", step, err, out)
		}
	}
}

func persistentChild(t *testing.T, step string) {
	dir := os.Getenv("PANVAULT_SOFTHSM_TEST_DIR")
	env, err := softhsm.Setup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if same, err := softhsm.Setup(dir); err != nil || same != env {
		t.Fatalf("Setup twice with the same dir: %v", err)
	}
	const label, so, user = "dev-node-1", "dev-so-pin-1234", "dev-user-pin-1234"
	switch step {
	case "create":
		tok, err := env.CreateTokenWithPINs(label, so, user)
		if err != nil {
			t.Fatal(err)
		}
		h := open(t, tok)
		h.Close()
	case "reopen":
		if !listed(t, env, label) {
			t.Fatal("token made by the previous process is not listed")
		}
		h, err := keys.Open(context.Background(), keys.Config{Lib: env.Lib(), TokenLabel: label, PIN: user})
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		if _, err := os.Stat(env.TokenDir()); err != nil {
			t.Fatal(err)
		}
	}
}
