package vault

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Conversions between the public API (panvaultv1), the stored records
// (vaultpb) and the domain packages (scheme, keys, card).

// definitionFromAPI turns an API scheme into a scheme.Definition. Enum values
// the API does not define become violations here; everything else is left to
// scheme.Definition.Validate.
func definitionFromAPI(s *pb.Scheme) (scheme.Definition, error) {
	d := scheme.Definition{
		Name:                 s.GetName(),
		KeepLeading:          clampInt(s.GetKeepLeading()),
		KeepTrailing:         clampInt(s.GetKeepTrailing()),
		Deterministic:        s.GetDeterministic(),
		KeyName:              s.GetKey(),
		FingerprintKeyName:   s.GetFingerprintKey(),
		AllowNonLuhnUnionPay: s.GetAllowNonLuhnUnionpay(),
	}
	var bad []error
	switch s.GetMode() {
	case pb.SchemeMode_SCHEME_MODE_UNSPECIFIED:
		d.Mode = scheme.ModeUnspecified // refused by Validate, with its own message
	case pb.SchemeMode_SCHEME_MODE_VAULTED:
		d.Mode = scheme.ModeVaulted
	case pb.SchemeMode_SCHEME_MODE_FF1:
		d.Mode = scheme.ModeFF1
	default:
		bad = append(bad, &card.RuleError{Field: "mode", Rule: scheme.RuleAllowed, Description: "unknown mode", Err: scheme.ErrInvalidDefinition})
	}
	switch s.GetLuhnRule() {
	case pb.LuhnRule_LUHN_RULE_UNSPECIFIED, pb.LuhnRule_LUHN_RULE_FAIL:
		d.Luhn = scheme.LuhnFail
	case pb.LuhnRule_LUHN_RULE_PASS:
		d.Luhn = scheme.LuhnPass
	case pb.LuhnRule_LUHN_RULE_ANY:
		d.Luhn = scheme.LuhnAny
	default:
		bad = append(bad, &card.RuleError{Field: "luhn_rule", Rule: scheme.RuleAllowed, Description: "unknown luhn rule", Err: scheme.ErrInvalidDefinition})
	}
	if s.Ttl != nil {
		if err := s.Ttl.CheckValid(); err != nil {
			bad = append(bad, &card.RuleError{Field: "ttl", Rule: scheme.RuleAllowed, Description: "is not a valid duration", Err: scheme.ErrInvalidDefinition})
		} else {
			d.TTL = s.Ttl.AsDuration()
		}
	}
	for _, l := range s.GetAllowedLengths() {
		d.Lengths = append(d.Lengths, clampInt(l))
	}
	if len(bad) > 0 {
		return d, fmt.Errorf("%w: %w", scheme.ErrInvalidDefinition, errors.Join(bad...))
	}
	return d, nil
}

// clampInt converts a uint32 field to int without wrapping on 32-bit
// platforms; values that large are refused by validation anyway.
func clampInt(v uint32) int {
	if v > 1<<20 {
		return 1 << 20
	}
	return int(v)
}

func schemeRecord(d scheme.Definition, created time.Time) *vaultpb.SchemeRecord {
	r := &vaultpb.SchemeRecord{
		Name:                 d.Name,
		KeepLeading:          uint32(d.KeepLeading),
		KeepTrailing:         uint32(d.KeepTrailing),
		Deterministic:        d.Deterministic,
		TtlNanos:             int64(d.TTL),
		Key:                  d.KeyName,
		FingerprintKey:       d.FingerprintKeyName,
		AllowNonLuhnUnionpay: d.AllowNonLuhnUnionPay,
		CreateUnixNanos:      created.UnixNano(),
	}
	switch d.Mode {
	case scheme.ModeVaulted:
		r.Mode = vaultpb.SchemeMode_SCHEME_MODE_VAULTED
	case scheme.ModeFF1:
		r.Mode = vaultpb.SchemeMode_SCHEME_MODE_FF1
	}
	switch d.Luhn {
	case scheme.LuhnFail:
		r.LuhnRule = vaultpb.LuhnRule_LUHN_RULE_FAIL
	case scheme.LuhnPass:
		r.LuhnRule = vaultpb.LuhnRule_LUHN_RULE_PASS
	case scheme.LuhnAny:
		r.LuhnRule = vaultpb.LuhnRule_LUHN_RULE_ANY
	}
	for _, l := range d.Lengths {
		r.AllowedLengths = append(r.AllowedLengths, uint32(l))
	}
	return r
}

// definitionFromRecord is the inverse of schemeRecord. A record that does
// not map back is corrupt (this version never writes one).
func definitionFromRecord(r *vaultpb.SchemeRecord) (scheme.Definition, error) {
	d := scheme.Definition{
		Name:                 r.GetName(),
		KeepLeading:          clampInt(r.GetKeepLeading()),
		KeepTrailing:         clampInt(r.GetKeepTrailing()),
		Deterministic:        r.GetDeterministic(),
		TTL:                  time.Duration(r.GetTtlNanos()),
		KeyName:              r.GetKey(),
		FingerprintKeyName:   r.GetFingerprintKey(),
		AllowNonLuhnUnionPay: r.GetAllowNonLuhnUnionpay(),
	}
	switch r.GetMode() {
	case vaultpb.SchemeMode_SCHEME_MODE_VAULTED:
		d.Mode = scheme.ModeVaulted
	case vaultpb.SchemeMode_SCHEME_MODE_FF1:
		d.Mode = scheme.ModeFF1
	default:
		return d, fmt.Errorf("%w: scheme %q: unknown mode", ErrCorruptRecord, r.GetName())
	}
	switch r.GetLuhnRule() {
	case vaultpb.LuhnRule_LUHN_RULE_FAIL:
		d.Luhn = scheme.LuhnFail
	case vaultpb.LuhnRule_LUHN_RULE_PASS:
		d.Luhn = scheme.LuhnPass
	case vaultpb.LuhnRule_LUHN_RULE_ANY:
		d.Luhn = scheme.LuhnAny
	default:
		return d, fmt.Errorf("%w: scheme %q: unknown luhn rule", ErrCorruptRecord, r.GetName())
	}
	for _, l := range r.GetAllowedLengths() {
		d.Lengths = append(d.Lengths, clampInt(l))
	}
	return d, nil
}

// schemeToAPI returns the stored scheme as the API shows it.
func schemeToAPI(r *vaultpb.SchemeRecord) *pb.Scheme {
	s := &pb.Scheme{
		Name:                 r.GetName(),
		KeepLeading:          r.GetKeepLeading(),
		KeepTrailing:         r.GetKeepTrailing(),
		Deterministic:        r.GetDeterministic(),
		Key:                  r.GetKey(),
		AllowedLengths:       append([]uint32(nil), r.GetAllowedLengths()...),
		AllowNonLuhnUnionpay: r.GetAllowNonLuhnUnionpay(),
		FingerprintKey:       r.GetFingerprintKey(),
		CreateTime:           timestamppb.New(time.Unix(0, r.GetCreateUnixNanos())),
	}
	switch r.GetMode() {
	case vaultpb.SchemeMode_SCHEME_MODE_VAULTED:
		s.Mode = pb.SchemeMode_SCHEME_MODE_VAULTED
	case vaultpb.SchemeMode_SCHEME_MODE_FF1:
		s.Mode = pb.SchemeMode_SCHEME_MODE_FF1
	}
	switch r.GetLuhnRule() {
	case vaultpb.LuhnRule_LUHN_RULE_FAIL:
		s.LuhnRule = pb.LuhnRule_LUHN_RULE_FAIL
	case vaultpb.LuhnRule_LUHN_RULE_PASS:
		s.LuhnRule = pb.LuhnRule_LUHN_RULE_PASS
	case vaultpb.LuhnRule_LUHN_RULE_ANY:
		s.LuhnRule = pb.LuhnRule_LUHN_RULE_ANY
	}
	if r.GetTtlNanos() > 0 {
		s.Ttl = durationpb.New(time.Duration(r.GetTtlNanos()))
	}
	return s
}

// keyTypeFor resolves the API's (type, purpose) pair to the HSM key type.
// A pair that does not fit is a violation of field "purpose".
func keyTypeFor(t pb.KeyType, p pb.KeyPurpose) (keys.KeyType, vaultpb.KeyPurpose, error) {
	bad := func(field, desc string) error {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, &card.RuleError{Field: field, Rule: scheme.RuleAllowed, Description: desc, Err: ErrInvalidArgument})
	}
	var purpose vaultpb.KeyPurpose
	switch p {
	case pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION:
		purpose = vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION
	case pb.KeyPurpose_KEY_PURPOSE_FPE:
		purpose = vaultpb.KeyPurpose_KEY_PURPOSE_FPE
	case pb.KeyPurpose_KEY_PURPOSE_FINGERPRINT:
		purpose = vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT
	case pb.KeyPurpose_KEY_PURPOSE_SIGNING:
		purpose = vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING
	default:
		return 0, 0, bad("purpose", "is required (pan_encryption, fpe, fingerprint or signing)")
	}
	var kt keys.KeyType
	switch t {
	case pb.KeyType_KEY_TYPE_AES256:
		switch purpose {
		case vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION:
			kt = keys.KeyAES256GCM
		case vaultpb.KeyPurpose_KEY_PURPOSE_FPE:
			kt = keys.KeyAES256FF1
		}
	case pb.KeyType_KEY_TYPE_HMAC_SHA256:
		if purpose == vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT || purpose == vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING {
			kt = keys.KeyHMACSHA256
		}
	case pb.KeyType_KEY_TYPE_ECDSA_P256, pb.KeyType_KEY_TYPE_ECDSA_P384, pb.KeyType_KEY_TYPE_RSA_3072, pb.KeyType_KEY_TYPE_ED25519:
		if purpose == vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING {
			kt = map[pb.KeyType]keys.KeyType{
				pb.KeyType_KEY_TYPE_ECDSA_P256: keys.KeyECDSAP256,
				pb.KeyType_KEY_TYPE_ECDSA_P384: keys.KeyECDSAP384,
				pb.KeyType_KEY_TYPE_RSA_3072:   keys.KeyRSA3072PSS,
				pb.KeyType_KEY_TYPE_ED25519:    keys.KeyEd25519,
			}[t]
		}
	default:
		return 0, 0, bad("type", "is required (aes256, hmac_sha256, ecdsa_p256, ecdsa_p384, rsa_3072 or ed25519)")
	}
	if kt == 0 {
		return 0, 0, bad("purpose", "does not fit the key type")
	}
	return kt, purpose, nil
}

// defaultPurpose is the purpose CreateKey gives a key type when the caller
// names none: HMAC keys default to fingerprints.
func defaultPurpose(t keys.KeyType) pb.KeyPurpose {
	switch t {
	case keys.KeyAES256GCM:
		return pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION
	case keys.KeyAES256FF1:
		return pb.KeyPurpose_KEY_PURPOSE_FPE
	case keys.KeyHMACSHA256:
		return pb.KeyPurpose_KEY_PURPOSE_FINGERPRINT
	default:
		return pb.KeyPurpose_KEY_PURPOSE_SIGNING
	}
}

// apiKeyType is the API's name for an HSM key type.
func apiKeyType(t keys.KeyType) pb.KeyType {
	switch t {
	case keys.KeyAES256GCM, keys.KeyAES256FF1:
		return pb.KeyType_KEY_TYPE_AES256
	case keys.KeyHMACSHA256:
		return pb.KeyType_KEY_TYPE_HMAC_SHA256
	case keys.KeyECDSAP256:
		return pb.KeyType_KEY_TYPE_ECDSA_P256
	case keys.KeyECDSAP384:
		return pb.KeyType_KEY_TYPE_ECDSA_P384
	case keys.KeyRSA3072PSS:
		return pb.KeyType_KEY_TYPE_RSA_3072
	case keys.KeyEd25519:
		return pb.KeyType_KEY_TYPE_ED25519
	}
	return pb.KeyType_KEY_TYPE_UNSPECIFIED
}

// signatureAlgorithm is the algorithm signatures by keys of type t use.
func signatureAlgorithm(t keys.KeyType) pb.SignatureAlgorithm {
	switch t {
	case keys.KeyECDSAP256:
		return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
	case keys.KeyECDSAP384:
		return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_ECDSA_P384_SHA384
	case keys.KeyRSA3072PSS:
		return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_RSA_PSS_SHA256
	case keys.KeyEd25519:
		return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_ED25519
	case keys.KeyHMACSHA256:
		return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_HMAC_SHA256
	}
	return pb.SignatureAlgorithm_SIGNATURE_ALGORITHM_UNSPECIFIED
}

func apiPurpose(p vaultpb.KeyPurpose) pb.KeyPurpose { return pb.KeyPurpose(p) }

func apiKeyState(s vaultpb.KeyState) pb.KeyState { return pb.KeyState(s) }

// keyInfoToAPI describes a key record without secret material.
func keyInfoToAPI(r *vaultpb.KeyRecord) *pb.KeyInfo {
	info := &pb.KeyInfo{
		Name:                 r.GetName(),
		Type:                 apiKeyType(keys.KeyType(r.GetKeyType())),
		Purpose:              apiPurpose(r.GetPurpose()),
		LatestVersion:        r.GetLatestVersion(),
		MinDecryptionVersion: r.GetMinDecryptionVersion(),
		CreateTime:           timestamppb.New(time.Unix(0, r.GetCreateUnixNanos())),
	}
	for _, v := range r.GetVersions() {
		kv := &pb.KeyVersion{
			Version:    v.GetVersion(),
			State:      apiKeyState(v.GetState()),
			CreateTime: timestamppb.New(time.Unix(0, v.GetCreateUnixNanos())),
		}
		if k := v.GetKcv(); len(k) == len(keys.KCV{}) {
			kv.Kcv = keys.KCV(k).String()
		}
		if wk, err := keys.ParseWrappedKey(v.GetWrapped()); err == nil {
			kv.MasterKeyKcv = wk.MasterKCV.String()
			kv.PublicKeyDer = wk.PublicKey
		}
		info.Versions = append(info.Versions, kv)
	}
	return info
}

// brandToAPI maps a detected brand to the API enum.
func brandToAPI(b card.Brand) pb.CardBrand {
	switch b {
	case card.BrandVisa:
		return pb.CardBrand_CARD_BRAND_VISA
	case card.BrandMastercard:
		return pb.CardBrand_CARD_BRAND_MASTERCARD
	case card.BrandAmex:
		return pb.CardBrand_CARD_BRAND_AMEX
	case card.BrandDiscover:
		return pb.CardBrand_CARD_BRAND_DISCOVER
	case card.BrandJCB:
		return pb.CardBrand_CARD_BRAND_JCB
	case card.BrandDiners:
		return pb.CardBrand_CARD_BRAND_DINERS
	case card.BrandUnionPay:
		return pb.CardBrand_CARD_BRAND_UNIONPAY
	case card.BrandMaestro:
		return pb.CardBrand_CARD_BRAND_MAESTRO
	case card.BrandMir:
		return pb.CardBrand_CARD_BRAND_MIR
	}
	return pb.CardBrand_CARD_BRAND_OTHER
}

// timestampOrNil returns the time of unix nanos, or nil for 0 (unset).
func timestampOrNil(unixNanos int64) *timestamppb.Timestamp {
	if unixNanos == 0 {
		return nil
	}
	return timestamppb.New(time.Unix(0, unixNanos))
}
