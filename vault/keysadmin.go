package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// CreateKey creates key name of HSM type typ with its default purpose:
// KeyAES256GCM for PAN encryption, KeyAES256FF1 for FPE, KeyHMACSHA256 for
// fingerprints, key pairs for signing. See CreateKeyWithPurpose.
func (n *Node) CreateKey(ctx context.Context, name string, typ keys.KeyType) (*pb.KeyInfo, bool, error) {
	return n.CreateKeyWithPurpose(ctx, name, apiKeyType(typ), defaultPurpose(typ))
}

// CreateKeyWithPurpose creates key name (version 1, active) from the API's
// type and purpose: the key is generated in this node's HSM, wrapped under
// the master key, and the wrapped blob replicated in the "keys" bucket;
// every node loads it into its own HSM.
//
// It is idempotent by name: if the key exists with this type and purpose it
// is returned unchanged with created false; with another type or purpose the
// call fails with ErrAlreadyExists. A key type the HSM cannot wrap (Ed25519
// on SoftHSM) fails with keys.ErrNotWrappable (FAILED_PRECONDITION): a key
// that cannot be replicated is refused, there is no software fallback.
func (n *Node) CreateKeyWithPurpose(ctx context.Context, name string, typ pb.KeyType, purpose pb.KeyPurpose) (*pb.KeyInfo, bool, error) {
	return n.CreateKeyWithOptions(ctx, name, typ, purpose, 0)
}

// CreateKeyWithOptions is CreateKeyWithPurpose with a cryptoperiod (0: the
// purpose's default, see defaultCryptoperiod). Once custodians are
// initialised, creating a new key this way fails with ErrCeremonyRequired:
// new keys come from CREATE_KEY ceremonies (dual control); an existing key
// is still returned, so provisioning stays idempotent.
func (n *Node) CreateKeyWithOptions(ctx context.Context, name string, typ pb.KeyType, purpose pb.KeyPurpose, cryptoperiod time.Duration) (*pb.KeyInfo, bool, error) {
	if err := checkName("name", name); err != nil {
		return nil, false, err
	}
	kt, p, err := keyTypeFor(typ, purpose)
	if err != nil {
		return nil, false, err
	}
	if err := checkCryptoperiod("cryptoperiod", cryptoperiod); err != nil {
		return nil, false, err
	}
	done := n.keyring.beginCreate(name)
	info, created, err := n.createKey(ctx, name, kt, p, cryptoperiod)
	done()
	// Bring the HSM in step with whichever record is known now (ours, the
	// winner of a race, or none yet after an unknown outcome).
	n.keyring.mu.RLock()
	rec := n.keyring.recs[name]
	n.keyring.mu.RUnlock()
	if rec != nil {
		n.keyring.install(n.ctx, rec)
	}
	return info, created, err
}

// createKey does the work of CreateKeyWithPurpose while name is pending.
func (n *Node) createKey(ctx context.Context, name string, kt keys.KeyType, p vaultpb.KeyPurpose, cryptoperiod time.Duration) (*pb.KeyInfo, bool, error) {
	existing, err := n.keyring.record(ctx, name, true)
	switch {
	case err == nil:
		return n.matchExistingKey(existing, kt, p)
	case !errors.Is(err, ErrKeyNotFound):
		return nil, false, err
	}

	if init, err := n.custodiansInitialised(ctx); err != nil {
		return nil, false, err
	} else if init {
		return nil, false, fmt.Errorf("%w: propose a create-key ceremony", ErrCeremonyRequired)
	}

	// No record: a key of this name in the HSM is a leftover of an earlier
	// attempt whose outcome was unknown and that did not commit;
	// generateVersion drops it.
	g, err := n.generateVersion(ctx, name, 1, kt)
	if err != nil {
		return nil, false, err
	}
	g.commit(n)
	ref, wk, blob := g.ref, g.wk, g.blob
	now := n.now().UnixNano()
	rec := &vaultpb.KeyRecord{
		Name:    name,
		KeyType: uint32(kt),
		Purpose: p,
		Versions: []*vaultpb.KeyVersionRecord{{
			Version: 1, State: vaultpb.KeyState_KEY_STATE_ACTIVE, Wrapped: blob, CreateUnixNanos: now, Kcv: checkValue(wk),
		}},
		LatestVersion:        1,
		MinDecryptionVersion: 1,
		CreateUnixNanos:      now,
		CryptoperiodNanos:    int64(cryptoperiod),
	}
	v, err := encodeRecord(rec)
	if err != nil {
		return nil, false, err
	}
	res, err := n.store.Propose(ctx, raftstore.PutIfAbsent(bucketKeys, []byte(name), v))
	if err != nil {
		// Outcome unknown or not applied: keep the key loaded; the deferred
		// install or a retry reconciles the HSM with the record.
		return nil, false, err
	}
	if res.Applied {
		n.keyring.mu.Lock()
		n.keyring.recs[name] = rec
		n.keyring.mu.Unlock()
		n.log.Info("key created", "key", name, "type", kt.String(), "purpose", purposeName(p), "master_kcv", wk.MasterKCV.String())
		return n.keyInfo(rec), true, nil
	}
	// Another node created it first: drop ours, the winner's is loaded by
	// the deferred install.
	n.keyring.unload(ref)
	old, _ := res.Existing()
	winner, err := decodeKey(old)
	if err != nil {
		return nil, false, err
	}
	n.keyring.mu.Lock()
	n.keyring.recs[name] = winner
	n.keyring.mu.Unlock()
	return n.matchExistingKey(winner, kt, p)
}

func (n *Node) matchExistingKey(rec *vaultpb.KeyRecord, kt keys.KeyType, p vaultpb.KeyPurpose) (*pb.KeyInfo, bool, error) {
	if keys.KeyType(rec.GetKeyType()) != kt || rec.GetPurpose() != p {
		return nil, false, fmt.Errorf("%w: key %q exists as %s for %s", ErrAlreadyExists, rec.GetName(),
			keys.KeyType(rec.GetKeyType()), purposeName(rec.GetPurpose()))
	}
	return n.keyInfo(rec), false, nil
}

// GetKey returns key name's metadata (never secret material).
func (n *Node) GetKey(ctx context.Context, name string) (*pb.KeyInfo, error) {
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	rec, err := n.keyring.record(ctx, name, true)
	if err != nil {
		return nil, err
	}
	return n.keyInfo(rec), nil
}

// ListKeys returns one page of keys in name order.
func (n *Node) ListKeys(ctx context.Context, pageSize uint32, pageToken string) ([]*pb.KeyInfo, string, error) {
	kvs, next, err := n.listPage(ctx, bucketKeys, pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	out := make([]*pb.KeyInfo, 0, len(kvs))
	for _, kv := range kvs {
		rec, err := decodeKey(kv.Value)
		if err != nil {
			return nil, "", err
		}
		out = append(out, n.keyInfo(rec))
	}
	return out, next, nil
}
