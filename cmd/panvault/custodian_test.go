package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/softhsm/softhsmtest"
	"github.com/panvault/panvault/vault/ceremony"
)

// A custodian key made in a SoftHSM token through the CLI signs the
// acknowledgement of duties; the registration file verifies; a key file
// works the same way; refusals are clear.
func TestCustodianKeygenAndRegisterOut(t *testing.T) {
	tok := softhsmtest.New(t, "cust-dave")
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + tok.Label + ";object=dave?pin-source=file:" + pinFile

	// No library anywhere: a usage error that says where to give one.
	t.Setenv(envPKCS11Lib, "")
	if code, _, stderr := runCLI(t, "", "custodian", "keygen", "--custodian-key", uri); code != 2 || !strings.Contains(stderr, "module-path") {
		t.Fatalf("keygen without a library: %d %q", code, stderr)
	}
	t.Setenv(envPKCS11Lib, tok.Lib)
	if code, _, stderr := runCLI(t, "", "custodian", "keygen", "--custodian-key",
		"pkcs11:token="+tok.Label+";object=dave?pin-value="+tok.UserPIN); code != 2 || !strings.Contains(stderr, "pin-value is refused") ||
		strings.Contains(stderr, tok.UserPIN) {
		// stderr may repeat the PIN: never print it.
		t.Fatalf("keygen with pin-value: exit %d, refused: %v, pin echoed: %v", code,
			strings.Contains(stderr, "pin-value is refused"), strings.Contains(stderr, tok.UserPIN))
	}

	code, out, stderr := runCLI(t, "", "custodian", "keygen", "--custodian-key", uri, "-o", "json")
	if code != 0 {
		t.Fatalf("keygen in token: %d %q", code, stderr)
	}
	var made struct{ Key, Algorithm, Fingerprint string }
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.Algorithm != "ed25519" || !strings.HasPrefix(made.Fingerprint, "sha256:") {
		t.Fatalf("keygen output %q %v", out, err)
	}
	if strings.Contains(made.Key, pinFile) {
		t.Errorf("printed key location names the pin source: %q", made.Key)
	}
	if code, _, stderr := runCLI(t, "", "custodian", "keygen", "--custodian-key", uri); code != 1 || !strings.Contains(stderr, "exists") {
		t.Fatalf("second keygen on the label: %d %q", code, stderr)
	}

	// Without a terminal and without --yes, nothing is signed.
	regFile := filepath.Join(dir, "dave.json")
	code, out, stderr = runCLI(t, "y\n", "custodian", "register", "--name", "dave", "--custodian-key", uri, "--out", regFile)
	if code != 2 || !strings.Contains(stderr, "not a terminal") || !strings.Contains(out, "I accept the duties") {
		t.Fatalf("register without a terminal: %d %q %q", code, out, stderr)
	}
	if _, err := os.Stat(regFile); err == nil {
		t.Fatal("a registration was written without confirmation")
	}

	code, out, stderr = runCLI(t, "", "custodian", "register", "--name", "dave", "--custodian-key", uri, "--out", regFile, "--yes")
	if code != 0 {
		t.Fatalf("register: %d %q", code, stderr)
	}
	for _, want := range []string{"Custodian: dave", "Signing key: " + made.Fingerprint, ceremony.Duties, "written to " + regFile} {
		if !strings.Contains(out, want) {
			t.Errorf("register output lacks %q", want)
		}
	}
	reg, err := readRegistration(regFile)
	if err != nil {
		t.Fatalf("registration file: %v", err)
	}
	if reg.GetName() != "dave" || ceremony.FingerprintOf(reg.GetPublicKeyDer()).String() != made.Fingerprint {
		t.Fatalf("registration %v", reg)
	}
	// Tampering with the signed name is caught locally.
	raw, _ := os.ReadFile(regFile)
	forged := filepath.Join(dir, "forged.json")
	if err := os.WriteFile(forged, bytes.Replace(raw, []byte(`"dave"`), []byte(`"mallory"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readRegistration(forged); !errors.Is(err, ceremony.ErrBadSignature) {
		t.Fatalf("forged registration: %v, want ErrBadSignature", err)
	}

	// A key file (dev mode) works the same way.
	keyFile := filepath.Join(dir, "erin.pem")
	if code, _, stderr := runCLI(t, "", "custodian", "keygen", "--custodian-key", keyFile, "--alg", "ecdsa-p256"); code != 0 {
		t.Fatalf("keygen file: %d %q", code, stderr)
	}
	erinReg := filepath.Join(dir, "erin.json")
	if code, _, stderr := runCLI(t, "", "custodian", "register", "--name", "erin", "--custodian-key", keyFile, "--out", erinReg, "--yes", "-o", "json"); code != 0 {
		t.Fatalf("register with a key file: %d %q", code, stderr)
	}
	if r, err := readRegistration(erinReg); err != nil || r.GetName() != "erin" {
		t.Fatalf("erin's registration: %v %v", r, err)
	}
	if code, _, stderr := runCLI(t, "", "custodian", "register", "--name", "erin", "--custodian-key", filepath.Join(dir, "none.pem"), "--out", filepath.Join(dir, "x.json"), "--yes"); code != 1 || !strings.Contains(stderr, "custodian-key") {
		t.Fatalf("missing key file: %d %q", code, stderr)
	}
}

// The CLI refuses a ceremony whose canonical bytes do not give its id or
// its announced transcript hash, and shows the locally computed hash.
func TestVerifiedProposal(t *testing.T) {
	now := time.Now().UTC()
	p, err := ceremony.NewProposal(ceremony.RotateKey{Name: "pan-encryption"}, "admin", now, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.Transcript()
	good := &pb.Ceremony{Id: h.ID(), Kind: pb.CeremonyKind_CEREMONY_KIND_ROTATE_KEY, Proposal: canon, TranscriptHash: h.String(),
		Status: pb.CeremonyStatus_CEREMONY_STATUS_PENDING, Quorum: 2, ValidApprovals: 1,
		Approvals: []*pb.CeremonyVote{{Custodian: "alice", KeyFingerprint: "sha256:00", Time: timestamppb.New(now), Counts: true}}}
	got, err := verifiedProposal(good)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printCeremony(&b, good, got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Rotate key pan-encryption", "Transcript hash: sha256:" + h.String(), "Status: pending, 1 of 2 approvals", "approved by alice"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printed ceremony lacks %q:\n%s", want, b.String())
		}
	}

	other, _ := ceremony.NewProposal(ceremony.RotateKey{Name: "pan-encryption"}, "admin", now, time.Hour, rand.Reader)
	otherCanon, _ := other.Marshal()
	for name, c := range map[string]*pb.Ceremony{
		"other proposal under this id": {Id: h.ID(), Kind: good.Kind, Proposal: otherCanon},
		"wrong announced hash":         {Id: h.ID(), Kind: good.Kind, Proposal: canon, TranscriptHash: strings.Repeat("0", 64)},
		"wrong kind":                   {Id: h.ID(), Kind: pb.CeremonyKind_CEREMONY_KIND_DESTROY_VERSION, Proposal: canon},
	} {
		if _, err := verifiedProposal(c); !errors.Is(err, errProposalMismatch) {
			t.Errorf("%s: %v, want errProposalMismatch", name, err)
		}
	}
	if _, err := verifiedProposal(&pb.Ceremony{Id: h.ID(), Proposal: canon[:len(canon)-1]}); !errors.Is(err, ceremony.ErrMalformed) {
		t.Errorf("truncated proposal: %v", err)
	}
}

func TestKeyListRendering(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-400 * 24 * time.Hour)
	rotated := now.Add(-3 * time.Hour)
	ks := []*pb.KeyInfo{{
		Name: "pan-encryption", Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION,
		LatestVersion: 2, Cryptoperiod: durationpb.New(365 * 24 * time.Hour),
		RotationDueTime: timestamppb.New(rotated.Add(365 * 24 * time.Hour)),
		Versions: []*pb.KeyVersion{
			{Version: 1, State: pb.KeyState_KEY_STATE_DECRYPT_ONLY, CreateTime: timestamppb.New(created), Kcv: "ABCDEF"},
			{Version: 2, State: pb.KeyState_KEY_STATE_ACTIVE, CreateTime: timestamppb.New(rotated), Kcv: "123456"},
		},
	}, {
		Name: "old-hmac", Type: pb.KeyType_KEY_TYPE_HMAC_SHA256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FINGERPRINT,
		LatestVersion: 1, Cryptoperiod: durationpb.New(365 * 24 * time.Hour),
		RotationDueTime: timestamppb.New(created.Add(365 * 24 * time.Hour)), RotationOverdue: true,
		Versions: []*pb.KeyVersion{{Version: 1, State: pb.KeyState_KEY_STATE_ACTIVE, CreateTime: timestamppb.New(created)}},
	}}
	var b bytes.Buffer
	if err := printKeyList(&b, ks, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 {
		t.Fatalf("want a header and 3 version rows:\n%s", out)
	}
	for i, want := range [][]string{
		{"pan-encryption", " 1 ", "decrypt-only", "400d", "ABCDEF", "365d"},
		{"pan-encryption", " 2 ", "active", "3h", "123456", "(in 364d)"},
		{"old-hmac", " 1 ", "active", "400d", "(OVERDUE by 35d)"},
	} {
		for _, w := range want {
			if !strings.Contains(rows[i+1], w) {
				t.Errorf("row %d lacks %q: %q", i+1, w, rows[i+1])
			}
		}
	}
	if strings.Contains(rows[1], "(in ") || strings.Contains(rows[1], "OVERDUE") {
		t.Errorf("an older version shows a rotation date: %q", rows[1])
	}
}

func TestParsePeriodAndProgress(t *testing.T) {
	for in, want := range map[string]time.Duration{"365d": 365 * 24 * time.Hour, "1d": 24 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parsePeriod(in); err != nil || got != want {
			t.Errorf("parsePeriod(%q) = %v %v", in, got, err)
		}
	}
	for _, in := range []string{"0d", "-1h", "d", "1y", ""} {
		if _, err := parsePeriod(in); err == nil {
			t.Errorf("parsePeriod(%q) accepted", in)
		}
	}
	if got := progressBar(50, 200, false); got != "[#######.......................]  25%" {
		t.Errorf("progressBar(50, 200) = %q", got)
	}
	if got := progressBar(7, 0, false); got != "[..............................]   0%" {
		t.Errorf("progressBar with an unknown total = %q", got)
	}
	if got := progressBar(300, 200, false); !strings.HasSuffix(got, " 99%") {
		t.Errorf("progressBar past the estimate, not finished = %q", got)
	}
	if got := progressBar(3, 200, true); got != "[##############################] 100%" {
		t.Errorf("progressBar finished = %q", got)
	}
}
