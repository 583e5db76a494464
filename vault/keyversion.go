package vault

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Key versions: what rotation, retirement and destruction do to a
// KeyRecord. Every function here is pure over records (the HSM work is in
// generateVersion); the ceremony executor writes the results with
// compare-and-set on the record it read.
//
// States only move forward: ACTIVE -> DECRYPT_ONLY (a newer version was
// made) -> RETIRED (below the minimum decryption version; the wrapped blob
// is kept so a retirement can be reviewed) -> DESTROYED (blob erased from
// the replicated state and unloaded from every HSM; the version's metadata
// stays, so its tokens fail with a clear KEY_VERSION_DESTROYED).

// cloneKey returns a deep copy of rec as its next revision: every change
// of a stored key record starts here, so revisions only grow (the key
// loader ignores older copies, keyring.install).
func cloneKey(rec *vaultpb.KeyRecord) *vaultpb.KeyRecord {
	out := proto.Clone(rec).(*vaultpb.KeyRecord)
	out.Revision = rec.GetRevision() + 1
	return out
}

// rotatedRecord returns rec with version v (wrapped blob, key check value
// kcv) added as the active version and the previous active versions
// decrypt-only, at now.
func rotatedRecord(rec *vaultpb.KeyRecord, v uint32, blob, kcv []byte, now int64) *vaultpb.KeyRecord {
	out := cloneKey(rec)
	for _, kv := range out.Versions {
		if kv.GetState() == vaultpb.KeyState_KEY_STATE_ACTIVE {
			kv.State = vaultpb.KeyState_KEY_STATE_DECRYPT_ONLY
			kv.StateUnixNanos = now
		}
	}
	out.Versions = append(out.Versions, &vaultpb.KeyVersionRecord{
		Version: v, State: vaultpb.KeyState_KEY_STATE_ACTIVE, Wrapped: blob, CreateUnixNanos: now, StateUnixNanos: now, Kcv: kcv,
	})
	out.LatestVersion = v
	return out
}

// checkMinDecryption says whether the minimum decryption version of rec may
// become v: above the current one (states only move forward) and at most
// the latest version.
func checkMinDecryption(rec *vaultpb.KeyRecord, v uint32) error {
	if v > rec.GetLatestVersion() {
		return fmt.Errorf("%w: key %q has no version %d (latest is %d)", ErrKeyNotFound, rec.GetName(), v, rec.GetLatestVersion())
	}
	if v <= rec.GetMinDecryptionVersion() {
		return fmt.Errorf("%w: key %q already decrypts only from version %d; the minimum only rises",
			ErrKeyState, rec.GetName(), rec.GetMinDecryptionVersion())
	}
	return nil
}

// minDecryptionRecord returns rec with minimum decryption version v: every
// usable version below it is retired at now.
func minDecryptionRecord(rec *vaultpb.KeyRecord, v uint32, now int64) *vaultpb.KeyRecord {
	out := cloneKey(rec)
	for _, kv := range out.Versions {
		if kv.GetVersion() < v && usableState(kv.GetState()) {
			kv.State = vaultpb.KeyState_KEY_STATE_RETIRED
			kv.StateUnixNanos = now
		}
	}
	out.MinDecryptionVersion = v
	return out
}

// checkDestroy says whether version v of rec may be destroyed: it exists,
// is below the minimum decryption version (retired), and is not destroyed
// already.
func checkDestroy(rec *vaultpb.KeyRecord, v uint32) error {
	kv := findVersion(rec, v)
	if v == 0 || kv == nil {
		return fmt.Errorf("%w: key %q has no version %d", ErrKeyNotFound, rec.GetName(), v)
	}
	if kv.GetState() == vaultpb.KeyState_KEY_STATE_DESTROYED {
		return fmt.Errorf("%w: key %q version %d", ErrKeyVersionDestroyed, rec.GetName(), v)
	}
	if v >= rec.GetMinDecryptionVersion() || kv.GetState() != vaultpb.KeyState_KEY_STATE_RETIRED {
		return fmt.Errorf("%w: key %q version %d is %s; only a retired version (below the minimum decryption version %d) can be destroyed",
			ErrKeyState, rec.GetName(), v, stateName(kv.GetState()), rec.GetMinDecryptionVersion())
	}
	return nil
}

// destroyedRecord returns rec with version v destroyed at now: its wrapped
// blob is dropped, its metadata kept.
func destroyedRecord(rec *vaultpb.KeyRecord, v uint32, now int64) *vaultpb.KeyRecord {
	out := cloneKey(rec)
	for _, kv := range out.Versions {
		if kv.GetVersion() == v {
			kv.State = vaultpb.KeyState_KEY_STATE_DESTROYED
			kv.StateUnixNanos = now
			kv.Wrapped = nil
		}
	}
	return out
}

// generated is a key version made in this node's HSM and not yet committed.
// Until commit it is loaded in the HSM but unknown to the keyring, so no
// request can use it; discard unloads it.
type generated struct {
	ref  keys.KeyRef
	wk   *keys.WrappedKey
	blob []byte
}

// generateVersion generates version v of key name (type kt) in this node's
// HSM, wrapped under the master key. A leftover object of that id and
// version that no record names (an earlier attempt that did not commit) is
// dropped first.
func (n *Node) generateVersion(ctx context.Context, name string, v uint32, kt keys.KeyType) (*generated, error) {
	if err := n.requireCurrentMasterKey(ctx); err != nil {
		return nil, err
	}
	ref := keys.KeyRef{ID: name, Version: v}
	if _, err := n.hsm.KeyInfo(ref); err == nil {
		n.keyring.unload(ref)
		if err := n.hsm.Unload(ref); err != nil && !errors.Is(err, keys.ErrKeyNotFound) {
			return nil, err
		}
	}
	wk, err := n.hsm.GenerateKey(ctx, keys.KeySpec{ID: name, Version: v, Type: kt})
	if err != nil {
		return nil, fmt.Errorf("generate %s key %q version %d: %w", kt, name, v, err)
	}
	blob, err := wk.Marshal()
	if err != nil {
		_ = n.hsm.Unload(ref)
		return nil, err
	}
	return &generated{ref: ref, wk: wk, blob: blob}, nil
}

// checkValue is the KCV GenerateKey took of wk, as the 3 bytes a
// KeyVersionRecord keeps (nil when it has none).
func checkValue(wk *keys.WrappedKey) []byte {
	if wk.CheckValue == nil {
		return nil
	}
	return append([]byte(nil), wk.CheckValue[:]...)
}

// commit tells the keyring the version is loaded (its record committed).
func (g *generated) commit(n *Node) { n.keyring.markLoaded(g.ref, g.wk) }

// discard unloads a version whose record did not commit.
func (g *generated) discard(n *Node) {
	if err := n.hsm.Unload(g.ref); err != nil && !errors.Is(err, keys.ErrKeyNotFound) {
		n.log.Error("unload uncommitted key version", "key", g.ref.String(), "err", err)
	}
}

// readKeyRecord reads key name linearizably, returning the record and its
// stored bytes (for compare-and-set). Not found is ErrKeyNotFound.
func (n *Node) readKeyRecord(ctx context.Context, name string) (*vaultpb.KeyRecord, []byte, error) {
	v, found, err := n.store.Get(ctx, bucketKeys, []byte(name), raftstore.Linearizable)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	rec, err := decodeKey(v)
	if err != nil {
		return nil, nil, err
	}
	return rec, v, nil
}

// vaultedSchemesUsing returns the names of the vaulted schemes whose PAN
// key is or was key (schemekey.go), or (deterministic schemes) whose fingerprint key is key, in
// name order (local read; call after a read barrier). A key has one
// purpose, so only one of the two can match.
func (n *Node) vaultedSchemesUsing(ctx context.Context, key string) ([]string, error) {
	var out []string
	var derr error
	err := n.scanAll(ctx, bucketSchemes, nil, raftstore.Stale, func(kvs []raftstore.KV) bool {
		for _, kv := range kvs {
			rec, err := decodeScheme(kv.Value)
			if err != nil {
				derr = err
				return false
			}
			if rec.GetMode() == vaultpb.SchemeMode_SCHEME_MODE_VAULTED &&
				(usesPANKey(rec, key) || (rec.GetDeterministic() && rec.GetFingerprintKey() == key)) {
				out = append(out, rec.GetName())
			}
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}
