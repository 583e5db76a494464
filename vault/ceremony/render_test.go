package ceremony_test

import (
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

func TestDescribe(t *testing.T) {
	g := goldenProposals(t)
	want := map[string][]string{
		"create-key": {"Create key payments-p256", "type ecdsa-p256", "for signing", "cryptoperiod 365 days"},
		"rotate-key": {"Rotate key payments-p256 to a new version", "older versions still decrypt"},
		"set-min":    {"minimum decryption version of key pan-gcm to 3", "versions below 3 are retired"},
		"destroy":    {"DESTROY version 2 of key pan-gcm", "cannot be undone"},
		"scheme-key": {"token scheme cards use key pan-gcm-2026"},
		"add":        {"Register dave as a key custodian with ed25519 key sha256:", "2026-02-28 12:00:00 UTC"},
		"remove":     {"Remove custodian carol"},
		"quorum":     {"need 3 custodian approvals"},
		"rotate-mk":  {"new one (KCV ABCDEF)", "3 components with KCVs 010203, 040506, 070809", "rewrap every working key"},
	}
	for name, p := range g {
		text, err := ceremony.Describe(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h, _ := p.Transcript()
		common := []string{
			"Proposal " + h.ID() + " (" + p.Kind().String() + ")",
			"Proposed by alice at 2026-03-01 09:00:00 UTC.",
			"Open for approval until 2026-03-04 09:00:00 UTC.",
			"Transcript hash: sha256:" + h.String(),
		}
		for _, w := range append(common, want[name]...) {
			if !strings.Contains(text, w) {
				t.Errorf("%s: description lacks %q:\n%s", name, w, text)
			}
		}
		for _, r := range text {
			if r != '\n' && (r < 0x20 || r > 0x7e) {
				t.Errorf("%s: description contains %q", name, r)
			}
		}
	}
	if _, err := ceremony.Describe(ceremony.Proposal{}); err == nil {
		t.Errorf("Describe of an invalid proposal succeeded")
	}
	if s := ceremony.Sentence(ceremony.SetMinDecryptionVersion{Name: "k", Version: 1}); !strings.Contains(s, "no version is retired") {
		t.Errorf("version 1: %q", s)
	}
	if s := ceremony.Sentence(ceremony.CreateKey{Name: "k", Cryptoperiod: 36 * time.Hour}); !strings.Contains(s, "36h0m0s") {
		t.Errorf("non-whole-day cryptoperiod: %q", s)
	}
}

func TestDescribeState(t *testing.T) {
	f := newFixture(t)
	st := open(t, f.reg, ceremony.RotateKey{Name: "k"}, operator)
	st = approve(t, f.reg, st, f.bob, t0.Add(time.Minute))
	r, _ := ceremony.SignRejection(f.carol.signer, "carol", st.Proposal, "not in the change window")
	st, _, err := ceremony.Reject(f.reg, st, r, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	text, err := ceremony.DescribeState(st, f.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"Status: pending, 1 of 2 approvals, waiting for approvals.",
		"Approved by bob at 2026-03-01 09:01:00 UTC with key " + f.bob.c.Fingerprint().Short() + ".",
		"Rejected by carol at 2026-03-01 09:02:00 UTC with key " + f.carol.c.Fingerprint().Short() + ": not in the change window.",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("lacks %q:\n%s", w, text)
		}
	}
	st = approve(t, f.reg, st, f.alice, t0.Add(3*time.Minute))
	text, _ = ceremony.DescribeState(st, f.reg)
	if !strings.Contains(text, "2 of 2 approvals, ready to be carried out.") {
		t.Errorf("ready state:\n%s", text)
	}
	done, _, _, err := ceremony.Execute(f.reg, st, t0.Add(4*time.Minute), "key k version 2 created")
	if err != nil {
		t.Fatal(err)
	}
	without, err := ceremony.NewRegistry([]ceremony.Custodian{f.alice.c, f.carol.c}, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	text, _ = ceremony.DescribeState(done, without)
	for _, w := range []string{"Status: executed at 2026-03-01 09:04:00 UTC: key k version 2 created.", "Approved by bob", "no longer counts"} {
		if !strings.Contains(text, w) {
			t.Errorf("lacks %q:\n%s", w, text)
		}
	}
}
