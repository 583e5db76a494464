package keys_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
)

// secretAttrs are the attributes that hold key material.
var secretAttrs = map[uint]string{
	pkcs11.CKA_VALUE:            "CKA_VALUE",
	pkcs11.CKA_PRIVATE_EXPONENT: "CKA_PRIVATE_EXPONENT",
	pkcs11.CKA_PRIME_1:          "CKA_PRIME_1",
	pkcs11.CKA_PRIME_2:          "CKA_PRIME_2",
	pkcs11.CKA_EXPONENT_1:       "CKA_EXPONENT_1",
	pkcs11.CKA_EXPONENT_2:       "CKA_EXPONENT_2",
	pkcs11.CKA_COEFFICIENT:      "CKA_COEFFICIENT",
}

// auditP11 sits between an HSM and the PKCS#11 library and records every
// way key material could cross into Go: reading a secret attribute, passing
// a key value in (C_CreateObject), wrapping or unwrapping under anything but
// the master key, generating or unwrapping a key that is not sensitive.
type auditP11 struct {
	keys.RawP11
	mkLabel string

	mu         sync.Mutex
	violations []string
	calls      map[string]int
}

func audit(t *testing.T, h *keys.HSM) *auditP11 {
	a := &auditP11{mkLabel: keys.MasterKeyLabelForTest(h), calls: map[string]int{}}
	keys.SetP11ForTest(h, func(p keys.RawP11) keys.RawP11 { a.RawP11 = p; return a })
	return a
}

func (a *auditP11) note(call, violation string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[call]++
	if violation != "" {
		a.violations = append(a.violations, call+": "+violation)
	}
}

func (a *auditP11) count(call string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[call]
}

func (a *auditP11) check(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range a.violations {
		t.Error(v)
	}
}

func boolAttr(tmpl []*pkcs11.Attribute, typ uint) (val, present bool) {
	for _, at := range tmpl {
		if at.Type == typ {
			return len(at.Value) == 1 && at.Value[0] != 0, true
		}
	}
	return false, false
}

func (a *auditP11) isMasterKey(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle) bool {
	got, err := a.RawP11.GetAttributeValue(sh, o, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil)})
	return err == nil && string(got[0].Value) == a.mkLabel && len(got[1].Value) == 1 && got[1].Value[0] == 1
}

func (a *auditP11) GetAttributeValue(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, req []*pkcs11.Attribute) ([]*pkcs11.Attribute, error) {
	v := ""
	for _, at := range req {
		if name, bad := secretAttrs[at.Type]; bad {
			v += " reads " + name
		}
	}
	a.note("GetAttributeValue", v)
	return a.RawP11.GetAttributeValue(sh, o, req)
}

func (a *auditP11) CreateObject(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	v := ""
	for _, at := range tmpl {
		if _, bad := secretAttrs[at.Type]; bad {
			v = "passes key material into the HSM"
		}
	}
	a.note("CreateObject", v)
	return a.RawP11.CreateObject(sh, tmpl)
}

func (a *auditP11) WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrapping, key pkcs11.ObjectHandle) ([]byte, error) {
	v := ""
	if !a.isMasterKey(sh, wrapping) {
		v = "wraps under a key that is not the master key"
	}
	if m[0].Mechanism != pkcs11.CKM_AES_KEY_WRAP_PAD {
		v += fmt.Sprintf(" mechanism %#x", m[0].Mechanism)
	}
	a.note("WrapKey", v)
	return a.RawP11.WrapKey(sh, m, wrapping, key)
}

func (a *auditP11) UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, unwrapping pkcs11.ObjectHandle, wrapped []byte, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	v := ""
	if !a.isMasterKey(sh, unwrapping) {
		v = "unwraps under a key that is not the master key"
	}
	if s, ok := boolAttr(tmpl, pkcs11.CKA_SENSITIVE); !ok || !s {
		v += " unwrapped key not sensitive"
	}
	if x, ok := boolAttr(tmpl, pkcs11.CKA_EXTRACTABLE); !ok || x {
		v += " unwrapped key extractable"
	}
	a.note("UnwrapKey", v)
	return a.RawP11.UnwrapKey(sh, m, unwrapping, wrapped, tmpl)
}

func (a *auditP11) GenerateKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	v := ""
	if s, ok := boolAttr(tmpl, pkcs11.CKA_SENSITIVE); !ok || !s {
		v = "generated key not sensitive"
	}
	a.note("GenerateKey", v)
	return a.RawP11.GenerateKey(sh, m, tmpl)
}

func (a *auditP11) GenerateKeyPair(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, pub, priv []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle, error) {
	v := ""
	if s, ok := boolAttr(priv, pkcs11.CKA_SENSITIVE); !ok || !s {
		v = "generated private key not sensitive"
	}
	a.note("GenerateKeyPair", v)
	return a.RawP11.GenerateKeyPair(sh, m, pub, priv)
}

// TestNoKeyBytesReachGo runs the whole working-key life cycle — generation
// of every type, wrapping, replication, every operation, session loss and
// restore — through an auditor on every PKCS#11 call of both nodes. Key
// bytes could reach Go only through a secret attribute read, a value passed
// to C_CreateObject, or a wrap under a key we hold in clear; the auditor
// sees none, and every wrap and unwrap is under the master key.
func TestNoKeyBytesReachGo(t *testing.T) {
	a, b, _ := twoNodes(t) // the custodian ceremony is the only place bytes are in Go
	ctx := testCtx(t)
	auda, audb := audit(t, a), audit(t, b)

	var refs []keys.KeyRef
	for _, typ := range replicatedTypes {
		wk, blob := generate(t, a, "audit-"+typ.String(), typ)
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, wk.Ref())
	}
	if _, err := a.GenerateKey(ctx, keys.KeySpec{ID: "audit-ed", Version: 1, Type: keys.KeyEd25519}); !errors.Is(err, keys.ErrNotWrappable) {
		t.Fatalf("ed25519: %v", err)
	}
	exercise := func(h *keys.HSM) {
		t.Helper()
		for i, ref := range refs {
			var err error
			switch replicatedTypes[i] {
			case keys.KeyAES256GCM:
				var ct []byte
				if ct, err = h.Seal(ctx, ref, []byte("4111111111111111"), nil); err == nil {
					_, err = h.Open(ctx, ref, ct, nil)
				}
			case keys.KeyAES256FF1:
				err = h.EncryptBlocks(ctx, ref, make([]byte, 256), make([]byte, 256))
			case keys.KeyHMACSHA256:
				_, err = h.HMAC(ctx, ref, []byte("m"))
			default:
				_, err = h.Sign(ctx, ref, []byte("m"))
			}
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
		}
	}
	exercise(a)
	exercise(b)
	if err := keys.CloseAllSessionsForTest(b); err != nil {
		t.Fatal(err)
	}
	exercise(b) // restores every key by unwrapping its blob again

	auda.check(t)
	audb.check(t)
	n := len(replicatedTypes)
	if got := auda.count("WrapKey"); got != n+1 {
		t.Errorf("node A wrapped %d keys, want %d (every type, plus the refused ed25519)", got, n+1)
	}
	if got := auda.count("GenerateKey") + auda.count("GenerateKeyPair"); got != n+1 {
		t.Errorf("node A generated %d keys, want %d", got, n+1)
	}
	if got := audb.count("UnwrapKey"); got < 2*n {
		t.Errorf("node B unwrapped %d times, want at least %d (load and restore)", got, 2*n)
	}
	if got := auda.count("CreateObject") + audb.count("CreateObject"); got != 0 {
		t.Errorf("%d C_CreateObject calls during the working-key life cycle", got)
	}
	if auda.count("GetAttributeValue") == 0 {
		t.Error("auditor saw no attribute reads: is it wired in?")
	}
}

// TestLoadedKeyAttributes asks the HSM directly: loaded keys are sensitive,
// not extractable, session objects; their values cannot be read; nothing —
// not the master key, not another wrapping key — can wrap them; each is
// limited to its own mechanism and usage. The extractable copy made at
// generation is gone.
func TestLoadedKeyAttributes(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	var refs []keys.KeyRef
	for _, typ := range replicatedTypes {
		wk, blob := generate(t, a, "attr-"+typ.String(), typ)
		if _, err := b.LoadWrapped(ctx, blob); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, wk.Ref())
	}
	for _, h := range []*keys.HSM{a, b} {
		for i, ref := range refs {
			typ := replicatedTypes[i]
			err := keys.RawForTest(ctx, h, ref, func(p keys.RawP11, sh pkcs11.SessionHandle, key, mk pkcs11.ObjectHandle) error {
				got, err := p.GetAttributeValue(sh, key, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
					pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
					pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
					pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, nil),
				})
				if err != nil {
					return err
				}
				want := []bool{true, false, false, true, true}
				for j, at := range got {
					if v := len(at.Value) == 1 && at.Value[0] != 0; v != want[j] {
						t.Errorf("%s: attribute %#x = %v, want %v", ref, at.Type, v, want[j])
					}
				}
				secret := uint(pkcs11.CKA_VALUE)
				if typ == keys.KeyRSA3072PSS {
					secret = pkcs11.CKA_PRIVATE_EXPONENT
				}
				if _, err := p.GetAttributeValue(sh, key, []*pkcs11.Attribute{pkcs11.NewAttribute(secret, nil)}); !isCKR(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
					t.Errorf("%s: reading %s: %v, want CKR_ATTRIBUTE_SENSITIVE", ref, secretAttrs[secret], err)
				}
				kwp := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
				if _, err := p.WrapKey(sh, kwp, mk, key); !isCKR(err, pkcs11.CKR_KEY_UNEXTRACTABLE) {
					t.Errorf("%s: wrap under the master key: %v, want CKR_KEY_UNEXTRACTABLE", ref, err)
				}
				other, err := p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
					pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
					pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
				})
				if err != nil {
					return err
				}
				defer p.DestroyObject(sh, other)
				if w, err := p.WrapKey(sh, kwp, other, key); err == nil || w != nil {
					t.Errorf("%s: wrap under a non-master key succeeded", ref)
				}
				// Only the key's own mechanism and usage.
				var misuse error
				switch typ {
				case keys.KeyAES256GCM:
					misuse = p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, key)
				case keys.KeyAES256FF1:
					misuse = p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, key)
				case keys.KeyHMACSHA256:
					misuse = p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA512_HMAC, nil)}, key)
				case keys.KeyECDSAP256, keys.KeyECDSAP384:
					misuse = p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, key)
				case keys.KeyRSA3072PSS:
					misuse = p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_RSA_PKCS, nil)}, key)
				}
				if misuse == nil {
					t.Errorf("%s: a mechanism or usage other than its own was accepted", ref)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
		}
		// No extractable key object is left anywhere (the generated copies
		// were destroyed after their one wrap).
		err := keys.RawForTest(ctx, h, keys.KeyRef{}, func(p keys.RawP11, sh pkcs11.SessionHandle, _, _ pkcs11.ObjectHandle) error {
			for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY} {
				if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
					pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
				}); err != nil {
					return err
				}
				objs, _, err := p.FindObjects(sh, 10)
				p.FindObjectsFinal(sh)
				if err != nil {
					return err
				}
				if len(objs) != 0 {
					t.Errorf("%d extractable objects of class %d remain", len(objs), class)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func isCKR(err error, rv uint) bool {
	var pe pkcs11.Error
	return errors.As(err, &pe) && uint(pe) == rv || err != nil && strings.Contains(err.Error(), fmt.Sprintf("0x%X:", rv))
}
