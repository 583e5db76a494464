package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openHSM opens tok and closes it when the test ends (before the token is deleted).
func openHSM(t testing.TB, tok *softhsm.Token, edit func(*keys.Config)) *keys.HSM {
	t.Helper()
	cfg := tok.Config()
	if edit != nil {
		edit(&cfg)
	}
	h, err := keys.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", tok, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// copyComponents returns fresh copies, since LoadMasterKey zeroes what it is given.
func copyComponents(t testing.TB, set *keys.ComponentSet) []*keys.Component {
	t.Helper()
	out := make([]*keys.Component, len(set.Components))
	for i, c := range set.Components {
		cp, err := keys.NewComponent(append([]byte(nil), c.Bytes()...), c.KCV())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = cp
	}
	return out
}

// newNode is one simulated node: its own token, opened, no master key yet.
func newNode(t testing.TB, name string) (*keys.HSM, *softhsm.Token) {
	t.Helper()
	tok := softhsmtest.New(t, name)
	return openHSM(t, tok, nil), tok
}

// loadMK loads the components on h and checks the resulting KCV.
func loadMK(t testing.TB, h *keys.HSM, set *keys.ComponentSet) {
	t.Helper()
	kcv, err := h.LoadMasterKey(testCtx(t), copyComponents(t, set), set.MasterKCV)
	if err != nil {
		t.Fatalf("load master key: %v", err)
	}
	if kcv != set.MasterKCV {
		t.Fatalf("master key kcv %s, want %s", kcv, set.MasterKCV)
	}
}

// twoNodes returns two HSMs on separate tokens holding the same master key.
func twoNodes(t testing.TB) (a, b *keys.HSM, set *keys.ComponentSet) {
	t.Helper()
	a, _ = newNode(t, "node-a")
	b, _ = newNode(t, "node-b")
	set, err := a.GenerateComponents(testCtx(t), 3)
	if err != nil {
		t.Fatalf("generate components: %v", err)
	}
	loadMK(t, a, set)
	loadMK(t, b, set)
	return a, b, set
}

// generate makes a key on h and fails the test on error.
func generate(t testing.TB, h *keys.HSM, id string, typ keys.KeyType) (*keys.WrappedKey, []byte) {
	t.Helper()
	wk, err := h.GenerateKey(testCtx(t), keys.KeySpec{ID: id, Version: 1, Type: typ})
	if err != nil {
		t.Fatalf("generate %s %s: %v", id, typ, err)
	}
	blob, err := wk.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return wk, blob
}
