// Package softhsmtest gives tests throwaway SoftHSM tokens.
//
// New(t, label) returns a fresh token (random PINs) in the process's
// temporary SoftHSM directory and deletes it when the test ends. When
// SoftHSM is missing the test is skipped, except under CI=true, where it
// fails: CI must never pass by skipping the HSM tests.
//
// Close every keys.HSM opened on the token before the test ends (for
// instance with t.Cleanup registered after New, which runs first): a token
// still open is not deleted and the test is marked failed.
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	"github.com/panvault/panvault/softhsm"
)

// RequiredUnderCI reports whether a missing SoftHSM must fail tests: when
// the environment variable CI parses as true.
func RequiredUnderCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Require skips the test (fails it under CI=true) when SoftHSM's library is
// missing.
func Require(t testing.TB) {
	t.Helper()
	if _, err := softhsm.FindLibrary(); err != nil {
		if RequiredUnderCI() {
			t.Fatalf("SoftHSM is required when CI=true: %v", err)
		}
		t.Skipf("SoftHSM not available: %v", err)
	}
}

// Env returns the process's temporary SoftHSM environment, or skips the test
// (fails it under CI=true) when SoftHSM is missing.
func Env(t testing.TB) *softhsm.Env {
	t.Helper()
	Require(t)
	env, err := softhsm.Temp()
	if err != nil {
		t.Fatalf("softhsm environment: %v", err)
	}
	return env
}

// New creates a token labelled label plus a random suffix (at most 32
// bytes in all) with random PINs, and deletes it at the end of the test.
func New(t testing.TB, label string) *softhsm.Token {
	t.Helper()
	env := Env(t)
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatalf("random label suffix: %v", err)
	}
	if len(label) > 23 {
		label = label[:23]
	}
	tok, err := env.CreateToken(label + "-" + hex.EncodeToString(suffix))
	if err != nil {
		t.Fatalf("create SoftHSM token: %v", err)
	}
	t.Cleanup(func() {
		if err := tok.Delete(); err != nil {
			t.Errorf("delete SoftHSM token %s: %v", tok, err)
		}
	})
	return tok
}
