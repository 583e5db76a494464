package vault

import (
	"context"
	"fmt"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// Names of the keys and schemes DevSetup creates. They match what
// `panvault dev` provisions (vault/devcluster), so tests, benchmarks and the
// dev cluster speak of the same things.
const (
	DevKeyPAN         = "pan-encryption"  // AES-256-GCM, PAN encryption of the vaulted schemes
	DevKeyFingerprint = "pan-fingerprint" // HMAC-SHA256, fingerprints of scheme pan-det
	DevKeyFF1         = "pan-fpe"         // AES-256 for FF1, scheme pan-ff1
	DevKeySigning     = "payments-p256"   // ECDSA P-256 signing key

	DevSchemeVaulted       = "pan"     // vaulted, random, keeps 6+4, Luhn fail
	DevSchemeDeterministic = "pan-det" // vaulted, deterministic, keeps 6+4, Luhn fail
	DevSchemeFF1           = "pan-ff1" // FF1, keeps the leading 6, Luhn fail, lengths 13-19
)

// DevSchemes returns the scheme definitions DevSetup creates.
func DevSchemes() []*pb.Scheme {
	return []*pb.Scheme{
		{Name: DevSchemeVaulted, Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Key: DevKeyPAN},
		{Name: DevSchemeDeterministic, Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Deterministic: true, Key: DevKeyPAN, FingerprintKey: DevKeyFingerprint},
		// 6+4 under FF1 with Luhn fail leaves 10^5 values for 16 digits,
		// under the 10^6 floor: keep the BIN only, and refuse 12 digits
		// (6 kept + check digit leave 10^5 there too).
		{Name: DevSchemeFF1, Mode: pb.SchemeMode_SCHEME_MODE_FF1, KeepLeading: 6, KeepTrailing: 0,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Key: DevKeyFF1, AllowedLengths: []uint32{13, 14, 15, 16, 17, 18, 19}},
	}
}

// DevSetup creates the keys and schemes of `panvault dev` and of the test
// cluster (vault/vaulttest): DevKeyPAN, DevKeyFingerprint, DevKeyFF1,
// DevKeySigning, then DevSchemes. It is idempotent: what exists with the
// same definition is kept, so it may run on every start.
func (n *Node) DevSetup(ctx context.Context) error {
	for _, k := range []struct {
		name string
		typ  keys.KeyType
	}{
		{DevKeyPAN, keys.KeyAES256GCM},
		{DevKeyFingerprint, keys.KeyHMACSHA256},
		{DevKeyFF1, keys.KeyAES256FF1},
		{DevKeySigning, keys.KeyECDSAP256},
	} {
		if _, _, err := n.CreateKey(ctx, k.name, k.typ); err != nil {
			return fmt.Errorf("dev key %s: %w", k.name, err)
		}
	}
	for _, s := range DevSchemes() {
		if _, _, err := n.CreateScheme(ctx, s); err != nil {
			return fmt.Errorf("dev scheme %s: %w", s.GetName(), err)
		}
	}
	return nil
}
