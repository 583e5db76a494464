package keys_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

func TestConfigValidation(t *testing.T) {
	good := keys.Config{Lib: "/x.so", TokenLabel: "t", PIN: "secret-pin-1234"}
	bad := map[string]func(*keys.Config){
		"no lib":        func(c *keys.Config) { c.Lib = "" },
		"no label":      func(c *keys.Config) { c.TokenLabel = "" },
		"long label":    func(c *keys.Config) { c.TokenLabel = strings.Repeat("x", 33) },
		"padded label":  func(c *keys.Config) { c.TokenLabel = "t " },
		"no pin":        func(c *keys.Config) { c.PIN = "" },
		"negative pool": func(c *keys.Config) { c.PoolSize = -1 },
		"huge pool":     func(c *keys.Config) { c.PoolSize = keys.MaxPoolSize + 1 },
		"long mk label": func(c *keys.Config) { c.MasterKeyLabel = strings.Repeat("m", 129) },
	}
	for name, f := range bad {
		c := good
		f(&c)
		_, err := keys.Open(context.Background(), c)
		if !errors.Is(err, keys.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, good); strings.Contains(out, good.PIN) {
			t.Errorf("Config formatted with %s shows the PIN", f)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tok := softhsmtest.New(t, "open-errors")
	ctx := context.Background()

	t.Run("wrong pin", func(t *testing.T) {
		cfg := tok.Config()
		cfg.PIN = "wrong-pin-0000"
		h, err := keys.Open(ctx, cfg)
		if !errors.Is(err, keys.ErrBadPIN) || h != nil {
			t.Fatalf("Open with wrong PIN: %v", err)
		}
		msg := err.Error()
		if strings.Contains(msg, cfg.PIN) || strings.Contains(msg, tok.UserPIN) {
			t.Fatal("error message contains a PIN")
		}
		if !strings.Contains(msg, tok.Label) {
			t.Errorf("error %q should name the token", msg)
		}
		// The token is not locked: the right PIN still works.
		openHSM(t, tok, nil).Close()
	})

	t.Run("wrong pin while the token is open", func(t *testing.T) {
		h1 := openHSM(t, tok, nil)
		cfg := tok.Config()
		cfg.PIN = "wrong-pin-0000"
		if _, err := keys.Open(ctx, cfg); !errors.Is(err, keys.ErrBadPIN) {
			t.Fatalf("second Open with wrong PIN while logged in: %v", err)
		}
		h2 := openHSM(t, tok, nil)
		if _, err := h2.Random(ctx, 8); err != nil {
			t.Fatal(err)
		}
		if _, err := h1.Random(ctx, 8); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("missing library", func(t *testing.T) {
		cfg := tok.Config()
		cfg.Lib = filepath.Join(t.TempDir(), "libnothere.so")
		_, err := keys.Open(ctx, cfg)
		if !errors.Is(err, keys.ErrLibrary) || !errors.Is(err, keys.ErrHSMUnavailable) || !strings.Contains(err.Error(), "libnothere.so") {
			t.Fatalf("missing library: %v", err)
		}
		notLib := filepath.Join(t.TempDir(), "libtext.so")
		if err := os.WriteFile(notLib, []byte("not a library"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Lib = notLib
		if _, err := keys.Open(ctx, cfg); !errors.Is(err, keys.ErrLibrary) {
			t.Fatalf("file that is not a library: %v", err)
		}
	})

	t.Run("missing token label", func(t *testing.T) {
		cfg := tok.Config()
		cfg.TokenLabel = "no-such-token"
		_, err := keys.Open(ctx, cfg)
		if !errors.Is(err, keys.ErrTokenNotFound) || !strings.Contains(err.Error(), "no-such-token") {
			t.Fatalf("missing token: %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := keys.Open(cctx, tok.Config()); !errors.Is(err, context.Canceled) {
			t.Fatalf("Open with cancelled context: %v", err)
		}
	})
}

// The library is initialised once, shared, and finalised with the last
// HSM; a library someone else initialised is used and left initialised.
func TestModuleSharing(t *testing.T) {
	tok := softhsmtest.New(t, "module")
	if keys.ModuleInitialized(tok.Lib) {
		t.Fatal("library initialised before the test opened anything (an HSM leaked from another test?)")
	}
	h1 := openHSM(t, tok, nil)
	h2 := openHSM(t, tok, nil)
	if !keys.ModuleInitialized(tok.Lib) {
		t.Fatal("not initialised with two HSMs open")
	}
	h1.Close()
	if !keys.ModuleInitialized(tok.Lib) {
		t.Fatal("finalised while an HSM is still open")
	}
	if _, err := h2.Random(context.Background(), 4); err != nil {
		t.Fatalf("second HSM after the first closed: %v", err)
	}
	if _, err := h1.Random(context.Background(), 4); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("closed HSM: %v", err)
	}
	h2.Close()
	h2.Close() // idempotent
	if keys.ModuleInitialized(tok.Lib) {
		t.Fatal("still initialised after the last HSM closed")
	}

	// Someone else initialised the library: tolerated, and not finalised by us.
	foreign := pkcs11.New(tok.Lib)
	if foreign == nil {
		t.Fatal("cannot load library")
	}
	if err := foreign.Initialize(); err != nil {
		t.Fatal(err)
	}
	h3 := openHSM(t, tok, nil)
	if _, err := h3.Random(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	h3.Close()
	if err := foreign.Finalize(); err != nil {
		t.Fatalf("foreign Finalize: %v (did keys finalise a library it did not initialise?)", err)
	}
}

func TestPoolDeadline(t *testing.T) {
	tok := softhsmtest.New(t, "pool")
	h := openHSM(t, tok, func(c *keys.Config) { c.PoolSize = 1 })
	ctx := context.Background()
	release, err := keys.HoldSessionForTest(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.InUse != 1 || st.Size != 1 {
		t.Fatalf("stats with one session lent: %+v", st)
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = h.Random(dctx, 8)
	if !errors.Is(err, keys.ErrNoSession) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Random with the only session lent: %v", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := h.Random(cctx, 8); !errors.Is(err, context.Canceled) {
		t.Fatalf("Random with cancelled context: %v", err)
	}
	if st := h.Stats(); st.Waits < 2 {
		t.Fatalf("waits not counted: %+v", st)
	}
	release()
	if _, err := h.Random(ctx, 8); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if st := h.Stats(); st.InUse != 0 || st.Idle != 1 || st.Opened != 1 {
		t.Fatalf("stats after release: %+v", st)
	}
}

// Close waits for operations holding sessions and then refuses new ones.
func TestCloseWaitsForSessions(t *testing.T) {
	tok := softhsmtest.New(t, "close")
	h := openHSM(t, tok, nil)
	ctx := context.Background()
	release, err := keys.HoldSessionForTest(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		h.Close()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Close returned while a session was lent")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	<-done
	if _, err := h.Random(ctx, 8); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
