package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Re-encryption of vaulted token records after a rotation of their
// PAN-encryption key. Tokens do not change: only the sealed PAN and the key
// version in each record. The job's progress lives in replicated state
// (bucket "reencrypt", one ReencryptJob per key), so whichever node is
// leader carries it on from the last committed cursor; a leader change
// loses at most one batch of work, which the next leader redoes (records it
// finds already at the target version are only counted).
//
// Each record is rewritten with compare-and-set from the exact bytes read:
// a record changed meanwhile is read again and retried; a deleted one is
// skipped, never resurrected. Any failure other than an undecodable record
// (HSM, session, deadline, a version not loaded yet, leadership) stops the
// batch, which is redone from the same cursor: no record is passed over.
// Progress is committed after the batch's records.
//
// A tokenization that resolved the old version just before the rotation
// committed may itself commit a little later, possibly behind the job's
// cursor. Two things keep such a record from being lost: before the job is
// marked done, a verification pass after a read barrier counts the records
// still below the target and, if any, scans every scheme again; and
// raising the minimum decryption version or destroying a version scans
// (after a read barrier, stopping at the first hit) for records that still
// need it, refusing with ErrReencryptPending (run the job again with
// StartReencrypt). The job also starts scanning only ReencryptGrace after
// it was created, so that such stragglers usually land before the scan.

const bucketReencrypt = "reencrypt" // key name -> ReencryptJob

// Defaults of the re-encryption job (see Config).
const (
	DefaultReencryptRate  = 2000 // records per second
	DefaultReencryptBatch = 256
	DefaultReencryptGrace = MaxRequestTimeout + 5*time.Second
	DefaultJobInterval    = time.Second
)

// jobPurpose reports whether keys of purpose p have a job after a
// rotation: PAN-encryption keys (records re-sealed) and fingerprint keys
// (records re-indexed, reindex.go).
func jobPurpose(p vaultpb.KeyPurpose) bool {
	return p == vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION || p == vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT
}

// readReencryptJob reads key's job and its stored bytes.
func (n *Node) readReencryptJob(ctx context.Context, key string, mode raftstore.ReadMode) (*vaultpb.ReencryptJob, []byte, bool, error) {
	v, found, err := n.store.Get(ctx, bucketReencrypt, []byte(key), mode)
	if err != nil || !found {
		return nil, nil, false, err
	}
	job := &vaultpb.ReencryptJob{}
	if err := decodeRecord(v, job); err != nil {
		return nil, nil, false, err
	}
	return job, v, true, nil
}

// reencryptStartOp returns the operation that starts a job re-encrypting
// key's token records to target, or started false when a job for that
// target is running already. A job for an older target is replaced (it
// starts over: records below the new target may be anywhere), and so is a
// finished job for the same target (run again after records below it were
// found, see checkNoneBelow).
func (n *Node) reencryptStartOp(ctx context.Context, key string, target uint32, now time.Time) (raftstore.Op, bool, error) {
	old, raw, found, err := n.readReencryptJob(ctx, key, raftstore.Linearizable)
	if err != nil {
		return raftstore.Op{}, false, err
	}
	if found && (old.GetTargetVersion() > target || (old.GetTargetVersion() == target && !old.GetDone())) {
		return raftstore.Op{}, false, nil
	}
	schemes, err := n.vaultedSchemesUsing(ctx, key)
	if err != nil {
		return raftstore.Op{}, false, err
	}
	job := &vaultpb.ReencryptJob{
		TargetVersion:   target,
		Schemes:         schemes,
		StartUnixNanos:  now.UnixNano(),
		UpdateUnixNanos: now.UnixNano(),
	}
	if len(schemes) == 0 {
		job.Done, job.TotalKnown, job.FinishUnixNanos = true, true, now.UnixNano()
	}
	v, err := encodeRecord(job)
	if err != nil {
		return raftstore.Op{}, false, err
	}
	if found {
		return raftstore.CompareAndSet(bucketReencrypt, []byte(key), raw, v), true, nil
	}
	return raftstore.PutIfAbsent(bucketReencrypt, []byte(key), v), true, nil
}

// StartReencrypt starts re-encrypting key's vaulted token records to its
// latest version (see the file comment). started is false when a job for
// that version exists already; the job is returned either way.
func (n *Node) StartReencrypt(ctx context.Context, key string) (*vaultpb.ReencryptJob, bool, error) {
	if err := checkName("key", key); err != nil {
		return nil, false, err
	}
	for try := 0; try < maxCeremonyRetries; try++ {
		rec, _, err := n.readKeyRecord(ctx, key)
		if err != nil {
			return nil, false, err
		}
		if !jobPurpose(rec.GetPurpose()) {
			return nil, false, fmt.Errorf("%w: key %q is for %s; only pan-encryption keys are re-encrypted and fingerprint keys re-indexed (ff1 tokens are migrated with Retokenize)",
				ErrWrongPurpose, key, purposeName(rec.GetPurpose()))
		}
		op, started, err := n.reencryptStartOp(ctx, key, rec.GetLatestVersion(), n.now())
		if err != nil {
			return nil, false, err
		}
		if started {
			res, err := n.store.Propose(ctx, op)
			if err != nil {
				return nil, false, err
			}
			if !res.Applied {
				continue
			}
			n.log.Info("re-encryption started", "key", key, "target_version", rec.GetLatestVersion())
			n.reenc.poke()
		}
		job, _, _, err := n.readReencryptJob(ctx, key, raftstore.Linearizable)
		if err != nil {
			return nil, false, err
		}
		return job, started, nil
	}
	return nil, false, fmt.Errorf("%w: re-encryption job of key %q", ErrConflict, key)
}

// ReencryptStatus returns key's job (linearizable). A key without one is
// ErrKeyNotFound when the key does not exist, else a job reported as done
// at the key's latest version with nothing to do.
func (n *Node) ReencryptStatus(ctx context.Context, key string) (*vaultpb.ReencryptJob, error) {
	if err := checkName("key", key); err != nil {
		return nil, err
	}
	job, _, found, err := n.readReencryptJob(ctx, key, raftstore.Linearizable)
	if err != nil {
		return nil, err
	}
	if found {
		return job, nil
	}
	rec, _, err := n.readKeyRecord(ctx, key)
	if err != nil {
		return nil, err
	}
	return &vaultpb.ReencryptJob{TargetVersion: rec.GetLatestVersion(), Done: true, TotalKnown: true}, nil
}

// reencryptor runs the jobs on the leader. Safe for concurrent use (poke).
type reencryptor struct {
	n    *Node
	wake chan struct{}
}

func newReencryptor(n *Node) *reencryptor {
	return &reencryptor{n: n, wake: make(chan struct{}, 1)}
}

// poke makes the loop look for work now.
func (r *reencryptor) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run looks for running jobs every job interval (or when poked) and, while
// this node is leader, works through them.
func (r *reencryptor) run() {
	defer r.n.wg.Done()
	t := time.NewTicker(r.n.cfg.JobInterval)
	defer t.Stop()
	for {
		select {
		case <-r.n.ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
		if !r.n.store.IsLeader() {
			continue
		}
		if err := r.pass(); err != nil && !r.n.closed() && !errors.Is(err, raftstore.ErrNotLeader) {
			r.n.log.Warn("re-encryption paused", "err", err)
		}
	}
}

// pass works through every running job until it is done, this node stops
// being leader, or a job must wait for its grace period.
func (r *reencryptor) pass() error {
	ctx := r.n.ctx
	var jobs []string
	err := r.n.scanAll(ctx, bucketReencrypt, nil, raftstore.Stale, func(kvs []raftstore.KV) bool {
		for _, kv := range kvs {
			jobs = append(jobs, string(kv.Key))
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, key := range jobs {
		for r.n.store.IsLeader() && !r.n.closed() {
			job, raw, found, err := r.n.readReencryptJob(ctx, key, raftstore.Stale)
			if err != nil {
				return err
			}
			if !found || job.GetDone() {
				break
			}
			if r.n.now().Before(time.Unix(0, job.GetStartUnixNanos()).Add(r.n.cfg.ReencryptGrace)) {
				break // in-flight writes of the old version may still commit
			}
			start := time.Now()
			visited, err := r.batch(ctx, key, job, raw)
			if err != nil {
				return fmt.Errorf("key %s: %w", key, err)
			}
			r.throttle(start, visited)
		}
	}
	return nil
}

// throttle sleeps so that the job stays under ReencryptRate records/s.
func (r *reencryptor) throttle(start time.Time, visited int) {
	if visited == 0 || r.n.cfg.ReencryptRate <= 0 {
		return
	}
	want := time.Duration(visited) * time.Second / time.Duration(r.n.cfg.ReencryptRate)
	if d := want - time.Since(start); d > 0 {
		select {
		case <-time.After(d):
		case <-r.n.ctx.Done():
		}
	}
}

// batch does one step of key's job: counts the total first, then
// re-encrypts up to ReencryptBatch records after the cursor and commits the
// progress. It returns how many records it visited.
func (r *reencryptor) batch(ctx context.Context, key string, job *vaultpb.ReencryptJob, raw []byte) (int, error) {
	n := r.n
	next := proto.Clone(job).(*vaultpb.ReencryptJob)
	visited := 0
	switch {
	case !job.GetTotalKnown():
		total, err := n.countTokens(ctx, job.GetSchemes())
		if err != nil {
			return 0, err
		}
		next.Total, next.TotalKnown = total, true
	case len(job.GetSchemes()) == 0:
		if err := r.finish(ctx, key, job.GetTargetVersion(), next); err != nil {
			return 0, err
		}
	default:
		sc := job.GetSchemes()[0]
		prefix := tokenKey(sc, "")
		after := job.GetCursor()
		if len(after) == 0 {
			after = prefix
		}
		kvs, more, err := n.store.Scan(ctx, bucketTokens, raftstore.ScanOptions{
			Prefix: prefix, After: after, Limit: n.cfg.ReencryptBatch, Mode: raftstore.Stale})
		if err != nil {
			return 0, err
		}
		re, skipped, err := r.rewrite(ctx, key, sc, job.GetTargetVersion(), kvs)
		if err != nil {
			return 0, err
		}
		visited = len(kvs)
		next.Visited += uint64(visited)
		next.Reencrypted += uint64(re)
		next.Skipped += uint64(skipped)
		n.metrics.reencrypted(key, re)
		if more && len(kvs) > 0 {
			next.Cursor = append([]byte(nil), kvs[len(kvs)-1].Key...)
		} else {
			next.Schemes, next.Cursor = next.Schemes[1:], nil
			if len(next.Schemes) == 0 {
				if err := r.finish(ctx, key, job.GetTargetVersion(), next); err != nil {
					return visited, err
				}
			}
		}
	}
	now := n.now().UnixNano()
	next.UpdateUnixNanos = now
	if next.Done {
		next.FinishUnixNanos = now
	}
	v, err := encodeRecord(next)
	if err != nil {
		return 0, err
	}
	res, err := n.store.Propose(ctx, raftstore.CompareAndSet(bucketReencrypt, []byte(key), raw, v))
	if err != nil {
		return visited, err
	}
	if res.Applied && next.Done {
		n.log.Info("re-encryption done", "key", key, "target_version", next.GetTargetVersion(),
			"visited", next.GetVisited(), "reencrypted", next.GetReencrypted(), "skipped", next.GetSkipped())
	}
	// Not applied: the job was replaced (a newer rotation); the loop
	// re-reads it.
	return visited, nil
}

// finish is the last step of a job: after a read barrier it counts the
// records still below the target in every scheme of the key (a
// tokenization planned with a cached older version may have committed
// behind the cursor, and a record may have failed to be rewritten). None:
// next is done. Some: next scans every scheme again.
func (r *reencryptor) finish(ctx context.Context, key string, target uint32, next *vaultpb.ReencryptJob) error {
	n := r.n
	if err := n.store.ReadBarrier(ctx); err != nil {
		return err
	}
	schemes, err := n.vaultedSchemesUsing(ctx, key)
	if err != nil {
		return err
	}
	left, err := n.countBelow(ctx, key, schemes, target, 0)
	if err != nil {
		return err
	}
	if left == 0 {
		next.Done = true
		return nil
	}
	n.log.Warn("re-encryption: records still below the target version; scanning again",
		"key", key, "target_version", target, "records", left)
	next.Schemes, next.Cursor = schemes, nil
	return nil
}

// countBelow counts the token records of schemes that still need key's job
// at target (belowTarget), reading local state; limit > 0 stops counting
// there. Callers put a read barrier before it when they need every
// committed record.
func (n *Node) countBelow(ctx context.Context, key string, schemes []string, target uint32, limit uint64) (uint64, error) {
	krec, err := n.keyring.record(ctx, key, false)
	if err != nil {
		return 0, err
	}
	var count uint64
	err = n.scanSchemeTokens(ctx, schemes, func(srec *vaultpb.SchemeRecord, kvs []raftstore.KV) bool {
		for _, kv := range kvs {
			rec, err := decodeToken(kv.Value)
			if err != nil {
				continue // logged by the job; nothing a key version can lose
			}
			if belowTarget(krec.GetPurpose(), srec, key, rec, target) {
				count++
				if limit > 0 && count >= limit {
					return false
				}
			}
		}
		return true
	})
	return count, err
}

// countTokens counts the token records of schemes (local state).
func (n *Node) countTokens(ctx context.Context, schemes []string) (uint64, error) {
	var total uint64
	err := n.scanSchemeTokens(ctx, schemes, func(_ *vaultpb.SchemeRecord, kvs []raftstore.KV) bool {
		total += uint64(len(kvs))
		return true
	})
	return total, err
}

// scanSchemeTokens hands the token records of each scheme of schemes to fn
// a page at a time (local state), with the scheme's record, until fn
// returns false.
func (n *Node) scanSchemeTokens(ctx context.Context, schemes []string, fn func(*vaultpb.SchemeRecord, []raftstore.KV) bool) error {
	for _, sc := range schemes {
		srec, _, err := n.readSchemeRecord(ctx, sc, raftstore.Stale)
		if err != nil {
			return err
		}
		stop := false
		err = n.scanAll(ctx, bucketTokens, tokenKey(sc, ""), raftstore.Stale, func(kvs []raftstore.KV) bool {
			stop = !fn(srec, kvs)
			return !stop
		})
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// rewrite brings the records of kvs (scheme sc) that are below target up
// to it: re-sealed under target for a PAN-encryption key, re-indexed under
// target for a fingerprint key (reindex.go). Each record is one
// compare-and-set command; a record whose compare-and-set fails is read
// again and retried, unless it was deleted or is at target already. It
// returns how many records were rewritten and how many skipped (deleted or
// changed to target meanwhile, or not decodable). Any other failure
// (HSM, session, deadline, a key version not loaded yet, leadership) is
// returned: the batch is redone from the same cursor later, so no record
// is passed over.
func (r *reencryptor) rewrite(ctx context.Context, key, sc string, target uint32, kvs []raftstore.KV) (int, int, error) {
	n := r.n
	krec, err := n.keyring.record(ctx, key, false)
	if err != nil {
		return 0, 0, err
	}
	purpose := krec.GetPurpose()
	srec, _, err := n.readSchemeRecord(ctx, sc, raftstore.Stale)
	if err != nil {
		return 0, 0, err
	}
	var build func(item raftstore.KV, rec *vaultpb.TokenRecord) ([]raftstore.Op, error)
	switch purpose {
	case vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION:
		// Records go to target of key while the scheme uses key, else to
		// the latest version of the scheme's key now (schemekey.go).
		toKey, toVersion := key, target
		if srec.GetKey() != key {
			toKey, toVersion = srec.GetKey(), 0
		}
		kv, err := n.keyring.resolve(ctx, toKey, toVersion, purpose, useEncrypt)
		if err != nil {
			return 0, 0, err
		}
		build = func(item raftstore.KV, rec *vaultpb.TokenRecord) ([]raftstore.Op, error) {
			return r.resealOps(ctx, srec, toKey, item, rec, kv.ref)
		}
	case vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT:
		ix, err := r.newReindexer(ctx, key, sc, target)
		if err != nil {
			return 0, 0, err
		}
		build = ix.ops
	default:
		return 0, 0, fmt.Errorf("%w: key %q is for %s", ErrWrongPurpose, key, purposeName(purpose))
	}
	done, skipped := 0, 0
	work := kvs
	for try := 0; len(work) > 0; try++ {
		if try == maxCeremonyRetries {
			return 0, 0, fmt.Errorf("%w: records of scheme %s keep changing", ErrConflict, sc)
		}
		var cmds [][]raftstore.Op
		var keysOf [][]byte
		for _, item := range work {
			rec, err := decodeToken(item.Value)
			if err != nil {
				n.log.Error("re-encryption: token record does not decode", "scheme", sc, "err", err)
				skipped++
				continue
			}
			if !belowTarget(purpose, srec, key, rec, target) {
				continue
			}
			ops, err := build(item, rec)
			if err != nil {
				return 0, 0, fmt.Errorf("token %s: %w", maskToken(string(item.Key[len(sc)+1:])), err)
			}
			cmds = append(cmds, ops)
			keysOf = append(keysOf, item.Key)
		}
		if len(cmds) == 0 {
			break
		}
		results, errs := n.store.ProposeBatch(ctx, cmds)
		var changed [][]byte
		for i := range cmds {
			if errs[i] != nil {
				return 0, 0, errs[i] // the batch is redone from the same cursor
			}
			if results[i].Applied {
				done++
			} else {
				changed = append(changed, keysOf[i])
			}
		}
		if len(changed) == 0 {
			break
		}
		// Read the changed records again (after our own commands: local
		// state on the leader, behind a barrier) and retry those still
		// below target; deleted ones are skipped, never resurrected.
		if err := n.store.ReadBarrier(ctx); err != nil {
			return 0, 0, err
		}
		got, err := n.store.GetMany(ctx, bucketTokens, changed, raftstore.Stale)
		if err != nil {
			return 0, 0, err
		}
		work = work[:0:0]
		for i, g := range got {
			if !g.Found {
				skipped++
				continue
			}
			work = append(work, raftstore.KV{Key: changed[i], Value: g.Value})
		}
	}
	return done, skipped, nil
}

// belowTarget reports whether a token record of scheme s still needs the
// job of key, of purpose: sealed under key at a version below target, or
// under key while s uses another key now (PAN encryption); indexed under a
// fingerprint version below target (fingerprint).
func belowTarget(purpose vaultpb.KeyPurpose, s *vaultpb.SchemeRecord, key string, rec *vaultpb.TokenRecord, target uint32) bool {
	if purpose == vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT {
		fp := rec.GetFingerprint()
		return len(fp) > 0 && fingerprintVersion(s.GetName(), fp) < target
	}
	return recordKey(s, rec) == key && (s.GetKey() != key || rec.GetKeyVersion() < target)
}

// resealOps returns the command that re-seals one record of scheme s under
// to, a version of toKey.
func (r *reencryptor) resealOps(ctx context.Context, s *vaultpb.SchemeRecord, toKey string, item raftstore.KV, rec *vaultpb.TokenRecord, to keys.KeyRef) ([]raftstore.Op, error) {
	sc := s.GetName()
	token := string(item.Key[len(sc)+1:])
	sealed, err := r.reseal(ctx, s, token, rec, to)
	if err != nil {
		return nil, err
	}
	nrec := proto.Clone(rec).(*vaultpb.TokenRecord)
	nrec.Key, nrec.KeyVersion, nrec.Sealed = recordKeyField(s, toKey), to.Version, sealed
	v, err := encodeRecord(nrec)
	if err != nil {
		return nil, err
	}
	return []raftstore.Op{raftstore.CompareAndSet(bucketTokens, item.Key, item.Value, v)}, nil
}

// reseal opens rec's sealed PAN (openSealed) and seals it under to.
func (r *reencryptor) reseal(ctx context.Context, s *vaultpb.SchemeRecord, token string, rec *vaultpb.TokenRecord, to keys.KeyRef) ([]byte, error) {
	digits, err := r.n.openSealed(ctx, s, token, rec)
	if err != nil {
		return nil, err
	}
	defer clear(digits)
	return r.n.hsm.Seal(ctx, to, digits, panAAD(s.GetName(), token, to.Version))
}
