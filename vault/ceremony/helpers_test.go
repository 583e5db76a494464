package ceremony_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// memSigner is a custodian key held in memory: the test's own Signer
// implementation, independent of FileSigner, standing in for a token.
type memSigner struct{ priv crypto.Signer }

func (s memSigner) Public() crypto.PublicKey { return s.priv.Public() }

func (s memSigner) Sign(msg []byte) ([]byte, error) {
	switch k := s.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(msg)
		return ecdsa.SignASN1(rand.Reader, k, d[:])
	}
	return nil, errors.New("memSigner: unsupported key")
}

// edSigner returns a deterministic Ed25519 key.
func edSigner(seed byte) memSigner {
	return memSigner{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

// p256Signer returns a deterministic ECDSA P-256 key (scalar = seed).
func p256Signer(t testing.TB, seed byte) memSigner {
	t.Helper()
	raw := make([]byte, 32)
	raw[31] = seed
	raw[0] = 0x42
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatalf("p256 key: %v", err)
	}
	return memSigner{k}
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
		alice:   newParty(t, "alice", edSigner(1)),
		bob:     newParty(t, "bob", p256Signer(t, 2)),
		carol:   newParty(t, "carol", edSigner(3)),
		mallory: newParty(t, "mallory", edSigner(9)),
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
