package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaultpb"
)

// checkProposal checks proposal parameters against what only the vault
// knows (keys, versions, schemes, jobs) before custodians are asked to
// approve. Execution checks again: things change while approvals gather.
func (n *Node) checkProposal(ctx context.Context, params ceremony.Params) error {
	switch p := params.(type) {
	case ceremony.CreateKey:
		if _, _, err := n.readKeyRecord(ctx, p.Name); err == nil {
			return fmt.Errorf("%w: key %q exists", ErrAlreadyExists, p.Name)
		} else if !errors.Is(err, ErrKeyNotFound) {
			return err
		}
	case ceremony.RotateKey:
		rec, raw, err := n.readKeyRecord(ctx, p.Name)
		if err != nil {
			return err
		}
		return checkRotationRoom(rec, len(raw))
	case ceremony.SetMinDecryptionVersion:
		rec, _, err := n.readKeyRecord(ctx, p.Name)
		if err != nil {
			return err
		}
		if err := checkMinDecryption(rec, p.Version); err != nil {
			return err
		}
		return n.checkReencrypted(ctx, rec, p.Version)
	case ceremony.DestroyVersion:
		rec, _, err := n.readKeyRecord(ctx, p.Name)
		if err != nil {
			return err
		}
		return n.checkDestroyable(ctx, rec, p.Version)
	case ceremony.ChangeSchemeKey:
		_, _, err := n.checkChangeSchemeKey(ctx, p)
		return err
	case ceremony.RotateMasterKey:
		return n.checkMasterKeyRotation(ctx, p, false)
	}
	return nil
}

// checkReencrypted refuses to retire versions below v of a PAN-encryption
// key while vaulted token records may still be sealed under them, and of a
// fingerprint key while records may still be indexed only under them: the
// key's job must have finished with a target of at least v, and a scan
// after a read barrier must find no record below v (a tokenization planned
// with a cached older version may have committed after the job passed).
func (n *Node) checkReencrypted(ctx context.Context, rec *vaultpb.KeyRecord, v uint32) error {
	if !jobPurpose(rec.GetPurpose()) {
		return nil
	}
	schemes, err := n.vaultedSchemesUsing(ctx, rec.GetName())
	if err != nil || len(schemes) == 0 {
		return err
	}
	job, _, found, err := n.readReencryptJob(ctx, rec.GetName(), raftstore.Stale)
	if err != nil {
		return err
	}
	if !found || !job.GetDone() || job.GetTargetVersion() < v {
		return fmt.Errorf("%w: key %q: re-encrypt its tokens to version %d or later first (panvault key reencrypt)",
			ErrReencryptPending, rec.GetName(), v)
	}
	return n.checkNoneBelow(ctx, rec, schemes, v)
}

// checkNoneBelow refuses (ErrReencryptPending) while a token record of
// schemes still needs rec's job at version v. The scan stops at the first
// such record; it reads after a read barrier so that every committed
// record is seen.
func (n *Node) checkNoneBelow(ctx context.Context, rec *vaultpb.KeyRecord, schemes []string, v uint32) error {
	if err := n.store.ReadBarrier(ctx); err != nil {
		return err
	}
	left, err := n.countBelow(ctx, rec.GetName(), schemes, v, 1)
	if err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%w: key %q: token records below version %d remain; run its re-encryption again (panvault key reencrypt)",
			ErrReencryptPending, rec.GetName(), v)
	}
	return nil
}

// checkDestroyable is checkDestroy plus, for keys whose records name a
// version, a scan that no token record still needs version v.
func (n *Node) checkDestroyable(ctx context.Context, rec *vaultpb.KeyRecord, v uint32) error {
	if err := checkDestroy(rec, v); err != nil || !jobPurpose(rec.GetPurpose()) {
		return err
	}
	schemes, err := n.vaultedSchemesUsing(ctx, rec.GetName())
	if err != nil || len(schemes) == 0 {
		return err
	}
	return n.checkNoneBelow(ctx, rec, schemes, v+1)
}

// execution is a ceremony's effect, prepared before the replicated write:
// the operations to commit with the log entry, the outcome to record, and
// what to do after a commit (or instead of one). fail, when set, is a
// lasting reason the ceremony cannot be carried out: it closes as failed.
type execution struct {
	ops     []raftstore.Op
	outcome string
	fail    string
	gen     *generated
	after   func()
}

func (x *execution) discard(n *Node) {
	if x.gen != nil {
		x.gen.discard(n)
	}
}

// executeCeremony carries out ceremony id if it is pending and has its
// quorum: the HSM work first, then one write of the results, the new state
// and the log entry (compare-and-set on the log head and on every record
// it changes). A concurrent step makes it start again; another node
// executing it first (seen at the commit, or as the cause of a failed
// preparation) makes it return that node's result.
func (n *Node) executeCeremony(ctx context.Context, id string) (ceremony.State, *ceremony.Registry, bool, error) {
	n.execMu.Lock()
	defer n.execMu.Unlock()
	for try := 0; try < maxCeremonyRetries; try++ {
		base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
		if err != nil {
			return ceremony.State{}, nil, false, err
		}
		st, err := n.readCeremonyState(ctx, id, raftstore.Stale)
		if err != nil {
			return ceremony.State{}, nil, false, err
		}
		if st.Status != ceremony.StatusPending || !st.Ready(base.reg) {
			return st, base.reg, false, nil
		}
		x, err := n.prepare(ctx, st)
		if err != nil {
			// Another node (the leader's sweep, another approver) may have
			// carried it out meanwhile, which can be why preparing failed
			// (the key version it generated is loaded here already): then
			// its result is the answer.
			if base2, err2 := n.readCeremonyBase(ctx, raftstore.Linearizable); err2 == nil {
				if st2, err2 := n.readCeremonyState(ctx, id, raftstore.Stale); err2 == nil && st2.Status != ceremony.StatusPending {
					return st2, base2.reg, false, nil
				}
			}
			return ceremony.State{}, nil, false, err // passing (HSM, store): retried later
		}
		now := n.now()
		var w ceremonyWrite
		var newReg *ceremony.Registry
		var st2 ceremony.State
		if x.fail == "" {
			var e ceremony.LogEntry
			st2, newReg, e, err = ceremony.Execute(base.reg, st, now, x.outcome)
			if err != nil {
				x.discard(n)
				x = &execution{fail: truncateOutcome("cannot be carried out: " + err.Error())}
			} else {
				w = ceremonyWrite{entry: e, state: &st2, extra: x.ops}
				if st.Proposal.Kind().ChangesRegistry() {
					w.registry = newReg
				}
			}
		}
		if x.fail != "" {
			var e ceremony.LogEntry
			st2, e, err = ceremony.Fail(base.reg, st, now, x.fail)
			if err != nil {
				return ceremony.State{}, nil, false, err
			}
			w = ceremonyWrite{entry: e, state: &st2}
			newReg = base.reg
		}
		if _, err := n.commitCeremony(ctx, base, w); err != nil {
			x.discard(n)
			if errors.Is(err, errStale) {
				continue
			}
			return ceremony.State{}, nil, false, err
		}
		if x.gen != nil {
			x.gen.commit(n)
		}
		if x.after != nil {
			x.after()
		}
		if x.fail != "" {
			n.log.Warn("ceremony failed", "ceremony", id, "kind", st.Proposal.Kind().String(), "reason", x.fail)
			return st2, newReg, false, nil
		}
		n.log.Info("ceremony executed", "ceremony", id, "kind", st.Proposal.Kind().String(), "outcome", x.outcome)
		return st2, newReg, true, nil
	}
	return ceremony.State{}, nil, false, fmt.Errorf("%w: ceremony %s", ErrConflict, id)
}

// truncateOutcome keeps an outcome within ceremony.MaxOutcomeLen and
// printable.
func truncateOutcome(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > ceremony.MaxOutcomeLen {
		b = b[:ceremony.MaxOutcomeLen]
	}
	return string(b)
}

// lasting returns an execution that fails the ceremony for err, when err is
// a lasting condition (the key's state no longer allows it); passing errors
// come back as errors.
func lasting(err error) (*execution, error) {
	for _, e := range []error{ErrKeyNotFound, ErrKeyState, ErrKeyVersionDestroyed, ErrAlreadyExists,
		ErrReencryptPending, ErrUnsupported, ErrWrongPurpose, keys.ErrNotWrappable, ceremony.ErrInvalid,
		ErrSchemeNotFound, ErrWrongMode} {
		if errors.Is(err, e) {
			return &execution{fail: truncateOutcome(err.Error())}, nil
		}
	}
	return nil, err
}

// prepare does the work of ceremony st before its write.
func (n *Node) prepare(ctx context.Context, st ceremony.State) (*execution, error) {
	now := n.now()
	switch p := st.Proposal.Params.(type) {
	case ceremony.CreateKey:
		return n.prepareCreateKey(ctx, p, now)
	case ceremony.RotateKey:
		return n.prepareRotateKey(ctx, p, now)
	case ceremony.SetMinDecryptionVersion:
		rec, raw, err := n.readKeyRecord(ctx, p.Name)
		if err == nil {
			err = checkMinDecryption(rec, p.Version)
		}
		if err == nil {
			err = n.checkReencrypted(ctx, rec, p.Version)
		}
		if err != nil {
			return lasting(err)
		}
		v, err := encodeRecord(minDecryptionRecord(rec, p.Version, now.UnixNano()))
		if err != nil {
			return nil, err
		}
		return &execution{
			ops:     []raftstore.Op{raftstore.CompareAndSet(bucketKeys, []byte(p.Name), raw, v)},
			outcome: fmt.Sprintf("key %s decrypts only from version %d; older versions retired", p.Name, p.Version),
		}, nil
	case ceremony.DestroyVersion:
		rec, raw, err := n.readKeyRecord(ctx, p.Name)
		if err == nil {
			err = n.checkDestroyable(ctx, rec, p.Version)
		}
		if err != nil {
			return lasting(err)
		}
		v, err := encodeRecord(destroyedRecord(rec, p.Version, now.UnixNano()))
		if err != nil {
			return nil, err
		}
		return &execution{
			ops:     []raftstore.Op{raftstore.CompareAndSet(bucketKeys, []byte(p.Name), raw, v)},
			outcome: fmt.Sprintf("key %s version %d destroyed", p.Name, p.Version),
		}, nil
	case ceremony.ChangeSchemeKey:
		return n.prepareChangeSchemeKey(ctx, p)
	case ceremony.AddCustodian:
		return &execution{outcome: fmt.Sprintf("custodian %s registered", p.Name)}, nil
	case ceremony.RemoveCustodian:
		return &execution{outcome: fmt.Sprintf("custodian %s removed", p.Name)}, nil
	case ceremony.ChangeQuorum:
		return &execution{outcome: fmt.Sprintf("quorum set to %d", p.M)}, nil
	case ceremony.RotateMasterKey:
		return n.prepareMasterKeyRotation(ctx, p, now)
	}
	return lasting(fmt.Errorf("%w: ceremony kind %s", ErrUnsupported, st.Proposal.Kind()))
}

func (n *Node) prepareCreateKey(ctx context.Context, p ceremony.CreateKey, now time.Time) (*execution, error) {
	if _, _, err := n.readKeyRecord(ctx, p.Name); err == nil {
		return lasting(fmt.Errorf("%w: key %q exists", ErrAlreadyExists, p.Name))
	} else if !errors.Is(err, ErrKeyNotFound) {
		return nil, err
	}
	g, err := n.generateVersion(ctx, p.Name, 1, p.Type)
	if err != nil {
		return lasting(err)
	}
	ns := now.UnixNano()
	rec := &vaultpb.KeyRecord{
		Name:    p.Name,
		KeyType: uint32(p.Type),
		Purpose: vaultpb.KeyPurpose(p.Purpose),
		Versions: []*vaultpb.KeyVersionRecord{{
			Version: 1, State: vaultpb.KeyState_KEY_STATE_ACTIVE, Wrapped: g.blob, CreateUnixNanos: ns, StateUnixNanos: ns,
			Kcv: checkValue(g.wk),
		}},
		LatestVersion:        1,
		MinDecryptionVersion: 1,
		CreateUnixNanos:      ns,
		CryptoperiodNanos:    int64(p.Cryptoperiod),
	}
	v, err := encodeRecord(rec)
	if err != nil {
		g.discard(n)
		return nil, err
	}
	return &execution{
		ops:     []raftstore.Op{raftstore.PutIfAbsent(bucketKeys, []byte(p.Name), v)},
		outcome: fmt.Sprintf("key %s version 1 created (%s, %s, master key %s)", p.Name, p.Type, p.Purpose, g.wk.MasterKCV),
		gen:     g,
	}, nil
}

func (n *Node) prepareRotateKey(ctx context.Context, p ceremony.RotateKey, now time.Time) (*execution, error) {
	rec, raw, err := n.readKeyRecord(ctx, p.Name)
	if err != nil {
		return lasting(err)
	}
	if err := checkRotationRoom(rec, len(raw)); err != nil {
		return lasting(err)
	}
	ver := rec.GetLatestVersion() + 1
	g, err := n.generateVersion(ctx, p.Name, ver, keys.KeyType(rec.GetKeyType()))
	if err != nil {
		return lasting(err)
	}
	v, err := encodeRecord(rotatedRecord(rec, ver, g.blob, checkValue(g.wk), now.UnixNano()))
	if err == nil && len(v) > raftstore.MaxValueSize {
		err = errNoRoom(rec, len(v))
	}
	if err != nil {
		g.discard(n)
		return lasting(err)
	}
	x := &execution{
		ops:     []raftstore.Op{raftstore.CompareAndSet(bucketKeys, []byte(p.Name), raw, v)},
		outcome: fmt.Sprintf("key %s rotated: version %d active, version %d decrypt-only", p.Name, ver, ver-1),
		gen:     g,
	}
	if jobPurpose(rec.GetPurpose()) {
		op, started, err := n.reencryptStartOp(ctx, p.Name, ver, now)
		if err != nil {
			g.discard(n)
			return nil, err
		}
		if started {
			x.ops = append(x.ops, op)
			if rec.GetPurpose() == vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT {
				x.outcome += "; re-indexing of stored tokens started"
			} else {
				x.outcome += "; re-encryption of stored tokens started"
			}
		}
	}
	return x, nil
}

// checkRotationRoom refuses a rotation of rec (stored in size bytes) whose
// new version would not fit in one replicated record: every live version's
// wrapped key is kept inline in the key record (raftstore.MaxValueSize,
// 16 KiB: about six RSA-3072 versions, dozens of AES or ECDSA ones). The
// new version is estimated at the size of the largest one there.
func checkRotationRoom(rec *vaultpb.KeyRecord, size int) error {
	largest := 0
	for _, v := range rec.GetVersions() {
		largest = max(largest, len(v.GetWrapped())+32) // blob plus the version's other fields
	}
	if size+largest > raftstore.MaxValueSize {
		return errNoRoom(rec, size+largest)
	}
	return nil
}

func errNoRoom(rec *vaultpb.KeyRecord, need int) error {
	return fmt.Errorf("%w: key %q: another version would need about %d bytes in its record, more than %d: retire and destroy old versions first",
		ErrKeyState, rec.GetName(), need, raftstore.MaxValueSize)
}
