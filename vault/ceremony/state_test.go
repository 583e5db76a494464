package ceremony_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

const operator = "uri:spiffe://bank.example/ops/jane" // a proposer who is not a custodian

// TestApproveRules is the table of issue #5's rejection cases and the
// other approval rules.
func TestApproveRules(t *testing.T) {
	f := newFixture(t)
	rotate := ceremony.RotateKey{Name: "payments-p256"}
	byOperator := open(t, f.reg, rotate, operator)
	byAlice := open(t, f.reg, rotate, "alice")
	other := open(t, f.reg, ceremony.RotateKey{Name: "other-key"}, operator)
	bobApproved := approve(t, f.reg, byOperator, f.bob, t0.Add(time.Minute))
	rejectedOnce := func() ceremony.State {
		r, err := ceremony.SignRejection(f.carol.signer, "carol", byOperator.Proposal, "no change request")
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := ceremony.Reject(f.reg, byOperator, r, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}()
	closed := func() ceremony.State {
		r, _ := ceremony.SignRejection(f.alice.signer, "alice", byAlice.Proposal, "")
		st, _, err := ceremony.Reject(f.reg, byAlice, r, t0.Add(time.Minute))
		if err != nil || st.Status != ceremony.StatusRejected {
			t.Fatalf("withdrawal: %v, status %v", err, st.Status)
		}
		return st
	}()
	sign := func(p party, st ceremony.State) ceremony.Approval {
		a, err := ceremony.SignApproval(p.signer, p.name, st.Proposal)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	rejSig := func(p party, st ceremony.State) []byte {
		r, err := ceremony.SignRejection(p.signer, p.name, st.Proposal, "")
		if err != nil {
			t.Fatal(err)
		}
		return r.Signature
	}
	withSig := func(a ceremony.Approval, sig []byte) ceremony.Approval { a.Signature = sig; return a }
	withName := func(a ceremony.Approval, n string) ceremony.Approval { a.Custodian = n; return a }
	flipped := func(a ceremony.Approval) ceremony.Approval {
		s := append([]byte(nil), a.Signature...)
		s[len(s)/2] ^= 1
		a.Signature = s
		return a
	}
	malloryAsAlice := sign(f.mallory, byOperator)
	malloryAsAlice.Custodian = "alice"

	cases := []struct {
		name string
		st   ceremony.State
		a    ceremony.Approval
		now  time.Time
		want error
	}{
		{"valid ed25519", byOperator, sign(f.alice, byOperator), t0, nil},
		{"valid ecdsa p-256", byOperator, sign(f.bob, byOperator), t0, nil},
		{"valid, custodian found by key", byOperator, withName(sign(f.carol, byOperator), ""), t0, nil},
		{"unregistered custodian", byOperator, sign(f.mallory, byOperator), t0, ceremony.ErrUnknownCustodian},
		{"unregistered key under a registered name", byOperator, malloryAsAlice, t0, ceremony.ErrUnknownKey},
		{"unregistered key, no name", byOperator, withName(sign(f.mallory, byOperator), ""), t0, ceremony.ErrUnknownKey},
		{"bob's key under alice's name", byOperator, withName(sign(f.bob, byOperator), "alice"), t0, ceremony.ErrUnknownKey},
		{"malformed name", byOperator, withName(sign(f.alice, byOperator), "Alice"), t0, ceremony.ErrInvalid},
		{"signature over a different transcript", byOperator, sign(f.alice, other), t0, ceremony.ErrBadSignature},
		{"rejection signature as approval", byOperator, withSig(sign(f.alice, byOperator), rejSig(f.alice, byOperator)), t0, ceremony.ErrBadSignature},
		{"flipped bit", byOperator, flipped(sign(f.bob, byOperator)), t0, ceremony.ErrBadSignature},
		{"empty signature", byOperator, withSig(sign(f.alice, byOperator), nil), t0, ceremony.ErrBadSignature},
		{"over-long signature", byOperator, withSig(sign(f.alice, byOperator), make([]byte, 200)), t0, ceremony.ErrBadSignature},
		{"second approval by the same custodian", bobApproved, sign(f.bob, bobApproved), t0.Add(2 * time.Minute), ceremony.ErrDuplicateApproval},
		{"approval after own rejection", rejectedOnce, sign(f.carol, rejectedOnce), t0.Add(2 * time.Minute), ceremony.ErrAlreadyVoted},
		{"self-approval by the proposer", byAlice, sign(f.alice, byAlice), t0, ceremony.ErrSelfApproval},
		{"others may approve alice's proposal", byAlice, sign(f.bob, byAlice), t0, nil},
		{"one nanosecond before expiry", byOperator, sign(f.alice, byOperator), byOperator.Proposal.Expires.Add(-1), nil},
		{"at expiry", byOperator, sign(f.alice, byOperator), byOperator.Proposal.Expires, ceremony.ErrExpired},
		{"after expiry", byOperator, sign(f.alice, byOperator), byOperator.Proposal.Expires.Add(time.Hour), ceremony.ErrExpired},
		{"rejected proposal", closed, sign(f.bob, closed), t0.Add(2 * time.Minute), ceremony.ErrClosed},
		{"zero time", byOperator, sign(f.alice, byOperator), time.Time{}, ceremony.ErrInvalid},
		{"state whose transcript is not its proposal's", withTranscriptOf(byOperator, other), sign(f.alice, other), t0, ceremony.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, e, err := ceremony.Approve(f.reg, c.st, c.a, c.now)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("Approve = %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Approve: %v", err)
			}
			if got := len(next.Approvals); got != len(c.st.Approvals)+1 {
				t.Fatalf("%d approvals after one more", got)
			}
			last := next.Approvals[len(next.Approvals)-1]
			if last.Custodian == "" || !last.At.Equal(c.now) || last.Key != c.a.Key {
				t.Fatalf("recorded approval %+v", last)
			}
			if e.Type != ceremony.EntryApproved || e.Custodian != last.Custodian || e.ProposalID != c.st.ID || e.Status != ceremony.StatusPending {
				t.Fatalf("log entry %+v", e)
			}
		})
	}
}

func TestQuorumReachedExactlyAtM(t *testing.T) {
	for _, m := range []int{2, 3} {
		f := newFixture(t)
		reg, err := ceremony.NewRegistry([]ceremony.Custodian{f.alice.c, f.bob.c, f.carol.c}, m, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		st := open(t, reg, ceremony.DestroyVersion{Name: "pan-gcm", Version: 1}, operator)
		parties := []party{f.alice, f.bob, f.carol}
		for i := 0; i < m; i++ {
			if st.Ready(reg) {
				t.Fatalf("M=%d: ready after %d approvals", m, i)
			}
			if _, _, _, err := ceremony.Execute(reg, st, t0.Add(time.Minute), "done"); !errors.Is(err, ceremony.ErrNotReady) {
				t.Fatalf("M=%d: Execute after %d approvals = %v", m, i, err)
			}
			st = approve(t, reg, st, parties[i], t0.Add(time.Duration(i+1)*time.Minute))
			if got := st.ValidApprovals(reg); got != i+1 {
				t.Fatalf("M=%d: %d valid approvals, want %d", m, got, i+1)
			}
		}
		if !st.Ready(reg) {
			t.Fatalf("M=%d: not ready after %d distinct approvals", m, m)
		}
		done, nextReg, e, err := ceremony.Execute(reg, st, t0.Add(10*time.Minute), "version 1 of pan-gcm destroyed")
		if err != nil {
			t.Fatalf("M=%d: Execute: %v", m, err)
		}
		if done.Status != ceremony.StatusExecuted || done.Outcome != "version 1 of pan-gcm destroyed" || nextReg != reg {
			t.Fatalf("M=%d: executed state %v %q, registry changed: %v", m, done.Status, done.Outcome, nextReg != reg)
		}
		if e.Type != ceremony.EntryExecuted || e.Detail != done.Outcome || len(e.Data) != 0 {
			t.Fatalf("M=%d: entry %+v", m, e)
		}
		if _, _, _, err := ceremony.Execute(reg, done, t0.Add(11*time.Minute), "again"); !errors.Is(err, ceremony.ErrClosed) {
			t.Fatalf("M=%d: second Execute = %v", m, err)
		}
		if _, _, err := ceremony.Approve(reg, done, mustSign(t, parties[2], done), t0.Add(12*time.Minute)); m == 2 && !errors.Is(err, ceremony.ErrClosed) {
			t.Fatalf("approve executed proposal = %v", err)
		}
	}
}

func mustSign(t testing.TB, p party, st ceremony.State) ceremony.Approval {
	t.Helper()
	a, err := ceremony.SignApproval(p.signer, p.name, st.Proposal)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTransitionsDoNotModifyTheirInput(t *testing.T) {
	f := newFixture(t)
	base := approve(t, f.reg, open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator), f.alice, t0)
	base.Approvals = append(make([]ceremony.Approval, 0, 8), base.Approvals...) // spare capacity: an append in place would show
	snapshot := base.Clone()
	a := approve(t, f.reg, base, f.bob, t0.Add(time.Second))
	b := approve(t, f.reg, base, f.carol, t0.Add(time.Second))
	if !reflect.DeepEqual(base, snapshot) {
		t.Fatalf("Approve modified its input state")
	}
	if a.Approvals[1].Custodian != "bob" || b.Approvals[1].Custodian != "carol" {
		t.Fatalf("two approvals from one base share storage: %s %s", a.Approvals[1].Custodian, b.Approvals[1].Custodian)
	}
}

func TestRejection(t *testing.T) {
	f := newFixture(t)
	rej := func(p party, st ceremony.State, reason string, at time.Time) (ceremony.State, ceremony.LogEntry, error) {
		r, err := ceremony.SignRejection(p.signer, p.name, st.Proposal, reason)
		if err != nil {
			t.Fatal(err)
		}
		return ceremony.Reject(f.reg, st, r, at)
	}

	t.Run("closes when quorum becomes unreachable", func(t *testing.T) {
		st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator) // 3 eligible, M = 2
		st, e, err := rej(f.alice, st, "not scheduled", t0.Add(time.Minute))
		if err != nil || st.Status != ceremony.StatusPending || e.Status != ceremony.StatusPending || e.Detail != "not scheduled" {
			t.Fatalf("first rejection: %v, %v, %+v", err, st.Status, e)
		}
		if !st.Reachable(f.reg) {
			t.Fatalf("bob and carol can still approve")
		}
		st, e, err = rej(f.bob, st, "", t0.Add(2*time.Minute))
		if err != nil || st.Status != ceremony.StatusRejected || e.Status != ceremony.StatusRejected {
			t.Fatalf("second rejection: %v, %v", err, st.Status)
		}
		if !strings.Contains(st.Outcome, "quorum") || !st.Closed.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("outcome %q closed %v", st.Outcome, st.Closed)
		}
		if _, _, err := ceremony.Approve(f.reg, st, mustSign(t, f.carol, st), t0.Add(3*time.Minute)); !errors.Is(err, ceremony.ErrClosed) {
			t.Fatalf("approval of a rejected proposal = %v", err)
		}
	})
	t.Run("one rejection among two eligible closes", func(t *testing.T) {
		st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, "alice") // bob, carol eligible
		st, _, err := rej(f.carol, st, "", t0)
		if err != nil || st.Status != ceremony.StatusRejected {
			t.Fatalf("%v, %v", err, st.Status)
		}
	})
	t.Run("approved proposal is not closed by a minority", func(t *testing.T) {
		st := approve(t, f.reg, open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator), f.alice, t0)
		st = approve(t, f.reg, st, f.bob, t0)
		st, _, err := rej(f.carol, st, "", t0)
		if err != nil || st.Status != ceremony.StatusPending || !st.Ready(f.reg) {
			t.Fatalf("%v, %v, ready %v", err, st.Status, st.Ready(f.reg))
		}
	})
	t.Run("proposer withdraws", func(t *testing.T) {
		st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, "bob")
		st, _, err := rej(f.bob, st, "typo", t0)
		if err != nil || st.Status != ceremony.StatusRejected || !strings.Contains(st.Outcome, "withdrawn") {
			t.Fatalf("%v, %v %q", err, st.Status, st.Outcome)
		}
	})
	t.Run("rules", func(t *testing.T) {
		st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator)
		approved := approve(t, f.reg, st, f.alice, t0)
		if _, _, err := rej(f.alice, approved, "", t0); !errors.Is(err, ceremony.ErrAlreadyVoted) {
			t.Errorf("reject after approve = %v", err)
		}
		once, _, _ := rej(f.bob, st, "", t0)
		if _, _, err := rej(f.bob, once, "", t0); !errors.Is(err, ceremony.ErrAlreadyVoted) {
			t.Errorf("second rejection = %v", err)
		}
		if _, _, err := rej(f.mallory, st, "", t0); !errors.Is(err, ceremony.ErrUnknownCustodian) {
			t.Errorf("unregistered = %v", err)
		}
		if _, _, err := rej(f.bob, st, "", st.Proposal.Expires); !errors.Is(err, ceremony.ErrExpired) {
			t.Errorf("expired = %v", err)
		}
		r, _ := ceremony.SignRejection(f.bob.signer, "bob", st.Proposal, "reason one")
		r.Reason = "reason two"
		if _, _, err := ceremony.Reject(f.reg, st, r, t0); !errors.Is(err, ceremony.ErrBadSignature) {
			t.Errorf("reason changed after signing = %v", err)
		}
		a := mustSign(t, f.bob, st)
		r = ceremony.Rejection{Custodian: "bob", Key: a.Key, Signature: a.Signature}
		if _, _, err := ceremony.Reject(f.reg, st, r, t0); !errors.Is(err, ceremony.ErrBadSignature) {
			t.Errorf("approval signature as rejection = %v", err)
		}
		if _, err := ceremony.SignRejection(f.bob.signer, "bob", st.Proposal, "line\nbreak"); !errors.Is(err, ceremony.ErrInvalid) {
			t.Errorf("reason with a newline = %v", err)
		}
	})
}

func TestExpire(t *testing.T) {
	f := newFixture(t)
	st := approve(t, f.reg, open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator), f.alice, t0)
	exp := st.Proposal.Expires
	if _, _, err := ceremony.Expire(f.reg, st, exp.Add(-1)); !errors.Is(err, ceremony.ErrNotExpired) {
		t.Fatalf("Expire before expiry = %v", err)
	}
	gone, e, err := ceremony.Expire(f.reg, st, exp)
	if err != nil || gone.Status != ceremony.StatusExpired || e.Type != ceremony.EntryExpired || !gone.Closed.Equal(exp) {
		t.Fatalf("Expire: %v %v %+v", err, gone.Status, e)
	}
	if _, _, err := ceremony.Expire(f.reg, gone, exp.Add(time.Hour)); !errors.Is(err, ceremony.ErrClosed) {
		t.Fatalf("second Expire = %v", err)
	}
	// A proposal whose approvals all came in time does not expire: it is
	// executed, even after its expiry.
	ready := approve(t, f.reg, st, f.carol, exp.Add(-time.Second))
	if _, _, err := ceremony.Expire(f.reg, ready, exp.Add(time.Minute)); !errors.Is(err, ceremony.ErrNotExpired) {
		t.Fatalf("Expire of a ready proposal = %v", err)
	}
	if done, _, _, err := ceremony.Execute(f.reg, ready, exp.Add(time.Minute), "rotated to version 2"); err != nil || done.Status != ceremony.StatusExecuted {
		t.Fatalf("Execute after expiry of a ready proposal: %v", err)
	}
}

func TestFail(t *testing.T) {
	f := newFixture(t)
	st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator)
	if _, _, err := ceremony.Fail(f.reg, st, t0, "key k not found"); !errors.Is(err, ceremony.ErrNotReady) {
		t.Fatalf("Fail before quorum = %v", err)
	}
	st = approve(t, f.reg, approve(t, f.reg, st, f.alice, t0), f.bob, t0)
	if _, _, err := ceremony.Fail(f.reg, st, t0, ""); !errors.Is(err, ceremony.ErrInvalid) {
		t.Fatalf("Fail without reason = %v", err)
	}
	failed, e, err := ceremony.Fail(f.reg, st, t0.Add(time.Second), "key k not found")
	if err != nil || failed.Status != ceremony.StatusFailed || e.Type != ceremony.EntryFailed || e.Detail != "key k not found" {
		t.Fatalf("Fail: %v %v %+v", err, failed.Status, e)
	}
	if _, _, _, err := ceremony.Execute(f.reg, failed, t0.Add(2*time.Second), "done"); !errors.Is(err, ceremony.ErrClosed) {
		t.Fatalf("Execute after Fail = %v", err)
	}
}

func TestProposeChecks(t *testing.T) {
	f := newFixture(t)
	dave := newParty(t, "dave", edSigner(t, 4))
	sameKeyAsAlice := newParty(t, "dave", f.alice.signer)
	pair, err := ceremony.NewRegistry([]ceremony.Custodian{f.alice.c, f.bob.c}, 2, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		reg      *ceremony.Registry
		params   ceremony.Params
		proposer string
		now      time.Time
		want     error
	}{
		{"ok", f.reg, ceremony.RotateKey{Name: "k"}, "alice", t0, nil},
		{"created in the future", f.reg, ceremony.RotateKey{Name: "k"}, "alice", t0.Add(-ceremony.MaxClockSkew - time.Second), ceremony.ErrInvalid},
		{"within clock skew", f.reg, ceremony.RotateKey{Name: "k"}, "alice", t0.Add(-ceremony.MaxClockSkew), nil},
		{"already expired", f.reg, ceremony.RotateKey{Name: "k"}, "alice", t0.Add(time.Hour), ceremony.ErrExpired},
		{"add new custodian", f.reg, dave.c.AddProposal(), "alice", t0, nil},
		{"add existing name", f.reg, f.carol.c.AddProposal(), "alice", t0, ceremony.ErrCustodianExists},
		{"add existing key under a new name", f.reg, sameKeyAsAlice.c.AddProposal(), "bob", t0, ceremony.ErrCustodianExists},
		{"remove unknown", f.reg, ceremony.RemoveCustodian{Name: "dave"}, "alice", t0, ceremony.ErrUnknownCustodian},
		{"remove below quorum", pair, ceremony.RemoveCustodian{Name: "bob"}, operator, t0, ceremony.ErrQuorum},
		{"remove leaving M", f.reg, ceremony.RemoveCustodian{Name: "carol"}, operator, t0, nil},
		{"quorum above N", f.reg, ceremony.ChangeQuorum{M: 4}, operator, t0, ceremony.ErrQuorum},
		{"quorum unchanged", f.reg, ceremony.ChangeQuorum{M: 2}, operator, t0, ceremony.ErrInvalid},
		{"quorum to N", f.reg, ceremony.ChangeQuorum{M: 3}, operator, t0, nil},
		// With N = M = 2 a custodian's own proposal leaves one possible approver.
		{"custodian proposer, N = M = 2", pair, ceremony.RotateKey{Name: "k"}, "alice", t0, ceremony.ErrQuorumUnreachable},
		{"operator proposer, N = M = 2", pair, ceremony.RotateKey{Name: "k"}, operator, t0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := proposal(t, c.params, c.proposer)
			st, e, err := ceremony.Propose(c.reg, p, c.now)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("Propose = %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Propose: %v", err)
			}
			id, _ := p.ID()
			h, _ := p.Transcript()
			if st.ID != id || st.Transcript != h || st.Status != ceremony.StatusPending {
				t.Fatalf("state %s %s %v", st.ID, st.Transcript, st.Status)
			}
			canon, _ := p.Marshal()
			if e.Type != ceremony.EntryProposed || string(e.Data) != string(canon) || e.ProposalID != id {
				t.Fatalf("entry %+v", e)
			}
		})
	}
}

func TestRegistryCeremonies(t *testing.T) {
	f := newFixture(t)
	dave := newParty(t, "dave", p256Signer(t, 4))
	run := func(reg *ceremony.Registry, params ceremony.Params, approvers ...party) (*ceremony.Registry, ceremony.LogEntry) {
		t.Helper()
		st := open(t, reg, params, operator)
		for _, p := range approvers {
			st = approve(t, reg, st, p, t0.Add(time.Minute))
		}
		_, next, e, err := ceremony.Execute(reg, st, t0.Add(2*time.Minute), "applied")
		if err != nil {
			t.Fatalf("%s: Execute: %v", params.Kind(), err)
		}
		back, err := ceremony.ParseRegistry(e.Data)
		if err != nil || !reflect.DeepEqual(back, next) {
			t.Fatalf("%s: entry data is not the new registry: %v", params.Kind(), err)
		}
		return next, e
	}
	reg, _ := run(f.reg, dave.c.AddProposal(), f.alice, f.bob)
	if reg.N() != 4 || f.reg.N() != 3 {
		t.Fatalf("after add: N = %d (old registry N = %d)", reg.N(), f.reg.N())
	}
	c, ok := reg.Lookup("dave")
	if !ok || !c.Registered.Equal(t0.Add(2*time.Minute)) || c.Fingerprint() != dave.c.Fingerprint() {
		t.Fatalf("dave registered as %+v", c)
	}
	if err := reg.Verify(); err != nil {
		t.Fatalf("registry after add: %v", err)
	}
	reg, _ = run(reg, ceremony.ChangeQuorum{M: 3}, f.alice, dave)
	if reg.Quorum != 3 {
		t.Fatalf("quorum %d", reg.Quorum)
	}
	reg, _ = run(reg, ceremony.RemoveCustodian{Name: "carol"}, f.alice, f.bob, dave)
	if _, ok := reg.Lookup("carol"); ok || reg.N() != 3 {
		t.Fatalf("carol still registered (N = %d)", reg.N())
	}

	// A removed custodian's approval stops counting on pending proposals,
	// and a quorum change applies to them.
	st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator)
	st = approve(t, f.reg, approve(t, f.reg, st, f.carol, t0), f.alice, t0)
	if !st.Ready(f.reg) {
		t.Fatal("not ready under the old registry")
	}
	if st.Ready(reg) || st.ValidApprovals(reg) != 1 {
		t.Fatalf("carol's approval still counts after her removal: %d valid", st.ValidApprovals(reg))
	}
	if _, _, _, err := ceremony.Execute(reg, st, t0.Add(3*time.Minute), "x"); !errors.Is(err, ceremony.ErrNotReady) {
		t.Fatalf("Execute with a removed custodian's approval = %v", err)
	}

	// Re-keyed: carol registered again with another key. Her approval made
	// with the old key no longer counts, and she cannot approve again.
	newCarol := newParty(t, "carol", edSigner(t, 33))
	rekeyed, err := ceremony.NewRegistry([]ceremony.Custodian{f.alice.c, f.bob.c, newCarol.c}, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready(rekeyed) || st.ValidApprovals(rekeyed) != 1 {
		t.Fatalf("approval with carol's old key counts under her new key: %d valid", st.ValidApprovals(rekeyed))
	}
	if _, _, err := ceremony.Approve(rekeyed, st, mustSign(t, newCarol, st), t0.Add(time.Minute)); !errors.Is(err, ceremony.ErrDuplicateApproval) {
		t.Fatalf("re-keyed custodian approving again = %v", err)
	}

	// Two removals approved together: the second no longer fits.
	first := open(t, f.reg, ceremony.RemoveCustodian{Name: "carol"}, operator)
	second := open(t, f.reg, ceremony.RemoveCustodian{Name: "bob"}, operator)
	first = approve(t, f.reg, approve(t, f.reg, first, f.alice, t0), f.bob, t0)
	second = approve(t, f.reg, approve(t, f.reg, second, f.alice, t0), f.carol, t0)
	_, after, _, err := ceremony.Execute(f.reg, first, t0.Add(time.Minute), "carol removed")
	if err != nil {
		t.Fatal(err)
	}
	// Under the new registry, carol's approval of the second no longer counts.
	if _, _, _, err := ceremony.Execute(after, second, t0.Add(time.Minute), "bob removed"); !errors.Is(err, ceremony.ErrNotReady) {
		t.Fatalf("second removal = %v", err)
	}
}

func TestStateEncoding(t *testing.T) {
	f := newFixture(t)
	st := open(t, f.reg, ceremony.ChangeSchemeKey{Scheme: "cards", Key: "pan-gcm-2"}, operator)
	states := []ceremony.State{st}
	st = approve(t, f.reg, st, f.bob, t0.Add(time.Minute))
	states = append(states, st)
	r, _ := ceremony.SignRejection(f.carol.signer, "carol", st.Proposal, "wrong key")
	st, _, err := ceremony.Reject(f.reg, st, r, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	states = append(states, st)
	st = approve(t, f.reg, st, f.alice, t0.Add(3*time.Minute))
	done, _, _, err := ceremony.Execute(f.reg, st, t0.Add(4*time.Minute), "scheme cards now uses pan-gcm-2")
	if err != nil {
		t.Fatal(err)
	}
	states = append(states, st, done)
	for i, s := range states {
		b, err := s.Marshal()
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		back, err := ceremony.ParseState(b)
		if err != nil {
			t.Fatalf("state %d: parse: %v", i, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("state %d does not round-trip:\n%+v\n%+v", i, s, back)
		}
		if _, err := ceremony.ParseState(append(b, 0)); !errors.Is(err, ceremony.ErrMalformed) {
			t.Fatalf("state %d with a trailing byte: %v", i, err)
		}
		for n := 0; n < len(b); n += 7 {
			if _, err := ceremony.ParseState(b[:n]); !errors.Is(err, ceremony.ErrMalformed) {
				t.Fatalf("state %d truncated to %d: %v", i, n, err)
			}
		}
	}
	// Inconsistent states are refused on Marshal.
	bad := []func(s ceremony.State) ceremony.State{
		func(s ceremony.State) ceremony.State { s.ID = "0000000000000000"; return s },
		func(s ceremony.State) ceremony.State { s.Status = 9; return s },
		func(s ceremony.State) ceremony.State { s.Outcome = "done"; return s },
		func(s ceremony.State) ceremony.State { s.Approvals = append(s.Approvals, s.Approvals[0]); return s },
		func(s ceremony.State) ceremony.State {
			s.Rejections = []ceremony.Rejection{{Custodian: "bob", Key: s.Approvals[0].Key, Signature: []byte{1}, At: t0}}
			return s
		},
		func(s ceremony.State) ceremony.State { s.Approvals[0].Custodian = operator; return s },
	}
	for i, mut := range bad {
		s := states[1].Clone()
		if _, err := mut(s).Marshal(); !errors.Is(err, ceremony.ErrInvalid) {
			t.Errorf("bad state %d: Marshal = %v", i, err)
		}
	}
}

// withTranscriptOf returns st carrying other's id and transcript hash: a
// corrupted or hand-made state.
func withTranscriptOf(st, other ceremony.State) ceremony.State {
	st.ID, st.Transcript = other.ID, other.Transcript
	return st
}
