package softhsmtest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

// recorder stands in for *testing.T to observe whether a helper fails or skips.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func run(tb testing.TB, f func(testing.TB)) *recorder {
	r := &recorder{TB: tb}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// Without SoftHSM, tests skip — except under CI=true, where they fail.
func TestMissingSoftHSM(t *testing.T) {
	t.Setenv(softhsm.EnvLib, filepath.Join(t.TempDir(), "libsofthsm2.so"))
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{
		{"true", true},
		{"1", true},
		{"", false},
		{"false", false},
	} {
		t.Setenv("CI", tc.ci)
		for name, f := range map[string]func(testing.TB){
			"Env": func(tb testing.TB) { softhsmtest.Env(tb) },
			"New": func(tb testing.TB) { softhsmtest.New(tb, "x") },
		} {
			r := run(t, f)
			if r.failed != tc.wantFail || r.skipped == tc.wantFail {
				t.Errorf("CI=%q %s: failed=%v skipped=%v, want failed=%v", tc.ci, name, r.failed, r.skipped, tc.wantFail)
			}
			if !strings.Contains(r.msg, "SoftHSM") {
				t.Errorf("CI=%q %s: message %q should say SoftHSM is missing", tc.ci, name, r.msg)
			}
		}
	}
}

// New gives a usable token that is gone after the test.
func TestNew(t *testing.T) {
	softhsmtest.Require(t)
	var tok *softhsm.Token
	t.Run("use", func(t *testing.T) {
		tok = softhsmtest.New(t, "a-rather-long-label-for-a-token")
		if len(tok.Label) > 32 || !strings.HasPrefix(tok.Label, "a-rather-long-label-for") {
			t.Fatalf("label %q", tok.Label)
		}
		h, err := keys.Open(context.Background(), tok.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if _, err := h.Random(context.Background(), 4); err != nil {
			t.Fatal(err)
		}
	})
	if tok == nil {
		t.Fatal("subtest did not run")
	}
	toks, err := softhsmtest.Env(t).Tokens()
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range toks {
		if ti.Serial == tok.Serial {
			t.Fatal("token still present after its test ended")
		}
	}
}
