package vault

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/vaultpb"
)

// FF1Coalesced returns how many FF1 batches the coalescers of n ran and how
// many single requests they carried.
func FF1Coalesced(n *Node) (batches, items uint64) {
	return n.ff1.batches.Load(), n.ff1.items.Load()
}

// PlantRecord stores a token record for pan under token in scheme sc,
// sealed with version of the scheme's key as the vault would: what a
// tokenization planned with a cached older key version commits when it
// lands late. It stands in for that race, which timing cannot produce on
// demand.
func PlantRecord(ctx context.Context, n *Node, sc, token, pan string, version uint32) error {
	e, err := n.schemes.get(ctx, "scheme", sc)
	if err != nil {
		return err
	}
	ref := keys.KeyRef{ID: e.rec.GetKey(), Version: version}
	sealed, err := n.hsm.Seal(ctx, ref, []byte(pan), panAAD(sc, token, version))
	if err != nil {
		return err
	}
	v, err := encodeRecord(&vaultpb.TokenRecord{Key: recordKeyField(e.rec, e.rec.GetKey()), KeyVersion: version, Sealed: sealed, CreateUnixNanos: n.now().UnixNano()})
	if err != nil {
		return err
	}
	res, err := n.store.Propose(ctx, raftstore.PutIfAbsent(bucketTokens, tokenKey(sc, token), v))
	if err == nil && !res.Applied {
		err = ErrAlreadyExists
	}
	return err
}

// RecordsBelow counts the token records of key's schemes that its job has
// not brought to target yet (local state of n).
func RecordsBelow(ctx context.Context, n *Node, key string, target uint32) (uint64, error) {
	schemes, err := n.vaultedSchemesUsing(ctx, key)
	if err != nil {
		return 0, err
	}
	return n.countBelow(ctx, key, schemes, target, 0)
}

// KeyRecordOf reads key name's replicated record (linearizable).
func KeyRecordOf(ctx context.Context, n *Node, name string) (*vaultpb.KeyRecord, error) {
	rec, _, err := n.readKeyRecord(ctx, name)
	return rec, err
}

// InstallKeyRecord hands rec to n's key loader as a late read would.
func InstallKeyRecord(ctx context.Context, n *Node, rec *vaultpb.KeyRecord) {
	n.keyring.install(ctx, rec)
}

// LoadKeyVersion loads blob as key name's version into n's HSM through the
// key loader, as a load racing a state change would.
func LoadKeyVersion(ctx context.Context, n *Node, name string, version uint32, blob []byte) error {
	return n.keyring.ensureLoaded(ctx, keys.KeyRef{ID: name, Version: version}, blob)
}

// KeyLoaded reports whether n's key loader holds key name's version
// loaded, and whether n's HSM can use it (an HMAC with it succeeds).
func KeyLoaded(ctx context.Context, n *Node, name string, version uint32) (loader, hsm bool) {
	ref := keys.KeyRef{ID: name, Version: version}
	n.keyring.mu.RLock()
	_, loader = n.keyring.loaded[ref]
	n.keyring.mu.RUnlock()
	_, err := n.hsm.HMAC(ctx, ref, []byte("probe"))
	return loader, err == nil
}

// TokenStored reports whether n's local state holds a record for token in
// scheme sc.
func TokenStored(ctx context.Context, n *Node, sc, token string) bool {
	_, found, err := n.store.Get(ctx, bucketTokens, tokenKey(sc, token), raftstore.Stale)
	return err == nil && found
}

// BucketLen counts the entries of one of the vault's buckets in n's local
// state ("tokens", "fp", "idem").
func BucketLen(ctx context.Context, n *Node, bucket string) (int, error) {
	count := 0
	var after []byte
	for {
		kvs, more, err := n.store.Scan(ctx, bucket, raftstore.ScanOptions{After: after, Limit: raftstore.MaxScanLimit, Mode: raftstore.Stale})
		if err != nil {
			return 0, err
		}
		count += len(kvs)
		if !more || len(kvs) == 0 {
			return count, nil
		}
		after = kvs[len(kvs)-1].Key
	}
}

// PauseExpirySweep stops (or resumes) n's expiry sweep.
func PauseExpirySweep(n *Node, paused bool) { n.sweepPaused.Store(paused) }

// TokenizeAs tokenizes pan in vaulted scheme sc on n for identity with
// requestID (none when empty), as the service does. With staleIdem the
// request id lookup is skipped, standing in for a follower whose local
// state does not hold the request id's record yet (a stale read's miss,
// which timing cannot produce on demand): the item goes straight to the
// fingerprint lookup of a deterministic scheme, and is refused when it is
// not answered there.
func TokenizeAs(ctx context.Context, n *Node, sc, identity, requestID, pan string, staleIdem bool) (string, error) {
	e, err := n.schemes.get(ctx, "scheme", sc)
	if err != nil {
		return "", err
	}
	p, err := card.Parse(pan, card.ParseOptions{})
	if err != nil {
		return "", err
	}
	it := &tokItem{pan: p}
	if requestID != "" {
		it.idem = idemKey(identity, methodTokenize, sc, requestID)
	}
	if !staleIdem {
		r := n.tokenize(ctx, e, []*tokItem{it})[0]
		if r.err != nil {
			return "", r.err
		}
		return r.resp.GetToken(), nil
	}
	res := make([]tokResult, 1)
	if left := n.lookupFingerprints(ctx, e, []*tokItem{it}, res, []int{0}); len(left) > 0 {
		return "", errors.New("not answered by the fingerprint lookup")
	}
	if res[0].err != nil {
		return "", res[0].err
	}
	return res[0].resp.GetToken(), nil
}

// AnchorAudit proposes n's audit head as an anchor now, as its anchor loop
// does at each interval.
func AnchorAudit(ctx context.Context, n *Node) (uint64, error) { return n.anchorAudit(ctx, 0) }

// PlantAnchor writes an anchor under chain (hex) and seq with hash and node
// id: what a peer that is not the log's writer could propose. It stands in
// for a compromised or confused node.
func PlantAnchor(ctx context.Context, n *Node, chain string, seq uint64, hash []byte, node string) error {
	c, err := hex.DecodeString(chain)
	if err != nil {
		return err
	}
	v, err := encodeRecord(&vaultpb.AuditAnchor{NodeId: node, Hash: hash, RecordedUnixNanos: n.now().UnixNano()})
	if err != nil {
		return err
	}
	_, err = n.store.Propose(ctx, raftstore.PutIfAbsent(bucketAuditAnchors, anchorKey(c, seq), v))
	return err
}
