package vault

import (
	"context"
	"fmt"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// Names of the keys and schemes DevSetup creates.
const (
	DevKeyPAN         = "pan-gcm"       // AES-256-GCM, PAN encryption of the vaulted schemes
	DevKeyFingerprint = "pan-fp"        // HMAC-SHA256, fingerprints of scheme pan-det
	DevKeyFF1         = "pan-ff1"       // AES-256 for FF1, scheme pan-ff1
	DevKeySigning     = "payments-p256" // ECDSA P-256 signing key

	DevSchemeVaulted       = "pan"     // vaulted, random, keeps 6+4, Luhn fail
	DevSchemeDeterministic = "pan-det" // vaulted, deterministic, keeps 6+4, Luhn fail
	DevSchemeFF1           = "pan-ff1" // FF1, keeps the last 4, Luhn fail (every length 12-19)
)

// DevSchemes returns the scheme definitions DevSetup creates.
func DevSchemes() []*pb.Scheme {
	return []*pb.Scheme{
		{Name: DevSchemeVaulted, Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Key: DevKeyPAN},
		{Name: DevSchemeDeterministic, Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Deterministic: true, Key: DevKeyPAN, FingerprintKey: DevKeyFingerprint},
		// 6+4 under FF1 leaves too small a domain for short PANs (and for
		// 16 digits under Luhn fail): keep only the last four.
		{Name: DevSchemeFF1, Mode: pb.SchemeMode_SCHEME_MODE_FF1, KeepLeading: 0, KeepTrailing: 4,
			LuhnRule: pb.LuhnRule_LUHN_RULE_FAIL, Key: DevKeyFF1},
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
