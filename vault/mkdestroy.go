package vault

import (
	"bytes"
	"context"
	"fmt"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Removing the previous master key after a rotation (DestroyOldMasterKey).
// A rotation leaves the old master key in every node's HSM: nothing needs
// it any more, but anyone holding a token and its PIN could still unwrap
// the old blobs (in backups, old Raft snapshots) with it. An operator
// destroys it node by node (the call is node-local, like StageMasterKey,
// because each node has its own HSM). The node refuses to destroy a master
// key that is or may become needed:
//
//   - the cluster's current master key (the replicated "current" record, or
//     before any rotation this node's HSM's);
//   - a master key named by a pending ROTATE_MASTER_KEY ceremony;
//   - a master key staged on some node and never made current by an
//     executed rotation (staged for a rotation not carried out yet);
//   - anything, while this node has not switched to the cluster's current
//     master key (it may still need its previous one).
//
// keys.HSM.DestroyMasterKey adds the HSM's own refusals (its current master
// key, one a loaded key's kept blob is wrapped under). The node then drops
// the KCV from its replicated staged record, so that a later rotation
// naming that key again waits until it is staged again.

// DestroyOldMasterKey destroys the master key kcv in this node's HSM (see
// the file comment for what it refuses) and reports whether the HSM held
// it. Safe for concurrent use.
func (n *Node) DestroyOldMasterKey(ctx context.Context, kcv keys.KCV) (bool, error) {
	if err := n.checkOldMasterKey(ctx, kcv); err != nil {
		return false, err
	}
	destroyed, err := n.hsm.DestroyMasterKey(ctx, kcv)
	if err != nil {
		return false, err
	}
	if destroyed {
		n.log.Info("old master key destroyed", "master_kcv", kcv.String())
	} else {
		n.log.Info("old master key not in this hsm: nothing destroyed", "master_kcv", kcv.String())
	}
	if err := n.unstageMasterKey(ctx, kcv); err != nil {
		return false, fmt.Errorf("master key %s destroyed=%v, but the staged record was not updated: %w", kcv, destroyed, err)
	}
	return destroyed, nil
}

// checkOldMasterKey returns why kcv may not be destroyed on this node, or nil.
func (n *Node) checkOldMasterKey(ctx context.Context, kcv keys.KCV) error {
	cur, err := n.currentMasterKCV(ctx)
	if err != nil {
		return err
	}
	if cur == kcv {
		return fmt.Errorf("%w: %s is the cluster's current master key", keys.ErrMasterKeyInUse, kcv)
	}
	if hk, ok := n.hsm.MasterKeyKCV(); !ok || hk != cur {
		return fmt.Errorf("%w: this node has not switched to the cluster's master key %s yet; destroy nothing until it has",
			keys.ErrMasterKeyMismatch, cur)
	}
	all, _, err := n.Ceremonies(ctx, 0)
	if err != nil {
		return err
	}
	wasCurrent := false
	for _, st := range all {
		p, ok := st.Proposal.Params.(ceremony.RotateMasterKey)
		if !ok || p.MasterKCV != kcv {
			continue
		}
		switch st.Status {
		case ceremony.StatusPending:
			return fmt.Errorf("%w: %s is the new master key of pending ceremony %s", keys.ErrMasterKeyInUse, kcv, st.ID)
		case ceremony.StatusExecuted:
			wasCurrent = true
		}
	}
	if wasCurrent {
		return nil
	}
	_, staged, err := n.MasterKeyStatus(ctx)
	if err != nil {
		return err
	}
	for node, ks := range staged {
		for _, k := range ks {
			if k == kcv {
				return fmt.Errorf("%w: %s is staged on %s for a rotation not carried out", keys.ErrMasterKeyInUse, kcv, node)
			}
		}
	}
	return nil
}

// unstageMasterKey removes kcv from this node's replicated staged record.
func (n *Node) unstageMasterKey(ctx context.Context, kcv keys.KCV) error {
	key := mkStagedKey(n.id)
	for try := 0; try < maxCeremonyRetries; try++ {
		old, found, err := n.store.Get(ctx, bucketMK, key, raftstore.Linearizable)
		if err != nil || !found {
			return err
		}
		rec := &vaultpb.MasterKeyStaged{}
		if err := decodeRecord(old, rec); err != nil {
			return err
		}
		keep := rec.Kcvs[:0:0]
		for _, k := range rec.GetKcvs() {
			if !bytes.Equal(k, kcv[:]) {
				keep = append(keep, k)
			}
		}
		if len(keep) == len(rec.GetKcvs()) {
			return nil
		}
		rec.Kcvs = keep
		v, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		res, err := n.store.Propose(ctx, raftstore.CompareAndSet(bucketMK, key, old, v))
		if err != nil {
			return err
		}
		if res.Applied {
			return nil
		}
	}
	return fmt.Errorf("%w: staged master keys of %s", ErrConflict, n.id)
}

func (s *ceremonyService) DestroyOldMasterKey(ctx context.Context, req *pb.DestroyOldMasterKeyRequest) (*pb.DestroyOldMasterKeyResponse, error) {
	kcv, err := keys.ParseKCV(req.GetKcv())
	if err != nil {
		return nil, fieldError("kcv", scheme.RuleFormat, "must be 6 hex digits")
	}
	destroyed, err := s.n.DestroyOldMasterKey(ctx, kcv)
	if err != nil {
		return nil, err
	}
	return &pb.DestroyOldMasterKeyResponse{NodeId: s.n.ID(), Destroyed: destroyed}, nil
}
