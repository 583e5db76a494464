package ceremony_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// keyFileSigner writes priv to a PKCS#8 PEM key file (mode 0600) in a
// temporary directory and loads it with ceremony.LoadKeyFile, so that every
// test signs through the production FileSigner, the path dev mode uses.
// The keys are deterministic so that frozen transcript hashes that embed an
// Ed25519 acknowledgement stay fixed.
func keyFileSigner(t testing.TB, priv crypto.Signer) *ceremony.FileSigner {
	t.Helper()
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("encode test key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "custodian.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatalf("write test key file: %v", err)
	}
	s, err := ceremony.LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := priv.Public().(equaler); !ok || !pub.Equal(s.Public()) {
		t.Fatalf("the loaded key file holds another key than the one written")
	}
	return s
}

// edSigner returns a deterministic Ed25519 custodian key (seed repeated).
func edSigner(t testing.TB, seed byte) *ceremony.FileSigner {
	t.Helper()
	return keyFileSigner(t, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
}

// p256Signer returns a deterministic ECDSA P-256 custodian key.
func p256Signer(t testing.TB, seed byte) *ceremony.FileSigner {
	t.Helper()
	raw := make([]byte, 32)
	raw[31] = seed
	raw[0] = 0x42
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatalf("p256 key: %v", err)
	}
	return keyFileSigner(t, k)
}

// stdVerify reports whether sig is a valid signature of msg by pub, checked
// with the standard library alone (pure Ed25519; ECDSA P-256 over
// SHA-256(msg), ASN.1 DER) and independent of ceremony.Verify, so that a bug
// shared by the production signer and verifier cannot pass unnoticed.
func stdVerify(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return false
		}
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, d[:], sig)
	}
	return false
}

// party is a custodian and their key.
type party struct {
	name   string
	signer ceremony.Signer
	c      ceremony.Custodian
}

func newParty(t testing.TB, name string, s ceremony.Signer) party {
	t.Helper()
	c, err := ceremony.SignAcknowledgement(s, name, t0.Add(-2*time.Hour))
	if err != nil {
		t.Fatalf("acknowledgement for %s: %v", name, err)
	}
	if !stdVerify(s.Public(), ceremony.AcknowledgementMessage(name, c.Fingerprint(), c.Acknowledged), c.AckSignature) {
		t.Fatalf("acknowledgement for %s does not verify with the standard library", name)
	}
	return party{name: name, signer: s, c: c}
}

// fixture: alice (Ed25519), bob (P-256), carol (Ed25519) registered with
// quorum 2; mallory has a key but is not registered.
type fixture struct {
	alice, bob, carol, mallory party
	reg                        *ceremony.Registry
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	f := fixture{
		alice:   newParty(t, "alice", edSigner(t, 1)),
		bob:     newParty(t, "bob", p256Signer(t, 2)),
		carol:   newParty(t, "carol", edSigner(t, 3)),
		mallory: newParty(t, "mallory", edSigner(t, 9)),
	}
	reg, err := ceremony.NewRegistry([]ceremony.Custodian{f.carol.c, f.alice.c, f.bob.c}, 2, t0.Add(-time.Hour))
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	f.reg = reg
	return f
}

// nonce returns a reader of a fixed 16-byte nonce.
func nonce(b byte) io.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, ceremony.NonceSize)) }

// proposal makes a proposal created at t0 that expires an hour later.
func proposal(t testing.TB, params ceremony.Params, proposer string) ceremony.Proposal {
	t.Helper()
	p, err := ceremony.NewProposal(params, proposer, t0, time.Hour, nonce(7))
	if err != nil {
		t.Fatalf("NewProposal: %v", err)
	}
	return p
}

// open proposes params by proposer at t0 under reg.
func open(t testing.TB, reg *ceremony.Registry, params ceremony.Params, proposer string) ceremony.State {
	t.Helper()
	st, _, err := ceremony.Propose(reg, proposal(t, params, proposer), t0)
	if err != nil {
		t.Fatalf("Propose: %v", err)
	}
	return st
}

// approve has p approve st at time at, failing the test on error.
func approve(t testing.TB, reg *ceremony.Registry, st ceremony.State, p party, at time.Time) ceremony.State {
	t.Helper()
	a, err := ceremony.SignApproval(p.signer, p.name, st.Proposal)
	if err != nil {
		t.Fatalf("SignApproval by %s: %v", p.name, err)
	}
	h, err := st.Proposal.Transcript()
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	if !stdVerify(p.signer.Public(), ceremony.ApprovalMessage(h.ID(), h), a.Signature) {
		t.Fatalf("approval by %s does not verify with the standard library", p.name)
	}
	next, _, err := ceremony.Approve(reg, st, a, at)
	if err != nil {
		t.Fatalf("Approve by %s: %v", p.name, err)
	}
	return next
}

// mustErr fails unless err wraps want.
func mustErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
