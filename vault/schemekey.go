package vault

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Changing a vaulted scheme's PAN-encryption key (the change-scheme-key
// ceremony). New tokens are sealed under the new key from the commit on;
// every token record names the key that sealed it (TokenRecord.key, empty
// for the scheme's first key), so records sealed before keep opening with
// their own key and version whatever the scheme names now. The scheme
// remembers its earlier keys, so the re-encryption job of an earlier key
// still finds its records and moves them to the scheme's current key
// (reencrypt.go); once that job is done the earlier key's versions can be
// retired and destroyed like any other.
//
// FF1 schemes are refused: an FF1 token carries its key version but
// nothing that could name a key, so tokens of the old key would become
// ambiguous. An FF1 scheme changes key material by rotating its key and
// Retokenize.

// firstKey is the key whose records leave TokenRecord.key empty.
func firstKey(s *vaultpb.SchemeRecord) string {
	if p := s.GetPreviousKeys(); len(p) > 0 {
		return p[0]
	}
	return s.GetKey()
}

// recordKey is the name of the key that sealed rec, a record of scheme s.
func recordKey(s *vaultpb.SchemeRecord, rec *vaultpb.TokenRecord) string {
	if k := rec.GetKey(); k != "" {
		return k
	}
	return firstKey(s)
}

// recordKeyField is the TokenRecord.key value of a record of s sealed under
// key.
func recordKeyField(s *vaultpb.SchemeRecord, key string) string {
	if key == firstKey(s) {
		return ""
	}
	return key
}

// usesPANKey reports whether records of scheme s may be sealed under key:
// it is the scheme's key now or was before.
func usesPANKey(s *vaultpb.SchemeRecord, key string) bool {
	return s.GetKey() == key || slices.Contains(s.GetPreviousKeys(), key)
}

// readSchemeRecord reads scheme name with mode and its stored bytes.
func (n *Node) readSchemeRecord(ctx context.Context, name string, mode raftstore.ReadMode) (*vaultpb.SchemeRecord, []byte, error) {
	v, found, err := n.store.Get(ctx, bucketSchemes, []byte(name), mode)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: %q", ErrSchemeNotFound, name)
	}
	rec, err := decodeScheme(v)
	if err != nil {
		return nil, nil, err
	}
	return rec, v, nil
}

// checkChangeSchemeKey checks p against the current state: the scheme
// exists and is vaulted, the key exists for PAN encryption, and it is not
// the scheme's key already. It returns the scheme record and its bytes.
func (n *Node) checkChangeSchemeKey(ctx context.Context, p ceremony.ChangeSchemeKey) (*vaultpb.SchemeRecord, []byte, error) {
	srec, raw, err := n.readSchemeRecord(ctx, p.Scheme, raftstore.Linearizable)
	if err != nil {
		return nil, nil, err
	}
	if srec.GetMode() != vaultpb.SchemeMode_SCHEME_MODE_VAULTED {
		return nil, nil, fmt.Errorf("%w: scheme %q is not vaulted: an ff1 token names its key version but not its key; rotate the scheme's key and retokenize instead",
			ErrWrongMode, p.Scheme)
	}
	if srec.GetKey() == p.Key {
		return nil, nil, fmt.Errorf("%w: scheme %q uses key %q already", ErrAlreadyExists, p.Scheme, p.Key)
	}
	krec, _, err := n.readKeyRecord(ctx, p.Key)
	if err != nil {
		return nil, nil, err
	}
	if krec.GetPurpose() != vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION {
		return nil, nil, fmt.Errorf("%w: key %q is for %s, not %s", ErrWrongPurpose, p.Key,
			purposeName(krec.GetPurpose()), purposeName(vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION))
	}
	return srec, raw, nil
}

// prepareChangeSchemeKey points the scheme at the new key, remembering the
// old one, with a compare-and-set on the scheme record.
func (n *Node) prepareChangeSchemeKey(ctx context.Context, p ceremony.ChangeSchemeKey) (*execution, error) {
	srec, raw, err := n.checkChangeSchemeKey(ctx, p)
	if err != nil {
		return lasting(err)
	}
	next := changedSchemeKey(srec, p.Key)
	v, err := encodeRecord(next)
	if err != nil {
		return nil, err
	}
	return &execution{
		ops: []raftstore.Op{raftstore.CompareAndSet(bucketSchemes, []byte(p.Scheme), raw, v)},
		outcome: fmt.Sprintf("scheme %s seals new tokens under key %s (was %s); run panvault key reencrypt %s to move its records",
			p.Scheme, p.Key, srec.GetKey(), srec.GetKey()),
	}, nil
}

// changedSchemeKey returns s using key, with its current key remembered.
func changedSchemeKey(s *vaultpb.SchemeRecord, key string) *vaultpb.SchemeRecord {
	next := proto.Clone(s).(*vaultpb.SchemeRecord)
	if !slices.Contains(next.PreviousKeys, s.GetKey()) {
		next.PreviousKeys = append(next.PreviousKeys, s.GetKey())
	}
	next.Key = key
	next.Revision++
	return next
}
