package ceremony_test

import (
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// Ceremonies are rare and not on a hot path; these figures show what one
// approval and one stored-state round trip cost on a node.

func benchmarkApprove(b *testing.B, who func(f fixture) party) {
	f := newFixture(b)
	st := open(b, f.reg, ceremony.RotateKey{Name: "k"}, operator)
	p := who(f)
	a, err := ceremony.SignApproval(p.signer, p.name, st.Proposal)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ceremony.Approve(f.reg, st, a, t0.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApproveEd25519(b *testing.B) {
	benchmarkApprove(b, func(f fixture) party { return f.alice })
}

func BenchmarkApproveP256(b *testing.B) { benchmarkApprove(b, func(f fixture) party { return f.bob }) }

func BenchmarkStateRoundTrip(b *testing.B) {
	f := newFixture(b)
	st := open(b, f.reg, ceremony.RotateKey{Name: "k"}, operator)
	st = approve(b, f.reg, st, f.alice, t0.Add(time.Minute))
	st = approve(b, f.reg, st, f.bob, t0.Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		raw, err := st.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ceremony.ParseState(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplay(b *testing.B) {
	entries := scenario(b).entries
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ceremony.Replay(entries); err != nil {
			b.Fatal(err)
		}
	}
}
