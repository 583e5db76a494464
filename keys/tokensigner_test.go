package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"golang.org/x/sync/errgroup"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

// signer is vault/ceremony's Signer, restated: keys must not import vault,
// and TokenSigner must fit it structurally.
type signer interface {
	Public() crypto.PublicKey
	Sign(msg []byte) ([]byte, error)
}

var _ signer = (*keys.TokenSigner)(nil)

const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
)

var (
	oidP256    = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
)

// rawRW opens an HSM on tok (sharing the login) and a read-write session
// for planting objects the way another tool might have made them.
func rawRW(t *testing.T, tok *softhsm.Token) (keys.RawP11, pkcs11.SessionHandle) {
	t.Helper()
	h := openHSM(t, tok, nil)
	p := keys.P11ForTest(h)
	sh, err := p.OpenSession(keys.SlotForTest(h), pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.CloseSession(sh) })
	return p, sh
}

// plantPair generates a key pair with the given labels and extractability.
func plantPair(t *testing.T, p keys.RawP11, sh pkcs11.SessionHandle, ed bool, pubLabel, privLabel string, extractable bool) {
	t.Helper()
	m, params := uint(pkcs11.CKM_EC_KEY_PAIR_GEN), oidP256
	if ed {
		m, params = ckmECEdwardsKeyPairGen, oidEd25519
	}
	_, _, err := p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(m, nil)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, pubLabel),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, privLabel),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
		})
	if err != nil {
		t.Fatalf("plant key pair: %v", err)
	}
}

func verify(t *testing.T, pub crypto.PublicKey, msg, sig []byte) bool {
	t.Helper()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, d[:], sig)
	}
	t.Fatalf("public key of type %T", pub)
	return false
}

// A custodian key generated in a SoftHSM token signs (Ed25519 with
// CKM_EDDSA, ECDSA P-256 with CKM_ECDSA), the signatures verify with the
// standard library, and the key is found again by label after reopening.
func TestTokenSignerGenerateSignReopen(t *testing.T) {
	for _, tc := range []struct {
		typ  keys.KeyType
		want string
	}{{keys.KeyEd25519, "ed25519.PublicKey"}, {keys.KeyECDSAP256, "*ecdsa.PublicKey"}} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			tok := softhsmtest.New(t, "custodian")
			ctx := testCtx(t)
			s, err := keys.GenerateTokenSigner(ctx, tok.Config(), "alice-key", tc.typ)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			if got := fmt.Sprintf("%T", s.Public()); got != tc.want || s.Type() != tc.typ || s.Label() != "alice-key" {
				t.Fatalf("public %s type %s label %q", got, s.Type(), s.Label())
			}
			msg := []byte("panvault-ceremony-approval-v1 example message")
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if !verify(t, s.Public(), msg, sig) {
				t.Fatal("signature does not verify with the standard library")
			}
			if verify(t, s.Public(), append(msg, '!'), sig) {
				t.Fatal("signature verifies over another message")
			}
			pub := s.Public()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Sign(msg); !errors.Is(err, keys.ErrClosed) {
				t.Fatalf("sign after close: %v, want ErrClosed", err)
			}

			s2, err := keys.OpenTokenSigner(ctx, tok.Config(), "alice-key")
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s2.Close()
			if !publicEqual(pub, s2.Public()) || s2.Type() != tc.typ {
				t.Fatal("reopened signer has another public key or type")
			}
			sig2, err := s2.SignContext(ctx, msg)
			if err != nil || !verify(t, pub, msg, sig2) {
				t.Fatalf("sign after reopen: %v", err)
			}
			if _, err := keys.GenerateTokenSigner(ctx, tok.Config(), "alice-key", tc.typ); !errors.Is(err, keys.ErrKeyExists) {
				t.Fatalf("second generate with the label: %v, want ErrKeyExists", err)
			}
		})
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// The generated private key is a sensitive, never-extractable token object
// that can only sign; its value cannot be read.
func TestTokenSignerKeyAttributes(t *testing.T) {
	tok := softhsmtest.New(t, "custodian-attrs")
	s, err := keys.GenerateTokenSigner(testCtx(t), tok.Config(), "bob-key", keys.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, sh := rawRW(t, tok)
	if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "bob-key"),
	}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.FindObjects(sh, 4)
	_ = p.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		t.Fatalf("find private key: %d objects, %v", len(objs), err)
	}
	want := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true,
		pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_NEVER_EXTRACTABLE: true,
		pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
		pkcs11.CKA_MODIFIABLE: false,
	}
	for typ, w := range want {
		got, err := p.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
		if err != nil {
			t.Fatalf("attribute %#x: %v", typ, err)
		}
		if v := len(got[0].Value) == 1 && got[0].Value[0] != 0; v != w {
			t.Errorf("attribute %#x is %v, want %v", typ, v, w)
		}
	}
	got, err := p.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil || len(got[0].Value) == 0 || got[0].Value[0] != ckkECEdwards {
		t.Errorf("key type %v %v, want CKK_EC_EDWARDS", got, err)
	}
	if _, err := p.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
		t.Error("the private key's value is readable")
	}
}

// Lookup insists on exactly one sensitive private key and its public key.
func TestTokenSignerRefusals(t *testing.T) {
	tok := softhsmtest.New(t, "custodian-refuse")
	ctx := testCtx(t)
	p, sh := rawRW(t, tok)
	plantPair(t, p, sh, true, "twice", "twice", false)
	plantPair(t, p, sh, true, "twice", "twice", false)
	plantPair(t, p, sh, false, "loose", "loose", true)
	plantPair(t, p, sh, true, "orphan-pub", "orphan", false)
	// "mixed": the private key of one pair, the public key of another.
	plantPair(t, p, sh, true, "mixed", "mixed-other", false)
	plantPair(t, p, sh, true, "mixed-other-pub", "mixed", false)

	for _, tc := range []struct {
		label string
		want  error
	}{
		{"nobody", keys.ErrKeyNotFound},
		{"twice", keys.ErrAmbiguous},
		{"loose", keys.ErrUnsafeKey},
		{"orphan", keys.ErrKeyNotFound},
		{"", keys.ErrInvalidInput},
	} {
		s, err := keys.OpenTokenSigner(ctx, tok.Config(), tc.label)
		if !errors.Is(err, tc.want) {
			if s != nil {
				s.Close()
			}
			t.Errorf("open %q: %v, want %v", tc.label, err, tc.want)
		}
	}

	s, err := keys.OpenTokenSigner(ctx, tok.Config(), "mixed")
	if err != nil {
		t.Fatalf("open mixed: %v", err)
	}
	defer s.Close()
	if sig, err := s.Sign([]byte("m")); !errors.Is(err, keys.ErrBadSignature) || sig != nil {
		t.Fatalf("sign with a mismatched public key: %v, want ErrBadSignature and no signature", err)
	}

	if _, err := keys.GenerateTokenSigner(ctx, tok.Config(), "twice", keys.KeyEd25519); !errors.Is(err, keys.ErrKeyExists) {
		t.Errorf("generate over an existing label: %v", err)
	}
	if _, err := keys.GenerateTokenSigner(ctx, tok.Config(), "new", keys.KeyRSA3072PSS); !errors.Is(err, keys.ErrWrongKeyType) {
		t.Errorf("generate rsa: %v", err)
	}
	cfg := tok.Config()
	cfg.PIN = "not-the-pin"
	if _, err := keys.OpenTokenSigner(ctx, cfg, "mixed"); !errors.Is(err, keys.ErrBadPIN) {
		t.Errorf("wrong pin: %v", err)
	}
}

// A signer is safe for concurrent use.
func TestTokenSignerConcurrent(t *testing.T) {
	tok := softhsmtest.New(t, "custodian-conc")
	s, err := keys.GenerateTokenSigner(testCtx(t), tok.Config(), "k", keys.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var g errgroup.Group
	for i := range 8 {
		g.Go(func() error {
			for j := range 10 {
				msg := []byte(fmt.Sprintf("message %d/%d", i, j))
				sig, err := s.Sign(msg)
				if err != nil {
					return err
				}
				if err := keys.VerifySignature(keys.KeyECDSAP256, s.Public(), msg, sig); err != nil {
					return fmt.Errorf("message %d/%d: %w", i, j, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// The URI names the token, the key and the PIN file; the signer opens from it.
func TestTokenSignerFromURI(t *testing.T) {
	tok := softhsmtest.New(t, "custodian-uri")
	ctx := testCtx(t)
	s, err := keys.GenerateTokenSigner(ctx, tok.Config(), "carol key", keys.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.Public()
	s.Close()
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(tok.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := "pkcs11:token=" + tok.Label + ";object=carol%20key;type=private?pin-source=file:" + pinFile
	u, err := keys.ParsePKCS11URI(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := u.Config(tok.Lib)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := keys.OpenTokenSigner(ctx, cfg, u.Object)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !publicEqual(pub, s2.Public()) {
		t.Fatal("the URI found another key")
	}
	again, err := keys.ParsePKCS11URI(u.String())
	if err != nil || again != u {
		t.Fatalf("String does not round-trip: %q -> %+v, %v", u.String(), again, err)
	}

	if err := os.Chmod(pinFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Config(tok.Lib); !errors.Is(err, keys.ErrInvalidInput) || strings.Contains(err.Error(), tok.UserPIN) {
		t.Fatalf("group-readable pin file: %v", err)
	}
}

func TestParsePKCS11URI(t *testing.T) {
	good := map[string]keys.PKCS11URI{
		"pkcs11:token=cust-alice;object=alice?pin-source=file:/run/pin":                  {Token: "cust-alice", Object: "alice", PINSource: "/run/pin"},
		"pkcs11:object=a%3Bb;token=T?pin-source=file:///run/p&module-path=/usr/lib/x.so": {Token: "T", Object: "a;b", PINSource: "/run/p", ModulePath: "/usr/lib/x.so"},
		"PKCS11:token=T;object=o;type=private":                                           {Token: "T", Object: "o"},
		"pkcs11:token=T;object=o?pin-source=/abs/pin":                                    {Token: "T", Object: "o", PINSource: "/abs/pin"},
	}
	for in, want := range good {
		got, err := keys.ParsePKCS11URI(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"pkcs11:token=T;object=o?pin-value=1234":                "pin-value is refused",
		"file:/x":                                               "must start with",
		"pkcs11:object=o":                                       "token",
		"pkcs11:token=T":                                        "object",
		"pkcs11:token=T;token=U;object=o":                       "twice",
		"pkcs11:token=T;object=o;slot-id=3":                     "not supported",
		"pkcs11:token=T;object=o;type=public":                   "type=private",
		"pkcs11:token=T;object=o?pin-source=relative/pin":       "absolute",
		"pkcs11:token=T;object=o?pin-source=|/bin/cat":          "absolute",
		"pkcs11:token=T;object=o?module-path=lib.so":            "absolute",
		"pkcs11:token=T;object=o?foo=bar":                       "not supported",
		"pkcs11:token=T;object=%zz":                             "percent",
		"pkcs11:token=T;object":                                 "name=value",
		"pkcs11:token=" + strings.Repeat("x", 33) + ";object=o": "token",
	}
	for in, want := range bad {
		_, err := keys.ParsePKCS11URI(in)
		// The inputs may carry a PIN: name them by length, never print them.
		if !errors.Is(err, keys.ErrPKCS11URI) || !strings.Contains(err.Error(), want) {
			t.Errorf("uri of %d bytes: got an error without %q (is ErrPKCS11URI: %v)", len(in), want, errors.Is(err, keys.ErrPKCS11URI))
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("uri of %d bytes: error repeats the pin", len(in))
		}
	}
	if _, err := (keys.PKCS11URI{Token: "T", Object: "o"}).Config("/lib.so"); !errors.Is(err, keys.ErrPKCS11URI) {
		t.Errorf("config without pin-source: %v", err)
	}
	if !bytes.Equal([]byte(keys.PKCS11URI{Token: "a b", Object: "c/d"}.String()), []byte("pkcs11:token=a%20b;object=c/d")) {
		t.Errorf("String: %q", keys.PKCS11URI{Token: "a b", Object: "c/d"}.String())
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=cust-alice;object=alice?pin-source=file:/run/pin")
	f.Add("pkcs11:object=a%3Bb;token=T?pin-source=file:///run/p&module-path=/usr/lib/x.so")
	f.Add("pkcs11:token=T;object=o?pin-value=1234")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := keys.ParsePKCS11URI(s)
		if err != nil {
			return
		}
		again, err := keys.ParsePKCS11URI(u.String())
		if err != nil || again != u {
			t.Fatalf("round trip of %q: %+v %v", s, again, err)
		}
	})
}
