package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panvault/panvault/softhsm/softhsmtest"
)

// runCLI runs one command line in-process and returns its exit status, stdout
// and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &stdio{in: strings.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// hsmSection makes a fresh SoftHSM token (skipped without SoftHSM, failed
// under CI=true), writes its PIN file, and returns a config [hsm] section
// for it and the token's PIN.
func hsmSection(t *testing.T, label string) (section, pin string) {
	t.Helper()
	tok := softhsmtest.New(t, label)
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(tok.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[hsm]\nlib = %q\ntoken_label = %q\npin_file = %q\n", tok.Lib, tok.Label, pinFile), tok.UserPIN
}

// hsmConfigFile writes a config with only an [hsm] section for a fresh token.
func hsmConfigFile(t *testing.T, label string) string {
	t.Helper()
	section, _ := hsmSection(t, label)
	cfg := filepath.Join(t.TempDir(), "hsm.toml")
	if err := os.WriteFile(cfg, []byte(section), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
