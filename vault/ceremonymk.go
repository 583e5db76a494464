package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Master-key rotation. Custodians make new components (panvault mk
// components); on every node an operator stages the new master key
// (StageMasterKey: the node's HSM imports it under the label
// StagedMasterKeyLabel(kcv), beside the current one, and the node records in
// the replicated bucket "mk" that it has it). A ROTATE_MASTER_KEY ceremony
// names the new master key's KCV and its components' KCVs; once M
// custodians approve and every voting node has staged it, the node carrying
// it out rewraps every working key version HSM to HSM (keys.HSM.Rewrap) and
// writes all rewrapped key records together with the new "current" master
// key record, the ceremony state and its log entry in one command. Every
// node then switches its HSM to the new master key and swaps the blobs kept
// for its loaded keys (keys.HSM.UseMasterKey, ReplaceBlob): loaded keys
// stay loaded, so the cluster keeps serving throughout. A node started
// later switches before it loads any key.
//
// The old master key stays in each HSM until an operator removes it
// (DestroyOldMasterKey, mkdestroy.go; `panvault mk destroy-old`).
// Limit: the rotation is one replicated command (all keys switch master key
// at once), so it covers at most maxMKRotationKeys keys
// (raftstore.MaxOpsPerCommand less the ceremony's own operations) and
// maxMKRotationBytes of key records, old and new (about 250 AES keys with
// a few versions each); a vault with more fails the ceremony with that
// reason.

const (
	bucketMK      = "mk"      // "current" -> MasterKeyRecord; "staged" 0 node -> MasterKeyStaged
	mkCurrent     = "current" // the master key every replicated blob is wrapped under
	mkStagedPfx   = "staged\x00"
	mkLabelPrefix = "panvault-master-key-"
)

// maxMKRotationKeys is how many key records one rotation command can
// rewrite (head CAS, log entry, state and the current record take four
// operations).
const maxMKRotationKeys = raftstore.MaxOpsPerCommand - 4

// maxMKRotationBytes bounds the key records (compare-and-set: old and new
// value) of one rotation command, well below the group commit's batch and
// forwarding limits (1 MiB by default).
const maxMKRotationBytes = 512 << 10

// StagedMasterKeyLabel is the PKCS#11 label a master key with KCV kcv is
// staged under on every node.
func StagedMasterKeyLabel(kcv keys.KCV) string { return mkLabelPrefix + kcv.String() }

func mkStagedKey(node string) []byte { return []byte(mkStagedPfx + node) }

// readCurrentMK returns the replicated current master key record, if any.
func (n *Node) readCurrentMK(ctx context.Context, mode raftstore.ReadMode) (*vaultpb.MasterKeyRecord, bool, error) {
	v, found, err := n.store.Get(ctx, bucketMK, []byte(mkCurrent), mode)
	if err != nil || !found {
		return nil, false, err
	}
	rec := &vaultpb.MasterKeyRecord{}
	if err := decodeRecord(v, rec); err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

// currentMasterKCV returns the cluster's master key KCV: the replicated
// record after a rotation, else this node's HSM's.
func (n *Node) currentMasterKCV(ctx context.Context) (keys.KCV, error) {
	rec, found, err := n.readCurrentMK(ctx, raftstore.Linearizable)
	if err != nil {
		return keys.KCV{}, err
	}
	if found {
		var k keys.KCV
		copy(k[:], rec.GetKcv())
		return k, nil
	}
	k, ok := n.hsm.MasterKeyKCV()
	if !ok {
		return keys.KCV{}, keys.ErrMasterKeyMissing
	}
	return k, nil
}

// useReplicatedMasterKey runs at start, before any key is loaded: if the
// replicated state names another master key than the HSM's current one,
// the HSM switches to it (it must have been staged on this node).
func (n *Node) useReplicatedMasterKey(ctx context.Context) error {
	rec, found, err := n.readCurrentMK(ctx, raftstore.Stale)
	if err != nil || !found {
		return err
	}
	n.switchMasterKey(ctx, rec)
	return nil
}

// switchMasterKey makes the HSM use rec's master key. A node that has not
// staged it logs the problem; each request for a key it cannot load then
// fails with MASTER_KEY_MISMATCH.
func (n *Node) switchMasterKey(ctx context.Context, rec *vaultpb.MasterKeyRecord) bool {
	if cur, ok := n.hsm.MasterKeyKCV(); ok && bytes.Equal(cur[:], rec.GetKcv()) {
		return true
	}
	kcv, err := n.hsm.UseMasterKey(rec.GetLabel())
	if err != nil {
		n.log.Error("cannot switch to the cluster's master key: stage it on this node", "label", rec.GetLabel(), "err", err)
		return false
	}
	n.log.Info("master key switched", "master_kcv", kcv.String(), "label", rec.GetLabel())
	return true
}

// followMasterKey applies the replicated master key after a rotation: the
// HSM switches, the blobs kept for loaded keys are replaced by their
// rewrapped records, and versions that failed to load are tried again.
func (n *Node) followMasterKey() {
	defer n.wg.Done()
	sub := n.store.Subscribe(bucketMK)
	defer sub.Close()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			relevant := ev.Rescan
			for _, k := range ev.Keys {
				relevant = relevant || string(k) == mkCurrent
			}
			if relevant {
				n.applyMasterKey(n.ctx)
			}
		}
	}
}

func (n *Node) applyMasterKey(ctx context.Context) {
	rec, found, err := n.readCurrentMK(ctx, raftstore.Stale)
	if err != nil || !found {
		return
	}
	if !n.switchMasterKey(ctx, rec) {
		return
	}
	var kcv keys.KCV
	copy(kcv[:], rec.GetKcv())
	var after []byte
	for {
		kvs, more, err := n.store.Scan(ctx, bucketKeys, raftstore.ScanOptions{After: after, Limit: 1000, Mode: raftstore.Stale})
		if err != nil {
			n.log.Error("master key switch: read keys", "err", err)
			return
		}
		for _, kv := range kvs {
			krec, err := decodeKey(kv.Value)
			if err != nil {
				continue
			}
			for _, v := range krec.GetVersions() {
				ref := keys.KeyRef{ID: krec.GetName(), Version: v.GetVersion()}
				info, err := n.hsm.KeyInfo(ref)
				if err != nil || info.MasterKCV == kcv || len(v.GetWrapped()) == 0 {
					continue
				}
				if err := n.hsm.ReplaceBlob(ctx, v.GetWrapped()); err != nil && !errors.Is(err, keys.ErrKeyNotFound) {
					n.log.Error("master key switch: replace key blob", "key", ref.String(), "err", err)
				}
			}
		}
		if !more || len(kvs) == 0 {
			break
		}
		after = kvs[len(kvs)-1].Key
	}
	n.keyring.mu.Lock()
	clear(n.keyring.failed)
	n.keyring.mu.Unlock()
	if err := n.keyring.loadAll(ctx); err != nil && !n.closed() {
		n.log.Error("master key switch: reload keys", "err", err)
	}
}

// requireCurrentMasterKey makes sure the HSM wraps new keys under the
// cluster's current master key (switching first if this node lags behind
// a rotation).
func (n *Node) requireCurrentMasterKey(ctx context.Context) error {
	rec, found, err := n.readCurrentMK(ctx, raftstore.Linearizable)
	if err != nil || !found {
		return err
	}
	if cur, ok := n.hsm.MasterKeyKCV(); ok && bytes.Equal(cur[:], rec.GetKcv()) {
		return nil // the usual case: no switch, no reload of every key
	}
	n.applyMasterKey(ctx)
	if cur, ok := n.hsm.MasterKeyKCV(); !ok || !bytes.Equal(cur[:], rec.GetKcv()) {
		return fmt.Errorf("%w: this node's hsm does not use the cluster's master key %X", keys.ErrMasterKeyMismatch, rec.GetKcv())
	}
	return nil
}

// StageMasterKey imports the master key made from comps (KCV want) into
// this node's HSM beside the current one and records in the replicated
// state that this node has it. created is false when it was staged before.
// The components are zeroed.
func (n *Node) StageMasterKey(ctx context.Context, comps []*keys.Component, want keys.KCV) (bool, error) {
	if cur, err := n.currentMasterKCV(ctx); err == nil && cur == want {
		for _, c := range comps {
			c.Zero()
		}
		return false, fmt.Errorf("%w: master key %s is the current one", ErrAlreadyExists, want)
	}
	created, err := n.hsm.StageMasterKey(ctx, StagedMasterKeyLabel(want), comps, want)
	if err != nil {
		return false, err
	}
	for try := 0; try < maxCeremonyRetries; try++ {
		key := mkStagedKey(n.id)
		old, found, err := n.store.Get(ctx, bucketMK, key, raftstore.Linearizable)
		if err != nil {
			return false, err
		}
		rec := &vaultpb.MasterKeyStaged{}
		if found {
			if err := decodeRecord(old, rec); err != nil {
				return false, err
			}
		}
		for _, k := range rec.GetKcvs() {
			if bytes.Equal(k, want[:]) {
				return created, nil
			}
		}
		rec.Kcvs = append(rec.Kcvs, append([]byte(nil), want[:]...))
		v, err := encodeRecord(rec)
		if err != nil {
			return false, err
		}
		op := raftstore.PutIfAbsent(bucketMK, key, v)
		if found {
			op = raftstore.CompareAndSet(bucketMK, key, old, v)
		}
		res, err := n.store.Propose(ctx, op)
		if err != nil {
			return false, err
		}
		if res.Applied {
			n.log.Info("master key staged", "master_kcv", want.String(), "label", StagedMasterKeyLabel(want))
			return created, nil
		}
	}
	return false, fmt.Errorf("%w: staged master keys of %s", ErrConflict, n.id)
}

// MasterKeyStatus returns the cluster's current master key KCV and the KCVs
// each node has staged (node id -> KCVs).
func (n *Node) MasterKeyStatus(ctx context.Context) (keys.KCV, map[string][]keys.KCV, error) {
	cur, err := n.currentMasterKCV(ctx)
	if err != nil {
		return keys.KCV{}, nil, err
	}
	kvs, _, err := n.store.Scan(ctx, bucketMK, raftstore.ScanOptions{Prefix: []byte(mkStagedPfx), Limit: 1000, Mode: raftstore.Stale})
	if err != nil {
		return keys.KCV{}, nil, err
	}
	out := make(map[string][]keys.KCV)
	for _, kv := range kvs {
		rec := &vaultpb.MasterKeyStaged{}
		if err := decodeRecord(kv.Value, rec); err != nil {
			return keys.KCV{}, nil, err
		}
		node := string(kv.Key[len(mkStagedPfx):])
		for _, b := range rec.GetKcvs() {
			var k keys.KCV
			copy(k[:], b)
			if k != cur {
				out[node] = append(out[node], k)
			}
		}
	}
	return cur, out, nil
}

// checkMasterKeyRotation checks a rotation against the cluster. At
// proposal time only that the key is new; at execution also that every
// voting node has staged it (ErrMasterKeyNotStaged, a passing condition:
// the leader's sweep tries again) and that the keys fit one command.
func (n *Node) checkMasterKeyRotation(ctx context.Context, p ceremony.RotateMasterKey, execute bool) error {
	cur, err := n.currentMasterKCV(ctx)
	if err != nil {
		return err
	}
	if cur == p.MasterKCV {
		return fmt.Errorf("%w: master key %s is the current one", ErrAlreadyExists, cur)
	}
	if !execute {
		return nil
	}
	_, staged, err := n.MasterKeyStatus(ctx)
	if err != nil {
		return err
	}
	members, err := n.store.Members(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range members {
		if !m.Voter {
			continue
		}
		has := false
		for _, k := range staged[m.ID] {
			has = has || k == p.MasterKCV
		}
		if !has {
			missing = append(missing, m.ID)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: master key %s missing on %v", ErrMasterKeyNotStaged, p.MasterKCV, missing)
	}
	return nil
}

// prepareMasterKeyRotation rewraps every key version under the staged
// master key and returns the command that installs them.
func (n *Node) prepareMasterKeyRotation(ctx context.Context, p ceremony.RotateMasterKey, now time.Time) (*execution, error) {
	if err := n.checkMasterKeyRotation(ctx, p, true); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return lasting(err)
		}
		return nil, err
	}
	if err := n.requireCurrentMasterKey(ctx); err != nil {
		return nil, err
	}
	label := StagedMasterKeyLabel(p.MasterKCV)
	kvs, more, err := n.store.Scan(ctx, bucketKeys, raftstore.ScanOptions{Limit: maxMKRotationKeys, Mode: raftstore.Linearizable})
	if err != nil {
		return nil, err
	}
	if more {
		return lasting(fmt.Errorf("%w: more than %d keys for one master-key rotation", ErrUnsupported, maxMKRotationKeys))
	}
	x := &execution{}
	versions, size := 0, 0
	for _, kv := range kvs {
		rec, err := decodeKey(kv.Value)
		if err != nil {
			return nil, err
		}
		nrec := cloneKey(rec)
		for _, v := range nrec.GetVersions() {
			if len(v.GetWrapped()) == 0 {
				continue
			}
			nb, err := n.hsm.Rewrap(ctx, v.GetWrapped(), label)
			if err != nil {
				return nil, fmt.Errorf("rewrap %s/v%d: %w", rec.GetName(), v.GetVersion(), err)
			}
			v.Wrapped = nb
			versions++
		}
		nv, err := encodeRecord(nrec)
		if err != nil {
			return nil, err
		}
		if size += len(kv.Key) + len(kv.Value) + len(nv); size > maxMKRotationBytes {
			return lasting(fmt.Errorf("%w: the key records of %d keys exceed the %d KiB of one master-key rotation", ErrUnsupported, len(kvs), maxMKRotationBytes>>10))
		}
		x.ops = append(x.ops, raftstore.CompareAndSet(bucketKeys, kv.Key, kv.Value, nv))
	}
	mv, err := encodeRecord(&vaultpb.MasterKeyRecord{Kcv: append([]byte(nil), p.MasterKCV[:]...), Label: label, SinceUnixNanos: now.UnixNano()})
	if err != nil {
		return nil, err
	}
	x.ops = append(x.ops, raftstore.Put(bucketMK, []byte(mkCurrent), mv))
	x.outcome = fmt.Sprintf("master key replaced by %s: %d versions of %d keys rewrapped", p.MasterKCV, versions, len(kvs))
	return x, nil
}
