package vault

import (
	"errors"
	"testing"
	"time"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaultpb"
)

func testKeyRecord() *vaultpb.KeyRecord {
	return &vaultpb.KeyRecord{
		Name: "k", Purpose: vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION, LatestVersion: 1, MinDecryptionVersion: 1,
		CreateUnixNanos: 10,
		Versions:        []*vaultpb.KeyVersionRecord{{Version: 1, State: vaultpb.KeyState_KEY_STATE_ACTIVE, Wrapped: []byte("b1"), CreateUnixNanos: 10}},
	}
}

// TestKeyVersionTransitions walks a record through rotate, retire and
// destroy with the pure functions, and checks that states only move
// forward and the input record is never modified.
func TestKeyVersionTransitions(t *testing.T) {
	r1 := testKeyRecord()
	r2 := rotatedRecord(r1, 2, []byte("b2"), []byte{1, 2, 3}, 20)
	if r1.GetLatestVersion() != 1 || r1.GetVersions()[0].GetState() != vaultpb.KeyState_KEY_STATE_ACTIVE || len(r1.GetVersions()) != 1 {
		t.Fatalf("rotatedRecord modified its input")
	}
	if r2.GetLatestVersion() != 2 || r2.GetVersions()[0].GetState() != vaultpb.KeyState_KEY_STATE_DECRYPT_ONLY ||
		r2.GetVersions()[0].GetStateUnixNanos() != 20 || r2.GetVersions()[1].GetState() != vaultpb.KeyState_KEY_STATE_ACTIVE {
		t.Fatalf("rotated: %v", r2)
	}
	if err := checkDestroy(r2, 1); !errors.Is(err, ErrKeyState) {
		t.Fatalf("destroy of a decrypt-only version: %v", err)
	}
	for _, tc := range []struct {
		v    uint32
		want error
	}{{3, ErrKeyNotFound}, {1, ErrKeyState}, {0, ErrKeyState}} {
		if err := checkMinDecryption(r2, tc.v); !errors.Is(err, tc.want) {
			t.Fatalf("min decryption %d: %v, want %v", tc.v, err, tc.want)
		}
	}
	if err := checkMinDecryption(r2, 2); err != nil {
		t.Fatal(err)
	}
	r3 := minDecryptionRecord(r2, 2, 30)
	if r3.GetMinDecryptionVersion() != 2 || r3.GetVersions()[0].GetState() != vaultpb.KeyState_KEY_STATE_RETIRED ||
		r2.GetVersions()[0].GetState() != vaultpb.KeyState_KEY_STATE_DECRYPT_ONLY {
		t.Fatalf("retired: %v (input %v)", r3, r2)
	}
	if err := checkState(r3, r3.GetVersions()[0], useDecrypt); !errors.Is(err, ErrKeyVersionRetired) {
		t.Fatalf("decrypt with a retired version: %v", err)
	}
	if err := checkDestroy(r3, 2); !errors.Is(err, ErrKeyState) {
		t.Fatalf("destroy of the active version: %v", err)
	}
	if err := checkDestroy(r3, 7); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("destroy of a missing version: %v", err)
	}
	if err := checkDestroy(r3, 1); err != nil {
		t.Fatal(err)
	}
	r4 := destroyedRecord(r3, 1, 40)
	v1 := r4.GetVersions()[0]
	if v1.GetState() != vaultpb.KeyState_KEY_STATE_DESTROYED || len(v1.GetWrapped()) != 0 || v1.GetCreateUnixNanos() != 10 ||
		len(r3.GetVersions()[0].GetWrapped()) == 0 {
		t.Fatalf("destroyed: %v", r4)
	}
	if err := checkDestroy(r4, 1); !errors.Is(err, ErrKeyVersionDestroyed) {
		t.Fatalf("destroy twice: %v", err)
	}
	if err := checkState(r4, v1, useDecrypt); !errors.Is(err, ErrKeyVersionDestroyed) {
		t.Fatalf("decrypt with a destroyed version: %v", err)
	}
	if err := checkState(r4, r4.GetVersions()[1], useEncrypt); err != nil {
		t.Fatalf("encrypt with the active version: %v", err)
	}
}

// TestRotationDue checks cryptoperiod defaults and due dates.
func TestRotationDue(t *testing.T) {
	r := testKeyRecord()
	if cryptoperiodOf(r) != DefaultDataCryptoperiod {
		t.Fatalf("default data cryptoperiod: %v", cryptoperiodOf(r))
	}
	r.Purpose = vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING
	if cryptoperiodOf(r) != DefaultSigningCryptoperiod {
		t.Fatalf("default signing cryptoperiod: %v", cryptoperiodOf(r))
	}
	r.CryptoperiodNanos = int64(time.Hour)
	r2 := rotatedRecord(r, 2, []byte("b2"), nil, 5*int64(time.Hour))
	if got := rotationDue(r2); !got.Equal(time.Unix(0, 6*int64(time.Hour))) {
		t.Fatalf("due after rotation: %v", got)
	}
	if err := checkCryptoperiod("c", ceremony.MaxCryptoperiod+1); err == nil {
		t.Fatal("cryptoperiod above the maximum accepted")
	}
}

// TestProposerFor maps caller identities to proposers.
func TestProposerFor(t *testing.T) {
	reg := &ceremony.Registry{Quorum: 2, Custodians: []ceremony.Custodian{{Name: "alice"}, {Name: "bob"}}}
	for _, tc := range []struct{ identity, want string }{
		{"spiffe://panvault.dev/admin/alice", "alice"},
		{"bob", "bob"},
		{"spiffe://panvault.dev/admin/ops", "spiffe://panvault.dev/admin/ops"},
		{"CN with spaces", "identity-sha256:"},
	} {
		got := proposerFor(tc.identity, reg)
		if tc.want == "identity-sha256:" {
			if len(got) != len(tc.want)+16 || got[:len(tc.want)] != tc.want {
				t.Fatalf("%q: %q", tc.identity, got)
			}
			continue
		}
		if got != tc.want {
			t.Fatalf("%q: %q, want %q", tc.identity, got, tc.want)
		}
	}
}

// TestRotationRoom: a rotation is refused (FAILED_PRECONDITION KEY_STATE)
// before its new version would push the key record past
// raftstore.MaxValueSize, and allowed while there is room.
func TestRotationRoom(t *testing.T) {
	rec := &vaultpb.KeyRecord{Name: "rsa"}
	blob := make([]byte, 2300) // about one wrapped RSA-3072 version
	size := 0
	for v := uint32(1); ; v++ {
		if err := checkRotationRoom(rec, size); err != nil {
			if !errors.Is(err, ErrKeyState) {
				t.Fatalf("refusal: %v", err)
			}
			if v < 5 || size+len(blob) <= raftstore.MaxValueSize-64 {
				t.Fatalf("refused at version %d with %d bytes stored: there was room", v, size)
			}
			return
		}
		rec.Versions = append(rec.Versions, &vaultpb.KeyVersionRecord{Version: v, Wrapped: blob})
		enc, err := encodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if size = len(enc); size > raftstore.MaxValueSize {
			t.Fatalf("allowed version %d although the record grew to %d bytes", v, size)
		}
	}
}
