package ceremony_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// The fuzz targets check the strict decoders at the storage and wire
// boundary: whatever a decoder accepts re-encodes to exactly the same
// bytes (one value, one encoding) and decodes again to the same value.

func FuzzCeremonyProposal(f *testing.F) {
	for _, p := range goldenProposals(f) {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ceremony.ParseProposal(b)
		if err != nil {
			return
		}
		again, err := p.Marshal()
		if err != nil {
			t.Fatalf("accepted proposal does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("encode(decode(b)) != b")
		}
		q, err := ceremony.ParseProposal(again)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("decode(encode(p)) != p: %v", err)
		}
		if _, err := ceremony.Describe(p); err != nil {
			t.Fatalf("accepted proposal cannot be described: %v", err)
		}
	})
}

func FuzzCeremonyState(f *testing.F) {
	fx := newFixture(f)
	st := open(f, fx.reg, ceremony.RotateKey{Name: "k"}, operator)
	st = approve(f, fx.reg, st, fx.bob, t0.Add(time.Minute))
	r, _ := ceremony.SignRejection(fx.carol.signer, "carol", st.Proposal, "why")
	st, _, _ = ceremony.Reject(fx.reg, st, r, t0.Add(2*time.Minute))
	st = approve(f, fx.reg, st, fx.alice, t0.Add(3*time.Minute))
	done, _, _, _ := ceremony.Execute(fx.reg, st, t0.Add(4*time.Minute), "ok")
	for _, s := range []ceremony.State{st, done} {
		b, err := s.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ceremony.ParseState(b)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		back, err := ceremony.ParseState(again)
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("decode(encode(s)) != s: %v", err)
		}
	})
}

func FuzzCeremonyRegistry(f *testing.F) {
	fx := newFixture(f)
	b, err := fx.reg.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ceremony.ParseRegistry(b)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		back, err := ceremony.ParseRegistry(again)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("decode(encode(r)) != r: %v", err)
		}
	})
}

func FuzzCeremonyLogEntry(f *testing.F) {
	b := scenario(f)
	for _, e := range b.entries {
		raw, err := e.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ceremony.ParseEntry(raw)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("encode(decode(b)) != b: %v", err)
		}
		back, err := ceremony.ParseEntry(again)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("decode(encode(e)) != e: %v", err)
		}
	})
}
