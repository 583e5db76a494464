package vault

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Re-indexing after a rotation of a fingerprint key: the re-encryption job
// of the fingerprint key (same bucket, loop and cursor as for a
// PAN-encryption key) visits the token records of the deterministic
// schemes indexed by it and, for each record indexed under an older
// version, opens the PAN, computes its fingerprint under the target
// version and commits in one command: the record with its new index key
// (compare-and-set), the new index entry pointing to the token, and the
// removal of the old entry when it still points to this token. Until the
// job is done, tokenize also looks PANs up under the older usable versions
// (fingerprints.go), so a rotation never issues a second token for a PAN.

// reindexer re-indexes the records of one scheme under one version.
type reindexer struct {
	r      *reencryptor
	e      *schemeEntry
	target uint32
	fk     keyVersion
}

func (r *reencryptor) newReindexer(ctx context.Context, key, sc string, target uint32) (*reindexer, error) {
	e, err := r.n.schemes.get(ctx, "scheme", sc)
	if err != nil {
		return nil, err
	}
	if e.rec.GetFingerprintKey() != key {
		return nil, fmt.Errorf("%w: scheme %s is not indexed by key %q", ErrConflict, sc, key)
	}
	fk, err := r.n.keyring.resolve(ctx, key, target, vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT, useDecrypt)
	if err != nil {
		return nil, err
	}
	return &reindexer{r: r, e: e, target: target, fk: fk}, nil
}

// ops returns the command that re-indexes one record (see the file
// comment).
func (x *reindexer) ops(item raftstore.KV, rec *vaultpb.TokenRecord) ([]raftstore.Op, error) {
	n := x.r.n
	ctx := n.ctx
	sc := x.e.name()
	token := string(item.Key[len(sc)+1:])
	pan, err := n.openPAN(ctx, x.e, token, rec)
	if err != nil {
		return nil, err
	}
	var scratch []byte
	newFP, err := n.fingerprint(ctx, x.fk.ref, sc, pan, &scratch)
	pan.Wipe()
	if err != nil {
		return nil, err
	}
	nrec := proto.Clone(rec).(*vaultpb.TokenRecord)
	nrec.Fingerprint = newFP
	v, err := encodeRecord(nrec)
	if err != nil {
		return nil, err
	}
	ops := []raftstore.Op{
		raftstore.CompareAndSet(bucketTokens, item.Key, item.Value, v),
		// Put, not put-if-absent: a token made under the new version for
		// the same PAN before this fix existed loses the entry; both
		// tokens keep detokenizing.
		raftstore.Put(bucketFP, newFP, []byte(token)),
	}
	oldFP := rec.GetFingerprint()
	cur, found, err := n.store.Get(ctx, bucketFP, oldFP, raftstore.Stale)
	if err != nil {
		return nil, err
	}
	if found && string(cur) == token {
		ops = append(ops,
			raftstore.CompareAndSet(bucketFP, oldFP, cur, cur),
			raftstore.Delete(bucketFP, oldFP))
	}
	return ops, nil
}
