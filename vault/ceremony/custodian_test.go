package ceremony_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

func TestPublicKeys(t *testing.T) {
	ed := edSigner(t, 1)
	p256 := p256Signer(t, 2)
	for _, s := range []*ceremony.FileSigner{ed, p256} {
		der, err := ceremony.MarshalPublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		pub, alg, err := ceremony.ParsePublicKey(der)
		if err != nil {
			t.Fatalf("ParsePublicKey: %v", err)
		}
		if !reflect.DeepEqual(pub, s.Public()) {
			t.Errorf("%s: parsed key differs", alg)
		}
		back, err := ceremony.ParseAlgorithm(alg.String())
		if err != nil || back != alg {
			t.Errorf("ParseAlgorithm(%s) = %v, %v", alg, back, err)
		}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, pub := range map[string]any{"rsa": &rsaKey.PublicKey, "p-384": &p384.PublicKey, "short ed25519": ed25519.PublicKey(make([]byte, 31))} {
		if _, err := ceremony.MarshalPublicKey(pub); !errors.Is(err, ceremony.ErrUnsupportedKey) {
			t.Errorf("MarshalPublicKey(%s) = %v", name, err)
		}
		if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
			if _, _, err := ceremony.ParsePublicKey(der); !errors.Is(err, ceremony.ErrUnsupportedKey) {
				t.Errorf("ParsePublicKey(%s) = %v", name, err)
			}
		}
	}
	edDER, _ := ceremony.MarshalPublicKey(ed.Public())
	for name, der := range map[string][]byte{"empty": nil, "garbage": []byte("not a key"), "trailing byte": append(append([]byte(nil), edDER...), 0), "too long": make([]byte, 300)} {
		if _, _, err := ceremony.ParsePublicKey(der); !errors.Is(err, ceremony.ErrUnsupportedKey) {
			t.Errorf("ParsePublicKey(%s) = %v", name, err)
		}
	}
	if _, err := ceremony.ParseAlgorithm("rsa"); !errors.Is(err, ceremony.ErrUnsupportedKey) {
		t.Errorf("ParseAlgorithm(rsa) = %v", err)
	}
	// FileSigner's signatures verify with the standard library alone and
	// with ceremony.Verify; both refuse another message, a flipped bit and
	// the other key.
	msg := []byte("m")
	for _, c := range []struct {
		s, other *ceremony.FileSigner
	}{{ed, p256}, {p256, ed}} {
		alg := c.s.Algorithm()
		sig, err := c.s.Sign(msg)
		if err != nil {
			t.Fatalf("%s: Sign: %v", alg, err)
		}
		if !stdVerify(c.s.Public(), msg, sig) {
			t.Errorf("%s: signature does not verify with the standard library", alg)
		}
		if err := ceremony.Verify(c.s.Public(), msg, sig); err != nil {
			t.Errorf("%s: Verify: %v", alg, err)
		}
		for name, v := range map[string]struct {
			pub      any
			msg, sig []byte
		}{
			"other message": {c.s.Public(), []byte("n"), sig},
			"flipped bit":   {c.s.Public(), msg, flip(sig)},
			"other key":     {c.other.Public(), msg, sig},
		} {
			if stdVerify(v.pub, v.msg, v.sig) {
				t.Errorf("%s: %s verifies with the standard library", alg, name)
			}
			if err := ceremony.Verify(v.pub, v.msg, v.sig); !errors.Is(err, ceremony.ErrBadSignature) {
				t.Errorf("%s: Verify with %s = %v", alg, name, err)
			}
		}
		if err := ceremony.Verify(&rsaKey.PublicKey, msg, sig); !errors.Is(err, ceremony.ErrUnsupportedKey) {
			t.Errorf("%s: Verify with rsa = %v", alg, err)
		}
	}
	// Ed25519 is deterministic: the production signer gives the standard
	// library's signature byte for byte.
	edSig, _ := ed.Sign(msg)
	if want := ed25519.Sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)), msg); !bytes.Equal(edSig, want) {
		t.Errorf("ed25519 signature differs from crypto/ed25519's")
	}
}

func TestAcknowledgement(t *testing.T) {
	s := p256Signer(t, 7)
	at := time.Date(2026, 2, 1, 8, 30, 0, 0, time.UTC)
	c, err := ceremony.SignAcknowledgement(s, "erin", at)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyAcknowledgement(); err != nil {
		t.Fatalf("VerifyAcknowledgement: %v", err)
	}
	text := ceremony.AcknowledgementStatement(c.Name, c.Fingerprint(), c.Acknowledged)
	for _, want := range []string{"Custodian: erin", c.Fingerprint().String(), "2026-02-01T08:30:00Z", ceremony.Duties, "sole control"} {
		if !strings.Contains(text, want) {
			t.Errorf("statement lacks %q", want)
		}
	}
	other := edSigner(t, 8)
	otherDER, _ := ceremony.MarshalPublicKey(other.Public())
	mut := map[string]func(c ceremony.Custodian) ceremony.Custodian{
		"renamed": func(c ceremony.Custodian) ceremony.Custodian { c.Name = "frank"; return c },
		"re-dated": func(c ceremony.Custodian) ceremony.Custodian {
			c.Acknowledged = c.Acknowledged.Add(time.Nanosecond)
			return c
		},
		"other key":      func(c ceremony.Custodian) ceremony.Custodian { c.PublicKey = otherDER; return c },
		"flipped bit":    func(c ceremony.Custodian) ceremony.Custodian { c.AckSignature = flip(c.AckSignature); return c },
		"approval sig":   func(c ceremony.Custodian) ceremony.Custodian { c.AckSignature = approvalSigOver(t, s); return c },
		"empty":          func(c ceremony.Custodian) ceremony.Custodian { c.AckSignature = nil; return c },
		"no date":        func(c ceremony.Custodian) ceremony.Custodian { c.Acknowledged = time.Time{}; return c },
		"malformed name": func(c ceremony.Custodian) ceremony.Custodian { c.Name = "Erin"; return c },
	}
	for name, m := range mut {
		if err := m(c).VerifyAcknowledgement(); err == nil {
			t.Errorf("%s: acknowledgement still verifies", name)
		}
	}
	if _, err := ceremony.SignAcknowledgement(s, "Erin Smith", at); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := ceremony.SignAcknowledgement(brokenSigner{s}, "erin", at); !errors.Is(err, ceremony.ErrBadSignature) {
		t.Errorf("a signer producing bad signatures: %v", err)
	}
}

// brokenSigner returns signatures that do not verify, like a faulty token.
type brokenSigner struct{ ceremony.Signer }

func (b brokenSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := b.Signer.Sign(msg)
	return flip(sig), err
}

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	if len(c) > 0 {
		c[len(c)-1] ^= 0x80
	}
	return c
}

// approvalSigOver signs an approval message with s, to be offered where
// another kind of signature is expected.
func approvalSigOver(t testing.TB, s ceremony.Signer) []byte {
	a, err := ceremony.SignApproval(s, "", goldenProposals(t)["rotate-key"])
	if err != nil {
		t.Fatal(err)
	}
	return a.Signature
}

func TestRegistry(t *testing.T) {
	f := newFixture(t)
	if f.reg.N() != 3 || f.reg.Quorum != 2 {
		t.Fatalf("N %d M %d", f.reg.N(), f.reg.Quorum)
	}
	names := []string{f.reg.Custodians[0].Name, f.reg.Custodians[1].Name, f.reg.Custodians[2].Name}
	if !reflect.DeepEqual(names, []string{"alice", "bob", "carol"}) {
		t.Errorf("custodians not sorted: %v", names)
	}
	if c, ok := f.reg.LookupKey(f.bob.c.Fingerprint()); !ok || c.Name != "bob" {
		t.Errorf("LookupKey(bob) = %v %v", c.Name, ok)
	}
	if _, ok := f.reg.Lookup("mallory"); ok {
		t.Errorf("mallory found")
	}
	b, err := f.reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ceremony.ParseRegistry(b)
	if err != nil || !reflect.DeepEqual(back, f.reg) {
		t.Fatalf("registry round trip: %v", err)
	}
	if _, err := ceremony.ParseRegistry(append(b, 0)); !errors.Is(err, ceremony.ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}

	c := []ceremony.Custodian{f.alice.c, f.bob.c, f.carol.c}
	twin := newParty(t, "zed", f.alice.signer).c // alice's key under another name
	forged := f.carol.c
	forged.AckSignature = flip(forged.AckSignature)
	future := newParty(t, "dave", edSigner(t, 4)).c
	future.Acknowledged = t0.Add(time.Hour)
	cases := []struct {
		name string
		cs   []ceremony.Custodian
		m    int
		want error
	}{
		{"quorum 1", c, 1, ceremony.ErrQuorum},
		{"quorum above N", c, 4, ceremony.ErrQuorum},
		{"single custodian", c[:1], 1, ceremony.ErrQuorum},
		{"empty", nil, 2, ceremony.ErrQuorum},
		{"same name twice", []ceremony.Custodian{f.alice.c, f.alice.c, f.bob.c}, 2, ceremony.ErrCustodianExists},
		{"same key twice", []ceremony.Custodian{f.alice.c, twin, f.bob.c}, 2, ceremony.ErrCustodianExists},
		{"forged acknowledgement", []ceremony.Custodian{f.alice.c, f.bob.c, forged}, 2, ceremony.ErrBadSignature},
		{"acknowledged in the future", []ceremony.Custodian{f.alice.c, f.bob.c, future}, 2, ceremony.ErrInvalid},
		{"M = N = 3", c, 3, nil},
	}
	for _, tc := range cases {
		_, err := ceremony.NewRegistry(tc.cs, tc.m, t0)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: NewRegistry = %v, want %v", tc.name, err, tc.want)
		}
	}
	// ParseRegistry refuses structural problems even in valid framing.
	bad := *f.reg
	bad.Custodians = []ceremony.Custodian{f.reg.Custodians[1], f.reg.Custodians[0], f.reg.Custodians[2]}
	if _, err := bad.Marshal(); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("unsorted registry: %v", err)
	}
	// Verify catches an acknowledgement broken after parsing.
	broken := *back
	broken.Custodians = append([]ceremony.Custodian(nil), back.Custodians...)
	broken.Custodians[2].AckSignature = flip(broken.Custodians[2].AckSignature)
	if err := broken.Validate(); err != nil {
		t.Errorf("Validate checks structure only: %v", err)
	}
	if err := broken.Verify(); !errors.Is(err, ceremony.ErrBadSignature) {
		t.Errorf("Verify = %v", err)
	}
}
