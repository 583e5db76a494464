package vault

import (
	"context"
	"fmt"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// methodDelete scopes DeleteToken request ids.
const methodDelete = "delete_token"

// deleteToken removes token from scheme e, with its fingerprint index entry
// and the idempotency record that created it, in one atomic command. The
// command is conditional on the state read just before (the token record
// unchanged, or still absent), so the reported "deleted" is exact; a
// concurrent change makes it read and try again.
//
// With idem set, the reply is recorded in the same command and a retry
// returns it.
func (n *Node) deleteToken(ctx context.Context, e *schemeEntry, token string, idem []byte) (bool, error) {
	if e.s.Mode() != scheme.ModeVaulted {
		return false, fmt.Errorf("%w: %s schemes store nothing to delete", ErrWrongMode, e.s.Mode())
	}
	if err := e.s.CheckToken(token, "token"); err != nil {
		return false, err
	}
	if idem != nil {
		if deleted, ok, err := n.deleteReplied(ctx, idem, raftstore.Stale); ok || err != nil {
			return deleted, err
		}
	}
	key := tokenKey(e.name(), token)
	for range maxDraws {
		if err := n.store.ReadBarrier(ctx); err != nil {
			return false, err
		}
		v, found, err := n.store.Get(ctx, bucketTokens, key, raftstore.Stale)
		if err != nil {
			return false, err
		}
		var ops []raftstore.Op
		if found {
			rec, err := decodeToken(v)
			if err != nil {
				return false, err
			}
			if ops, err = n.tokenDeleteOps(ctx, key, token, v, rec); err != nil {
				return false, err
			}
		} else {
			// Assert the token is still absent without leaving a trace.
			ops = append(ops,
				raftstore.PutIfAbsent(bucketTokens, key, nil),
				raftstore.Delete(bucketTokens, key))
		}
		opIdem := -1
		if idem != nil {
			rv, err := encodeRecord(&vaultpb.IdemRecord{
				CreateUnixNanos: n.now().UnixNano(),
				Reply:           &vaultpb.IdemRecord_Delete{Delete: &vaultpb.DeleteReply{Deleted: found}},
			})
			if err != nil {
				return false, err
			}
			opIdem = len(ops)
			ops = append(ops, raftstore.PutIfAbsent(bucketIdem, idem, rv))
		}
		res, err := n.store.Propose(ctx, ops...)
		if err != nil {
			return false, err
		}
		if res.Applied {
			return found, nil
		}
		if res.FailedOp == opIdem {
			existing, _ := res.Existing()
			return decodeDeleteReply(existing)
		}
		// The token or its index entry changed since our read: read again.
	}
	return false, fmt.Errorf("%w: token kept changing during delete", raftstore.ErrNotApplied)
}

// deleteReplied looks up a recorded DeleteToken reply.
func (n *Node) deleteReplied(ctx context.Context, idem []byte, mode raftstore.ReadMode) (deleted, ok bool, err error) {
	v, found, err := n.store.Get(ctx, bucketIdem, idem, mode)
	if err != nil || !found {
		return false, false, err
	}
	deleted, err = decodeDeleteReply(v)
	return deleted, true, err
}

func decodeDeleteReply(v []byte) (bool, error) {
	rec, err := decodeIdem(v)
	if err != nil {
		return false, err
	}
	d := rec.GetDelete()
	if d == nil {
		return false, fmt.Errorf("%w: request_id already used by another method", ErrAlreadyExists)
	}
	return d.GetDeleted(), nil
}

// tokenDeleteOps returns the operations that remove a token record read as
// v (compare-and-set: unchanged since the read), its fingerprint entry when
// it still points to this token, and the idempotency record that created
// it when that record still names this token (a request id may have been
// reused after the record's retention). Reads are local: callers read
// after a read barrier, and the compare-and-sets catch later changes.
func (n *Node) tokenDeleteOps(ctx context.Context, key []byte, token string, v []byte, rec *vaultpb.TokenRecord) ([]raftstore.Op, error) {
	ops := []raftstore.Op{
		raftstore.CompareAndSet(bucketTokens, key, v, v), // unchanged since our read
		raftstore.Delete(bucketTokens, key),
	}
	if fp := rec.GetFingerprint(); len(fp) > 0 {
		cur, ok, err := n.store.Get(ctx, bucketFP, fp, raftstore.Stale)
		if err != nil {
			return nil, err
		}
		if ok && string(cur) == token { // the index still points here
			ops = append(ops,
				raftstore.CompareAndSet(bucketFP, fp, cur, cur),
				raftstore.Delete(bucketFP, fp))
		}
	}
	if ik := rec.GetIdemKey(); len(ik) > 0 {
		cur, ok, err := n.store.Get(ctx, bucketIdem, ik, raftstore.Stale)
		if err != nil {
			return nil, err
		}
		if ok {
			if ir, err := decodeIdem(cur); err == nil && ir.GetTokenize().GetToken() == token {
				ops = append(ops,
					raftstore.CompareAndSet(bucketIdem, ik, cur, cur),
					raftstore.Delete(bucketIdem, ik))
			}
		}
	}
	return ops, nil
}
