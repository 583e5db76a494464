package ceremony_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// logBuilder drives ceremonies the way the vault will: every step's new
// state, registry and chained entry together.
type logBuilder struct {
	t       testing.TB
	reg     *ceremony.Registry
	states  map[string]ceremony.State
	entries []ceremony.LogEntry
}

func newLog(t testing.TB, reg *ceremony.Registry) *logBuilder {
	b := &logBuilder{t: t, reg: reg, states: map[string]ceremony.State{}}
	e, err := ceremony.Initialise(reg, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b.add(e)
	return b
}

func (b *logBuilder) add(e ceremony.LogEntry) {
	b.t.Helper()
	var prev *ceremony.LogEntry
	if n := len(b.entries); n > 0 {
		prev = &b.entries[n-1]
	}
	c, err := ceremony.Chain(prev, e)
	if err != nil {
		b.t.Fatalf("Chain: %v", err)
	}
	b.entries = append(b.entries, c)
}

func (b *logBuilder) step(st ceremony.State, e ceremony.LogEntry, err error) string {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("step: %v", err)
	}
	b.states[st.ID] = st
	b.add(e)
	return st.ID
}

func (b *logBuilder) propose(params ceremony.Params, proposer string, at time.Time, n byte) string {
	b.t.Helper()
	p, err := ceremony.NewProposal(params, proposer, at, time.Hour, nonce(n))
	if err != nil {
		b.t.Fatal(err)
	}
	return b.step(ceremony.Propose(b.reg, p, at))
}

func (b *logBuilder) approve(id string, p party, at time.Time) {
	b.t.Helper()
	a, err := ceremony.SignApproval(p.signer, p.name, b.states[id].Proposal)
	if err != nil {
		b.t.Fatal(err)
	}
	b.step(ceremony.Approve(b.reg, b.states[id], a, at))
}

func (b *logBuilder) reject(id string, p party, reason string, at time.Time) {
	b.t.Helper()
	r, err := ceremony.SignRejection(p.signer, p.name, b.states[id].Proposal, reason)
	if err != nil {
		b.t.Fatal(err)
	}
	b.step(ceremony.Reject(b.reg, b.states[id], r, at))
}

func (b *logBuilder) execute(id, outcome string, at time.Time) {
	b.t.Helper()
	st, reg, e, err := ceremony.Execute(b.reg, b.states[id], at, outcome)
	b.step(st, e, err)
	b.reg = reg
}

// scenario runs one ceremony of every outcome and a registry change.
func scenario(t testing.TB) *logBuilder {
	f := newFixture(t)
	b := newLog(t, f.reg)
	dave := newParty(t, "dave", edSigner(t, 4))

	rot := b.propose(ceremony.RotateKey{Name: "payments-p256"}, "alice", t0, 1)
	b.approve(rot, f.bob, t0.Add(time.Minute))
	b.approve(rot, f.carol, t0.Add(2*time.Minute))
	b.execute(rot, "key payments-p256 version 2 created", t0.Add(3*time.Minute))

	add := b.propose(dave.c.AddProposal(), operator, t0.Add(4*time.Minute), 2)
	b.approve(add, f.alice, t0.Add(5*time.Minute))
	b.reject(add, f.carol, "not trained yet", t0.Add(6*time.Minute))
	b.approve(add, f.bob, t0.Add(7*time.Minute))
	b.execute(add, "custodian dave registered", t0.Add(8*time.Minute))

	// dave votes now.
	des := b.propose(ceremony.DestroyVersion{Name: "pan-gcm", Version: 1}, operator, t0.Add(9*time.Minute), 3)
	b.reject(des, dave, "still needed", t0.Add(10*time.Minute))
	b.reject(des, f.alice, "", t0.Add(11*time.Minute))
	b.reject(des, f.bob, "", t0.Add(12*time.Minute)) // closes: only carol left

	exp := b.propose(ceremony.ChangeQuorum{M: 3}, "bob", t0.Add(13*time.Minute), 4)
	b.approve(exp, dave, t0.Add(14*time.Minute))
	b.step(ceremony.Expire(b.reg, b.states[exp], t0.Add(13*time.Minute+time.Hour)))

	fail := b.propose(ceremony.SetMinDecryptionVersion{Name: "gone", Version: 2}, operator, t0.Add(2*time.Hour), 5)
	b.approve(fail, dave, t0.Add(2*time.Hour+time.Minute))
	b.approve(fail, f.carol, t0.Add(2*time.Hour+2*time.Minute))
	b.step(ceremony.Fail(b.reg, b.states[fail], t0.Add(2*time.Hour+3*time.Minute), "key gone does not exist"))
	return b
}

func TestLogChainAndReplay(t *testing.T) {
	b := scenario(t)
	if err := ceremony.VerifyChain(b.entries); err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	got, err := ceremony.Replay(b.entries)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !reflect.DeepEqual(got.Registry, b.reg) {
		t.Errorf("replayed registry differs from the live one")
	}
	if !reflect.DeepEqual(got.States, b.states) {
		t.Errorf("replayed states differ from the live ones")
	}
	last := b.entries[len(b.entries)-1]
	if got.Seq != last.Seq || got.Head != last.Hash {
		t.Errorf("head %d %s, want %d %s", got.Seq, got.Head, last.Seq, last.Hash)
	}
	want := map[ceremony.Status]int{ceremony.StatusExecuted: 2, ceremony.StatusRejected: 1, ceremony.StatusExpired: 1, ceremony.StatusFailed: 1}
	have := map[ceremony.Status]int{}
	for _, st := range got.States {
		have[st.Status]++
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("outcomes %v, want %v", have, want)
	}
	// Stored form round-trips, and a streaming verifier resumed at any
	// point accepts the rest.
	for i, e := range b.entries {
		raw, err := e.Marshal()
		if err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
		back, err := ceremony.ParseEntry(raw)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("entry %d does not round-trip: %v", e.Seq, err)
		}
		v := ceremony.ResumeChain(e.Seq, e.Hash)
		for _, rest := range b.entries[i+1:] {
			if err := v.Next(rest); err != nil {
				t.Fatalf("resumed after %d: %v", e.Seq, err)
			}
		}
	}
}

func TestLogTamperDetection(t *testing.T) {
	b := scenario(t)
	n := len(b.entries)
	clone := func() []ceremony.LogEntry { return append([]ceremony.LogEntry(nil), b.entries...) }
	cases := map[string]func(es []ceremony.LogEntry) []ceremony.LogEntry{
		"altered detail": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[4].Detail = "key payments-p256 version 3 created"
			return es
		},
		"altered time": func(es []ceremony.LogEntry) []ceremony.LogEntry { es[2].Time = es[2].Time.Add(time.Second); return es },
		"altered signature": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			s := append([]byte(nil), es[3].Signature...)
			s[0] ^= 1
			es[3].Signature = s
			return es
		},
		"altered custodian": func(es []ceremony.LogEntry) []ceremony.LogEntry { es[3].Custodian = "alice"; return es },
		"dropped entry":     func(es []ceremony.LogEntry) []ceremony.LogEntry { return append(es[:3], es[4:]...) },
		"swapped entries": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[2], es[3] = es[3], es[2]
			return es
		},
		"duplicated entry": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			return append(es[:4], append([]ceremony.LogEntry{es[3]}, es[4:]...)...)
		},
		"dropped first entry": func(es []ceremony.LogEntry) []ceremony.LogEntry { return es[1:] },
		"renumbered":          func(es []ceremony.LogEntry) []ceremony.LogEntry { es[n-1].Seq++; return es },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			es := mut(clone())
			if err := ceremony.VerifyChain(es); !errors.Is(err, ceremony.ErrChain) {
				t.Fatalf("VerifyChain = %v, want ErrChain", err)
			}
			if _, err := ceremony.Replay(es); err == nil {
				t.Fatalf("Replay accepted a tampered log")
			}
		})
	}
	// A stored entry with one bit flipped anywhere does not parse.
	raw, err := b.entries[3].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		c := append([]byte(nil), raw...)
		c[i] ^= 0x01
		if _, err := ceremony.ParseEntry(c); err == nil {
			t.Fatalf("bit flip at byte %d of %d accepted", i, len(raw))
		}
	}
}

// TestReplayCatchesRechainedForgery: someone able to rewrite the whole
// stored log recomputes every hash, so the chain verifies; the replay
// still refuses, because signatures and rules are checked again.
func TestReplayCatchesRechainedForgery(t *testing.T) {
	b := scenario(t)
	rechain := func(es []ceremony.LogEntry) []ceremony.LogEntry {
		out := make([]ceremony.LogEntry, 0, len(es))
		for _, e := range es {
			var prev *ceremony.LogEntry
			if len(out) > 0 {
				prev = &out[len(out)-1]
			}
			c, err := ceremony.Chain(prev, e)
			if err != nil {
				t.Fatalf("rechain: %v", err)
			}
			out = append(out, c)
		}
		return out
	}
	f := newFixture(t)
	cases := map[string]func(es []ceremony.LogEntry) []ceremony.LogEntry{
		// Entry 3 is carol's approval of the first proposal; without it,
		// the execution that follows lacks its quorum.
		"approval removed": func(es []ceremony.LogEntry) []ceremony.LogEntry { return append(es[:3], es[4:]...) },
		"signature replaced": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[3].Signature = append([]byte(nil), es[2].Signature...)
			return es
		},
		"approval attributed to the proposer": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[3].Custodian, es[3].Key = "alice", f.alice.c.Fingerprint()
			return es
		},
		"outcome rewritten": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[11].Status = ceremony.StatusRejected // a rejection that did not close it
			return es
		},
		"approval after expiry": func(es []ceremony.LogEntry) []ceremony.LogEntry {
			es[3].Time = t0.Add(2 * time.Hour)
			return es
		},
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			es := rechain(mut(append([]ceremony.LogEntry(nil), b.entries...)))
			if err := ceremony.VerifyChain(es); err != nil {
				t.Fatalf("rechained log should verify as a chain: %v", err)
			}
			if _, err := ceremony.Replay(es); !errors.Is(err, ceremony.ErrReplay) {
				t.Fatalf("Replay = %v, want ErrReplay", err)
			}
		})
	}
}

func TestChainRules(t *testing.T) {
	f := newFixture(t)
	first, err := ceremony.Initialise(f.reg, t0)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ceremony.Chain(nil, first)
	if err != nil || c1.Seq != 1 || !c1.Prev.IsZero() || c1.Hash.IsZero() {
		t.Fatalf("first entry: %v %+v", err, c1)
	}
	// Unchained or inconsistent entries are refused.
	st, e, err := ceremony.Propose(f.reg, proposal(t, ceremony.RotateKey{Name: "k"}, operator), t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Marshal(); err == nil {
		t.Errorf("Marshal of an unchained entry succeeded")
	}
	bad := []func(e ceremony.LogEntry) ceremony.LogEntry{
		func(e ceremony.LogEntry) ceremony.LogEntry { e.ProposalID = "0000000000000000"; return e },
		func(e ceremony.LogEntry) ceremony.LogEntry { e.Data = e.Data[:len(e.Data)-1]; return e },
		func(e ceremony.LogEntry) ceremony.LogEntry { e.Status = ceremony.StatusExecuted; return e },
		func(e ceremony.LogEntry) ceremony.LogEntry { e.Custodian = "bob"; return e },
		func(e ceremony.LogEntry) ceremony.LogEntry { e.Type = 42; return e },
		func(e ceremony.LogEntry) ceremony.LogEntry { e.Time = time.Time{}; return e },
	}
	for i, mut := range bad {
		if _, err := ceremony.Chain(&c1, mut(e)); !errors.Is(err, ceremony.ErrInvalid) {
			t.Errorf("bad entry %d: Chain = %v", i, err)
		}
	}
	c2, err := ceremony.Chain(&c1, e)
	if err != nil || c2.Seq != 2 || c2.Prev != c1.Hash {
		t.Fatalf("second entry: %v", err)
	}
	v := ceremony.NewChainVerifier()
	if err := v.Next(c2); !errors.Is(err, ceremony.ErrChain) {
		t.Errorf("verifier took entry 2 first: %v", err)
	}
	if err := v.Next(c1); err != nil {
		t.Fatal(err)
	}
	if err := v.Next(c2); err != nil {
		t.Fatal(err)
	}
	if seq, h := v.Head(); seq != 2 || h != c2.Hash {
		t.Errorf("head %d %s", seq, h)
	}
	// A log must start with the registry.
	if _, err := ceremony.Replay([]ceremony.LogEntry{mustChain(t, nil, e)}); !errors.Is(err, ceremony.ErrReplay) {
		t.Errorf("log without initial registry: %v", err)
	}
	_ = st
}

func mustChain(t testing.TB, prev *ceremony.LogEntry, e ceremony.LogEntry) ceremony.LogEntry {
	t.Helper()
	c, err := ceremony.Chain(prev, e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
