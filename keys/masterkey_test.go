package keys_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
)

func TestGenerateComponents(t *testing.T) {
	h, _ := newNode(t, "components")
	ctx := testCtx(t)
	for _, n := range []int{-1, 0, 1, keys.MaxComponents + 1} {
		if _, err := h.GenerateComponents(ctx, n); !errors.Is(err, keys.ErrInvalidInput) {
			t.Errorf("GenerateComponents(%d) = %v, want ErrInvalidInput", n, err)
		}
	}
	set, err := h.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Components) != 3 {
		t.Fatalf("got %d components", len(set.Components))
	}
	xor := make([]byte, 32)
	seen := map[string]bool{}
	for i, c := range set.Components {
		v := c.Bytes()
		if len(v) != 32 {
			t.Fatalf("component %d: %d bytes", i+1, len(v))
		}
		if seen[string(v)] || bytes.Equal(v, make([]byte, 32)) {
			t.Fatalf("component %d repeats or is zero", i+1)
		}
		seen[string(v)] = true
		// The HSM's KCV equals AES-CMAC(component, 0^128)[:3] computed in Go.
		if got, want := strings.ToLower(c.KCV().String()), softKCV(v); got != want {
			t.Errorf("component %d: HSM KCV %s, software KCV %s", i+1, got, want)
		}
		for j := range xor {
			xor[j] ^= v[j]
		}
	}
	if got, want := strings.ToLower(set.MasterKCV.String()), softKCV(xor); got != want {
		t.Errorf("master KCV %s, software KCV of the XOR %s", got, want)
	}
	if _, present := h.MasterKeyKCV(); present {
		t.Error("GenerateComponents stored a master key")
	}
}

func TestComponentNeverPrintsItsBytes(t *testing.T) {
	v := bytes.Repeat([]byte{0xA7}, 32)
	kcv, _ := keys.ParseKCV("ABCDEF")
	c, err := keys.NewComponent(v, kcv)
	if err != nil {
		t.Fatal(err)
	}
	hexv := hex.EncodeToString(v)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
		out := fmt.Sprintf(f, c)
		if strings.Contains(strings.ToLower(out), hexv[:8]) || strings.Contains(out, string(v[:4])) {
			t.Errorf("format %s reveals component bytes", f)
		}
		if !strings.Contains(out, "ABCDEF") {
			t.Errorf("format %s = %q, want the KCV", f, out)
		}
	}
	set := &keys.ComponentSet{Components: []*keys.Component{c}}
	if out := fmt.Sprintf("%+v", set); strings.Contains(strings.ToLower(out), hexv[:8]) {
		t.Error("ComponentSet formatting reveals component bytes")
	}
	if _, err := keys.NewComponent(make([]byte, 31), kcv); !errors.Is(err, keys.ErrInvalidInput) {
		t.Errorf("31-byte component: %v", err)
	}
}

func TestLoadMasterKey(t *testing.T) {
	h, tok := newNode(t, "load-mk")
	ctx := testCtx(t)
	set, err := h.GenerateComponents(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("wrong component is named", func(t *testing.T) {
		comps := copyComponents(t, set)
		comps[1].Bytes()[5] ^= 0x01 // a custodian mistyped one byte
		_, err := h.LoadMasterKey(ctx, comps, set.MasterKCV)
		var ce *keys.ComponentError
		if !errors.As(err, &ce) || ce.Index != 2 || !errors.Is(err, keys.ErrKCVMismatch) {
			t.Fatalf("err = %v, want ComponentError for component 2", err)
		}
		if !strings.Contains(err.Error(), "component 2") || !strings.Contains(err.Error(), set.Components[1].KCV().String()) {
			t.Errorf("message %q should name component 2 and its recorded KCV", err)
		}
		assertZeroed(t, comps)
		if _, present := h.MasterKeyKCV(); present {
			t.Fatal("master key present after a failed load")
		}
	})

	t.Run("wrong recorded master KCV", func(t *testing.T) {
		comps := copyComponents(t, set)
		wrong := set.MasterKCV
		wrong[0] ^= 0xFF
		_, err := h.LoadMasterKey(ctx, comps, wrong)
		if !errors.Is(err, keys.ErrKCVMismatch) {
			t.Fatalf("err = %v, want ErrKCVMismatch", err)
		}
		var ce *keys.ComponentError
		if errors.As(err, &ce) {
			t.Fatalf("blamed component %d, but every component was right", ce.Index)
		}
		assertZeroed(t, comps)
		if _, present := h.MasterKeyKCV(); present {
			t.Fatal("master key present after a KCV mismatch")
		}
		// And it was not left in the token either.
		h2 := openHSM(t, tok, nil)
		if _, present := h2.MasterKeyKCV(); present {
			t.Fatal("mismatching master key left in the token")
		}
		h2.Close()
	})

	t.Run("too few components", func(t *testing.T) {
		comps := copyComponents(t, set)[:1]
		if _, err := h.LoadMasterKey(ctx, comps, set.MasterKCV); !errors.Is(err, keys.ErrInvalidInput) {
			t.Fatalf("err = %v, want ErrInvalidInput", err)
		}
		assertZeroed(t, comps)
	})

	t.Run("right components", func(t *testing.T) {
		comps := copyComponents(t, set)
		kcv, err := h.LoadMasterKey(ctx, comps, set.MasterKCV)
		if err != nil {
			t.Fatal(err)
		}
		if kcv != set.MasterKCV {
			t.Fatalf("KCV %s, want %s", kcv, set.MasterKCV)
		}
		assertZeroed(t, comps)
		if got, present := h.MasterKeyKCV(); !present || got != set.MasterKCV {
			t.Fatalf("MasterKeyKCV = %s, %v", got, present)
		}
		if _, err := h.LoadMasterKey(ctx, copyComponents(t, set), set.MasterKCV); !errors.Is(err, keys.ErrMasterKeyExists) {
			t.Fatalf("second load: %v, want ErrMasterKeyExists", err)
		}
		// A new HSM on the token finds it by label.
		h2 := openHSM(t, tok, nil)
		if got, present := h2.MasterKeyKCV(); !present || got != set.MasterKCV {
			t.Fatalf("reopened: MasterKeyKCV = %s, %v", got, present)
		}
		h2.Close()
	})

	t.Run("master key attributes", func(t *testing.T) {
		err := keys.RawForTest(ctx, h, keys.KeyRef{}, func(p keys.RawP11, sh pkcs11.SessionHandle, _, mk pkcs11.ObjectHandle) error {
			a, err := p.GetAttributeValue(sh, mk, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, nil),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
			})
			if err != nil {
				return err
			}
			want := []bool{true, true, true, false, false, false}
			for i, at := range a {
				if got := len(at.Value) == 1 && at.Value[0] == 1; got != want[i] {
					t.Errorf("attribute %#x = %v, want %v", at.Type, got, want[i])
				}
			}
			_, err = p.GetAttributeValue(sh, mk, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err == nil || !strings.Contains(err.Error(), "CKR_ATTRIBUTE_SENSITIVE") {
				t.Errorf("reading the master key's CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func assertZeroed(t *testing.T, comps []*keys.Component) {
	t.Helper()
	for i, c := range comps {
		if !bytes.Equal(c.Bytes(), make([]byte, 32)) {
			t.Errorf("component %d not zeroed after LoadMasterKey", i+1)
		}
	}
}

func TestNoMasterKey(t *testing.T) {
	h, _ := newNode(t, "no-mk")
	other, _ := newNode(t, "no-mk-src")
	ctx := context.Background()
	set, err := other.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, other, set)
	_, blob := generate(t, other, "pan", keys.KeyAES256GCM)

	if _, err := h.GenerateKey(ctx, keys.KeySpec{ID: "x", Version: 1, Type: keys.KeyAES256GCM}); !errors.Is(err, keys.ErrMasterKeyMissing) {
		t.Errorf("GenerateKey without master key: %v", err)
	}
	if _, err := h.LoadWrapped(ctx, blob); !errors.Is(err, keys.ErrMasterKeyMissing) {
		t.Errorf("LoadWrapped without master key: %v", err)
	}
	if len(h.Keys()) != 0 {
		t.Error("a key was loaded without a master key")
	}
}
