package ceremony_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/vault/ceremony"
)

// goldenProposals are fixed proposals, one per kind, whose transcript
// hashes are frozen below. A change of any hash is a change of the signed
// format: it needs a new prefix version, not a new golden value.
func goldenProposals(t testing.TB) map[string]ceremony.Proposal {
	t.Helper()
	ed := edSigner(t, 5)
	dave, err := ceremony.SignAcknowledgement(ed, "dave", time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	base := ceremony.Proposal{
		Proposer: "alice",
		Created:  time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Expires:  time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC),
	}
	for i := range base.Nonce {
		base.Nonce[i] = byte(i + 1)
	}
	with := func(p ceremony.Params) ceremony.Proposal { q := base; q.Params = p; return q }
	return map[string]ceremony.Proposal{
		"create-key": with(ceremony.CreateKey{Name: "payments-p256", Type: keys.KeyECDSAP256, Purpose: ceremony.PurposeSigning, Cryptoperiod: 365 * 24 * time.Hour}),
		"rotate-key": with(ceremony.RotateKey{Name: "payments-p256"}),
		"set-min":    with(ceremony.SetMinDecryptionVersion{Name: "pan-gcm", Version: 3}),
		"destroy":    with(ceremony.DestroyVersion{Name: "pan-gcm", Version: 2}),
		"scheme-key": with(ceremony.ChangeSchemeKey{Scheme: "cards", Key: "pan-gcm-2026"}),
		"add":        with(dave.AddProposal()),
		"remove":     with(ceremony.RemoveCustodian{Name: "carol"}),
		"quorum":     with(ceremony.ChangeQuorum{M: 3}),
		"rotate-mk":  with(ceremony.RotateMasterKey{MasterKCV: keys.KCV{0xAB, 0xCD, 0xEF}, ComponentKCVs: []keys.KCV{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}),
	}
}

var goldenHashes = map[string]string{
	"create-key": "2490a422ff0044562937acee71c34eeb0d9a7ce502b49a63ecbacc7170b55360",
	"rotate-key": "bf05c78bd0a9b98fa3adc68cf7dbd714656c77632eadc846a60eed6984178fc8",
	"set-min":    "3f5100ff5ca5c30e697975c2a73393768a0f4cc48225b4ec7b91b7df70068b71",
	"destroy":    "7473b48c46bb573325ac7eb711d1ebe3a9ff016f7a3d95d82061917e1859957a",
	"scheme-key": "84e80756eba9244261e6af6c99f6a58e05fa99ad2d76b194c870ec28db1ca822",
	"add":        "02ce058a69e72b4584f41efec421fa89751f535bb062da48cf5967e18155042b",
	"remove":     "50e320f8aee653b40d9c7200336200ecbddacc8cad0216a9bae4ba16ee933f75",
	"quorum":     "2e79719edb5e36f85f9d6be5d1b787807bceb72a3ae73550b732a4b5ef4629f5",
	"rotate-mk":  "307b2e9cbcf54a33b084fc9ad3ad3a1d52d070845a2a76fbfcf29b2ecea5946f",
}

func TestGoldenTranscriptHashes(t *testing.T) {
	for name, p := range goldenProposals(t) {
		h, err := p.Transcript()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := h.String(), goldenHashes[name]; got != want {
			t.Errorf("%s: transcript hash %s, frozen %s", name, got, want)
		}
		id, err := p.ID()
		if err != nil || id != h.String()[:ceremony.IDLen] {
			t.Errorf("%s: id %q (err %v) is not the hash's first %d hex digits", name, id, err, ceremony.IDLen)
		}
	}
}

// TestCanonicalLayout builds two encodings byte by byte from FORMAT.md,
// independently of the encoder, and compares.
func TestCanonicalLayout(t *testing.T) {
	lp := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	i64 := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	golden := goldenProposals(t)
	head := func(kind byte) []byte {
		var b []byte
		b = append(b, lp([]byte("panvault-ceremony-v1"))...)
		b = append(b, kind)
		b = append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
		b = append(b, lp([]byte("alice"))...)
		b = append(b, i64(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())...)
		b = append(b, i64(time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC).UnixNano())...)
		return b
	}
	var params []byte
	params = append(params, lp([]byte("payments-p256"))...)
	params = append(params, 4, 4) // keys.KeyECDSAP256, PurposeSigning
	params = append(params, i64(int64(365*24*time.Hour))...)
	wantCreate := append(head(1), lp(params)...)

	params = append([]byte{0xAB, 0xCD, 0xEF}, binary.BigEndian.AppendUint32(nil, 3)...)
	params = append(params, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	wantMK := append(head(9), lp(params)...)

	for name, want := range map[string][]byte{"create-key": wantCreate, "rotate-mk": wantMK} {
		got, err := golden[name].Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
		h, _ := golden[name].Transcript()
		if h != sha256.Sum256(want) {
			t.Errorf("%s: transcript hash is not SHA-256 of the canonical bytes", name)
		}
	}
}

func TestProposalRoundTrip(t *testing.T) {
	for name, p := range goldenProposals(t) {
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		q, err := ceremony.ParseProposal(b)
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%s: round trip changed the proposal:\n%+v\n%+v", name, p, q)
		}
	}
}

func TestNewProposal(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	now := time.Date(2026, 3, 1, 10, 0, 0, 5, local) // a zoned time with a monotonic-free reading
	p, err := ceremony.NewProposal(ceremony.RotateKey{Name: "k"}, "alice", now, ceremony.DefaultTTL, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if p.Created.Location() != time.UTC || !p.Created.Equal(now) || p.Expires.Sub(p.Created) != ceremony.DefaultTTL {
		t.Errorf("times not normalised: created %v expires %v", p.Created, p.Expires)
	}
	q, err := ceremony.NewProposal(ceremony.RotateKey{Name: "k"}, "alice", now, ceremony.DefaultTTL, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idP, _ := p.ID()
	idQ, _ := q.ID()
	if idP == idQ {
		t.Errorf("two identical proposals at the same instant got the same id %s: the nonce is not random", idP)
	}
	if _, err := ceremony.NewProposal(ceremony.RotateKey{Name: "k"}, "alice", now, ceremony.MinTTL-time.Second, rand.Reader); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("ttl below MinTTL: %v", err)
	}
	if _, err := ceremony.NewProposal(ceremony.RotateKey{Name: "k"}, "alice", now, time.Hour, bytes.NewReader(nil)); err == nil {
		t.Errorf("empty random source accepted")
	}
	// A wall clock reading with a monotonic part encodes like its wall time.
	wall := time.Now()
	r, err := ceremony.NewProposal(ceremony.RotateKey{Name: "k"}, "alice", wall, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Marshal()
	back, err := ceremony.ParseProposal(b)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("proposal made from time.Now does not round-trip: %v", err)
	}
}

func TestProposalValidate(t *testing.T) {
	g := goldenProposals(t)
	good := g["rotate-key"]
	with := func(p ceremony.Params) ceremony.Proposal { q := good; q.Params = p; return q }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	add := g["add"].Params.(ceremony.AddCustodian)
	otherKey := newParty(t, "dave", edSigner(t, 6)).c // same name, another key
	year := 365 * 24 * time.Hour

	cases := []struct {
		name string
		p    ceremony.Proposal
		want error
	}{
		{"no params", with(nil), ceremony.ErrInvalid},
		{"empty key name", with(ceremony.RotateKey{}), ceremony.ErrInvalid},
		{"upper-case name", with(ceremony.RotateKey{Name: "Payments"}), ceremony.ErrInvalid},
		{"name starts with digit", with(ceremony.RotateKey{Name: "1key"}), ceremony.ErrInvalid},
		{"name too long", with(ceremony.RotateKey{Name: strings.Repeat("a", ceremony.MaxNameLen+1)}), ceremony.ErrInvalid},
		{"name with escape", with(ceremony.RotateKey{Name: "a\x1b[2J"}), ceremony.ErrInvalid},
		{"unknown key type", with(ceremony.CreateKey{Name: "k", Type: 99, Purpose: ceremony.PurposeSigning, Cryptoperiod: year}), ceremony.ErrInvalid},
		{"unknown purpose", with(ceremony.CreateKey{Name: "k", Type: keys.KeyAES256GCM, Purpose: 9, Cryptoperiod: year}), ceremony.ErrInvalid},
		{"gcm for signing", with(ceremony.CreateKey{Name: "k", Type: keys.KeyAES256GCM, Purpose: ceremony.PurposeSigning, Cryptoperiod: year}), ceremony.ErrInvalid},
		{"ecdsa for fpe", with(ceremony.CreateKey{Name: "k", Type: keys.KeyECDSAP256, Purpose: ceremony.PurposeFPE, Cryptoperiod: year}), ceremony.ErrInvalid},
		{"zero cryptoperiod", with(ceremony.CreateKey{Name: "k", Type: keys.KeyAES256GCM, Purpose: ceremony.PurposePANEncryption}), ceremony.ErrInvalid},
		{"negative cryptoperiod", with(ceremony.CreateKey{Name: "k", Type: keys.KeyAES256GCM, Purpose: ceremony.PurposePANEncryption, Cryptoperiod: -year}), ceremony.ErrInvalid},
		{"cryptoperiod too long", with(ceremony.CreateKey{Name: "k", Type: keys.KeyAES256GCM, Purpose: ceremony.PurposePANEncryption, Cryptoperiod: ceremony.MaxCryptoperiod + 1}), ceremony.ErrInvalid},
		{"min version 0", with(ceremony.SetMinDecryptionVersion{Name: "k"}), ceremony.ErrInvalid},
		{"destroy version 0", with(ceremony.DestroyVersion{Name: "k"}), ceremony.ErrInvalid},
		{"scheme name empty", with(ceremony.ChangeSchemeKey{Key: "k"}), ceremony.ErrInvalid},
		{"scheme key empty", with(ceremony.ChangeSchemeKey{Scheme: "s"}), ceremony.ErrInvalid},
		{"quorum 1", with(ceremony.ChangeQuorum{M: 1}), ceremony.ErrQuorum},
		{"quorum 0", with(ceremony.ChangeQuorum{}), ceremony.ErrQuorum},
		{"quorum above max", with(ceremony.ChangeQuorum{M: ceremony.MaxCustodians + 1}), ceremony.ErrQuorum},
		{"one component", with(ceremony.RotateMasterKey{ComponentKCVs: []keys.KCV{{1}}}), ceremony.ErrInvalid},
		{"17 components", with(ceremony.RotateMasterKey{ComponentKCVs: make([]keys.KCV, 17)}), ceremony.ErrInvalid},
		{"repeated component kcv", with(ceremony.RotateMasterKey{MasterKCV: keys.KCV{9}, ComponentKCVs: []keys.KCV{{1}, {2}, {1}}}), ceremony.ErrInvalid},
		{"component kcv equals master", with(ceremony.RotateMasterKey{MasterKCV: keys.KCV{2}, ComponentKCVs: []keys.KCV{{1}, {2}}}), ceremony.ErrInvalid},
		{"remove without name", with(ceremony.RemoveCustodian{}), ceremony.ErrInvalid},
		{"add rsa key", with(ceremony.AddCustodian{Name: "dave", PublicKey: rsaDER, Acknowledged: add.Acknowledged, AckSignature: add.AckSignature}), ceremony.ErrUnsupportedKey},
		{"add p-384 key", with(ceremony.AddCustodian{Name: "dave", PublicKey: p384DER, Acknowledged: add.Acknowledged, AckSignature: add.AckSignature}), ceremony.ErrUnsupportedKey},
		{"add garbage key", with(ceremony.AddCustodian{Name: "dave", PublicKey: []byte{0x30, 0x00}, Acknowledged: add.Acknowledged, AckSignature: add.AckSignature}), ceremony.ErrUnsupportedKey},
		{"add ack by another key", with(ceremony.AddCustodian{Name: "dave", PublicKey: otherKey.PublicKey, Acknowledged: add.Acknowledged, AckSignature: add.AckSignature}), ceremony.ErrBadSignature},
		{"add ack for another name", with(ceremony.AddCustodian{Name: "erin", PublicKey: add.PublicKey, Acknowledged: add.Acknowledged, AckSignature: add.AckSignature}), ceremony.ErrBadSignature},
		{"add ack at another time", with(ceremony.AddCustodian{Name: "dave", PublicKey: add.PublicKey, Acknowledged: add.Acknowledged.Add(time.Second), AckSignature: add.AckSignature}), ceremony.ErrBadSignature},
		{"add without ack", with(ceremony.AddCustodian{Name: "dave", PublicKey: add.PublicKey, Acknowledged: add.Acknowledged}), ceremony.ErrInvalid},
	}
	// Proposal-level fields.
	noProposer := good
	noProposer.Proposer = ""
	spaced := good
	spaced.Proposer = "alice smith"
	long := good
	long.Proposer = strings.Repeat("x", ceremony.MaxProposerLen+1)
	short := good
	short.Expires = short.Created.Add(ceremony.MinTTL - 1)
	tooLong := good
	tooLong.Expires = tooLong.Created.Add(ceremony.MaxTTL + 1)
	backwards := good
	backwards.Expires = backwards.Created.Add(-time.Hour)
	zeroNonce := good
	zeroNonce.Nonce = [ceremony.NonceSize]byte{}
	noCreated := good
	noCreated.Created = time.Time{}
	before1970 := good
	before1970.Created = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	before1970.Expires = before1970.Created.Add(time.Hour)
	lateAck := g["add"]
	lateAck.Created = add.Acknowledged.Add(-ceremony.MaxClockSkew - time.Second)
	lateAck.Expires = lateAck.Created.Add(time.Hour)
	cases = append(cases, []struct {
		name string
		p    ceremony.Proposal
		want error
	}{
		{"no proposer", noProposer, ceremony.ErrInvalid},
		{"proposer with space", spaced, ceremony.ErrInvalid},
		{"proposer too long", long, ceremony.ErrInvalid},
		{"ttl below minimum", short, ceremony.ErrInvalid},
		{"ttl above maximum", tooLong, ceremony.ErrInvalid},
		{"expires before created", backwards, ceremony.ErrInvalid},
		{"zero nonce", zeroNonce, ceremony.ErrInvalid},
		{"no creation time", noCreated, ceremony.ErrInvalid},
		{"created before 1970", before1970, ceremony.ErrInvalid},
		{"acknowledged after proposal", lateAck, ceremony.ErrInvalid},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if !errors.Is(err, c.want) {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
			if _, err := c.p.Marshal(); !errors.Is(err, c.want) {
				t.Fatalf("Marshal = %v, want %v", err, c.want)
			}
			if _, err := c.p.Transcript(); err == nil {
				t.Fatalf("Transcript of an invalid proposal succeeded")
			}
		})
	}
	for name, p := range g {
		if err := p.Validate(); err != nil {
			t.Errorf("golden %s invalid: %v", name, err)
		}
	}
}

func TestParseProposalStrict(t *testing.T) {
	g := goldenProposals(t)
	good, err := g["create-key"].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.ParseProposal(good); err != nil {
		t.Fatalf("golden does not parse: %v", err)
	}
	// Every truncation fails.
	for n := 0; n < len(good); n++ {
		if _, err := ceremony.ParseProposal(good[:n]); !errors.Is(err, ceremony.ErrMalformed) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	prefixLen := 4 + len("panvault-ceremony-v1")
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"trailing byte":   append(bytes.Clone(good), 0),
		"wrong prefix":    mutate(func(b []byte) []byte { b[4] = 'P'; return b }),
		"other version":   mutate(func(b []byte) []byte { b[prefixLen-1] = '2'; return b }),
		"unknown kind 0":  mutate(func(b []byte) []byte { b[prefixLen] = 0; return b }),
		"unknown kind 10": mutate(func(b []byte) []byte { b[prefixLen] = 10; return b }),
		// kind 2 (rotate-key) with create-key parameters: trailing bytes in params
		"params of another kind": mutate(func(b []byte) []byte { b[prefixLen] = 2; return b }),
		"over-long proposer": mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[prefixLen+1+16:], ceremony.MaxProposerLen+1)
			return b
		}),
		"huge proposer length": mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[prefixLen+1+16:], 0xFFFFFFFF)
			return b
		}),
		"params length one short": mutate(func(b []byte) []byte {
			off := len(b) - len(paramsOf(t, g["create-key"])) - 4
			binary.BigEndian.PutUint32(b[off:], uint32(len(b)-off-4-1))
			return b
		}),
		"empty": nil,
	}
	for name, b := range cases {
		if _, err := ceremony.ParseProposal(b); !errors.Is(err, ceremony.ErrMalformed) {
			t.Errorf("%s: ParseProposal = %v, want ErrMalformed", name, err)
		}
	}
	// A well-formed encoding of an invalid value is refused too.
	bad := g["rotate-key"]
	bad.Params = ceremony.RotateKey{Name: "x"}
	raw, _ := bad.Marshal()
	raw = bytes.Replace(raw, []byte{0, 0, 0, 1, 'x'}, []byte{0, 0, 0, 1, 'X'}, 1)
	if _, err := ceremony.ParseProposal(raw); !errors.Is(err, ceremony.ErrMalformed) || !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("upper-case name in valid framing: %v", err)
	}
}

// paramsOf returns the encoded parameters: the bytes after the fixed header.
func paramsOf(t testing.TB, p ceremony.Proposal) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	head := 4 + len("panvault-ceremony-v1") + 1 + 16 + 4 + len(p.Proposer) + 16 + 4
	return b[head:]
}

func TestIDs(t *testing.T) {
	for _, bad := range []string{"", "abc", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcdef0"} {
		if err := ceremony.CheckID(bad); !errors.Is(err, ceremony.ErrInvalid) {
			t.Errorf("CheckID(%q) = %v", bad, err)
		}
	}
	p := goldenProposals(t)["quorum"]
	id, err := p.ID()
	if err != nil {
		t.Fatal(err)
	}
	if err := ceremony.CheckID(id); err != nil {
		t.Errorf("derived id %q fails CheckID: %v", id, err)
	}
	h, _ := p.Transcript()
	back, err := ceremony.ParseHash(h.String())
	if err != nil || back != h {
		t.Errorf("ParseHash(String) = %v, %v", back, err)
	}
	if _, err := ceremony.ParseHash(hex.EncodeToString(h[:31])); err == nil {
		t.Errorf("short hash accepted")
	}
}

func TestKindAndPurposeNames(t *testing.T) {
	for k := ceremony.Kind(1); k <= 9; k++ {
		back, err := ceremony.ParseKind(k.String())
		if err != nil || back != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, back, err)
		}
	}
	if ceremony.Kind(10).Valid() || ceremony.Kind(0).Valid() {
		t.Errorf("kinds 0 and 10 must be unknown")
	}
	if _, err := ceremony.ParseKind("rotate-everything"); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("unknown kind name: %v", err)
	}
	for p := ceremony.Purpose(1); p <= 4; p++ {
		back, err := ceremony.ParsePurpose(p.String())
		if err != nil || back != p {
			t.Errorf("ParsePurpose(%q) = %v, %v", p, back, err)
		}
	}
	if _, err := ceremony.ParsePurpose("anything"); !errors.Is(err, ceremony.ErrInvalid) {
		t.Errorf("unknown purpose name: %v", err)
	}
}
