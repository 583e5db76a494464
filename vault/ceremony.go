package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/scheme"
)

// InitCustodians registers the cluster's first custodians with quorum m:
// the registry, the first log entry and the log head are written with
// put-if-absent, so it happens once per cluster. A repeat with the same
// custodians (names, keys, acknowledgements) and quorum returns the stored
// registry with created false; anything else fails with
// ErrCustodiansInitialised.
func (n *Node) InitCustodians(ctx context.Context, custodians []ceremony.Custodian, m int) (*ceremony.Registry, bool, error) {
	now := n.now()
	reg, err := ceremony.NewRegistry(custodians, m, now)
	if err != nil {
		return nil, false, err
	}
	e, err := ceremony.Initialise(reg, now)
	if err != nil {
		return nil, false, err
	}
	first, err := ceremony.Chain(nil, e)
	if err != nil {
		return nil, false, err
	}
	raw, err := first.Marshal()
	if err != nil {
		return nil, false, err
	}
	rv, err := reg.Marshal()
	if err != nil {
		return nil, false, err
	}
	res, err := n.store.Propose(ctx,
		raftstore.PutIfAbsent(bucketCeremonyMeta, []byte(metaRegistry), rv),
		raftstore.PutIfAbsent(bucketCeremonyMeta, []byte(metaHead), headValue(first)),
		raftstore.PutIfAbsent(bucketCeremonyLog, seqKey(1), raw))
	if err != nil {
		return nil, false, err
	}
	if res.Applied {
		n.log.Info("custodians initialised", "custodians", reg.N(), "quorum", reg.Quorum)
		return reg, true, nil
	}
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return nil, false, err
	}
	if sameCustodians(base.reg, reg) {
		return base.reg, false, nil
	}
	return nil, false, ErrCustodiansInitialised
}

// sameCustodians compares registries ignoring registration times.
func sameCustodians(a, b *ceremony.Registry) bool {
	if a.Quorum != b.Quorum || len(a.Custodians) != len(b.Custodians) {
		return false
	}
	for i := range a.Custodians {
		x, y := a.Custodians[i], b.Custodians[i]
		if x.Name != y.Name || !bytes.Equal(x.PublicKey, y.PublicKey) ||
			!x.Acknowledged.Equal(y.Acknowledged) || !bytes.Equal(x.AckSignature, y.AckSignature) {
			return false
		}
	}
	return true
}

// Custodians returns the registry (linearizable read).
func (n *Node) Custodians(ctx context.Context) (*ceremony.Registry, error) {
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return nil, err
	}
	return base.reg, nil
}

// custodiansInitialised reports whether a registry exists (local read
// after a read barrier).
func (n *Node) custodiansInitialised(ctx context.Context) (bool, error) {
	_, found, err := n.store.Get(ctx, bucketCeremonyMeta, []byte(metaRegistry), raftstore.Linearizable)
	return found, err
}

// proposerFor names the proposer of a ceremony asked for by identity: the
// registered custodian the identity names (the last path segment of a URI
// identity, or the whole identity, equals the custodian's name), so that
// the custodian cannot then approve their own proposal; otherwise the
// identity itself (or, when it is not a valid proposer string, a digest of
// it).
func proposerFor(identity string, reg *ceremony.Registry) string {
	last := identity
	if i := strings.LastIndexByte(identity, '/'); i >= 0 {
		last = identity[i+1:]
	}
	if _, ok := reg.Lookup(last); ok {
		return last
	}
	ok := identity != "" && len(identity) <= ceremony.MaxProposerLen
	for i := 0; ok && i < len(identity); i++ {
		ok = identity[i] > 0x20 && identity[i] < 0x7f
	}
	if ok {
		return identity
	}
	d := sha256.Sum256([]byte(identity))
	return "identity-sha256:" + hex.EncodeToString(d[:8])
}

// ProposeCeremony opens a ceremony with params, proposed by the caller with
// identity, open for approvals for ttl (0: ceremony.DefaultTTL). The vault
// checks the parameters against its keys and schemes first.
func (n *Node) ProposeCeremony(ctx context.Context, params ceremony.Params, identity string, ttl time.Duration) (ceremony.State, *ceremony.Registry, error) {
	if ttl == 0 {
		ttl = ceremony.DefaultTTL
	}
	if ttl < ceremony.MinTTL || ttl > ceremony.MaxTTL {
		return ceremony.State{}, nil, fieldError("ttl", scheme.RuleAllowed,
			fmt.Sprintf("must be from %s to %s", ceremony.MinTTL, ceremony.MaxTTL))
	}
	if params == nil {
		return ceremony.State{}, nil, fieldError("params", scheme.RuleRequired, "is required")
	}
	if err := params.Validate(); err != nil {
		return ceremony.State{}, nil, err
	}
	if err := n.checkProposal(ctx, params); err != nil {
		return ceremony.State{}, nil, err
	}
	var out ceremony.State
	var outReg *ceremony.Registry
	var p ceremony.Proposal
	err := n.ceremonyStep(ctx, func(base ceremonyBase) error {
		if p.Params == nil {
			var err error
			p, err = ceremony.NewProposal(params, proposerFor(identity, base.reg), n.now(), ttl, rand.Reader)
			if err != nil {
				return err
			}
		}
		st, e, err := ceremony.Propose(base.reg, p, n.now())
		if err != nil {
			return err
		}
		if _, err := n.commitCeremony(ctx, base, ceremonyWrite{entry: e, state: &st}); err != nil {
			return err
		}
		out, outReg = st, base.reg
		return nil
	})
	if err != nil {
		return ceremony.State{}, nil, err
	}
	n.log.Info("ceremony proposed", "ceremony", out.ID, "kind", p.Kind().String(), "proposer", p.Proposer,
		"transcript", out.Transcript.String())
	return out, outReg, nil
}

// Ceremony returns one ceremony's state and the registry it is counted
// against (linearizable).
func (n *Node) Ceremony(ctx context.Context, id string) (ceremony.State, *ceremony.Registry, error) {
	if err := checkCeremonyID(id); err != nil {
		return ceremony.State{}, nil, err
	}
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return ceremony.State{}, nil, err
	}
	st, err := n.readCeremonyState(ctx, id, raftstore.Stale) // after the read point above
	return st, base.reg, err
}

func checkCeremonyID(id string) error {
	if err := ceremony.CheckID(id); err != nil {
		return fieldError("id", scheme.RuleFormat, fmt.Sprintf("must be %d lower-case hex digits", ceremony.IDLen))
	}
	return nil
}

// Ceremonies returns every ceremony with status (0: any), newest first. The
// ceremonies bucket holds one small record per ceremony ever proposed;
// ceremonies are rare, so it is read whole.
func (n *Node) Ceremonies(ctx context.Context, status ceremony.Status) ([]ceremony.State, *ceremony.Registry, error) {
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return nil, nil, err
	}
	all, err := n.scanCeremonies(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := all[:0]
	for _, st := range all {
		if status == 0 || st.Status == status {
			out = append(out, st)
		}
	}
	return out, base.reg, nil
}

// scanCeremonies reads the local ceremonies bucket, newest first.
func (n *Node) scanCeremonies(ctx context.Context) ([]ceremony.State, error) {
	var out []ceremony.State
	var after []byte
	for {
		kvs, more, err := n.store.Scan(ctx, bucketCeremonies, raftstore.ScanOptions{After: after, Limit: 1000, Mode: raftstore.Stale})
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			st, err := ceremony.ParseState(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: ceremony %q: %w", ErrCorruptRecord, kv.Key, err)
			}
			out = append(out, st)
		}
		if !more || len(kvs) == 0 {
			break
		}
		after = kvs[len(kvs)-1].Key
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Proposal.Created, out[j].Proposal.Created
		if !a.Equal(b) {
			return a.After(b)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ApproveCeremony records approval a of ceremony id. When it completes the
// quorum the ceremony is carried out at once (executed true); if that fails
// for a passing reason (HSM unavailable, leader change) the approval stays
// recorded and the leader's sweep carries the ceremony out later.
func (n *Node) ApproveCeremony(ctx context.Context, id string, a ceremony.Approval) (ceremony.State, *ceremony.Registry, bool, error) {
	if err := checkCeremonyID(id); err != nil {
		return ceremony.State{}, nil, false, err
	}
	var out ceremony.State
	var reg *ceremony.Registry
	err := n.ceremonyStep(ctx, func(base ceremonyBase) error {
		st, err := n.readCeremonyState(ctx, id, raftstore.Stale)
		if err != nil {
			return err
		}
		now := n.now()
		st2, e, err := ceremony.Approve(base.reg, st, a, now)
		if err != nil {
			return err
		}
		if _, err := n.commitCeremony(ctx, base, ceremonyWrite{entry: e, state: &st2}); err != nil {
			return err
		}
		out, reg = st2, base.reg
		return nil
	})
	if err != nil {
		return ceremony.State{}, nil, false, err
	}
	last := out.Approvals[len(out.Approvals)-1]
	n.log.Info("ceremony approved", "ceremony", id, "custodian", last.Custodian, "key", last.Key.Short(),
		"approvals", out.ValidApprovals(reg), "quorum", reg.Quorum)
	if !out.Ready(reg) {
		return out, reg, false, nil
	}
	st, reg2, _, err := n.executeCeremony(ctx, id)
	if err != nil {
		if n.closed() || errors.Is(err, context.Canceled) {
			return out, reg, false, nil
		}
		n.log.Warn("ceremony approved but not carried out yet; the leader retries", "ceremony", id, "err", err)
		return out, reg, false, nil
	}
	// Executed by this call or, concurrently, by the leader's sweep.
	return st, reg2, st.Status == ceremony.StatusExecuted, nil
}

// RejectCeremony records rejection r of ceremony id.
func (n *Node) RejectCeremony(ctx context.Context, id string, r ceremony.Rejection) (ceremony.State, *ceremony.Registry, error) {
	if err := checkCeremonyID(id); err != nil {
		return ceremony.State{}, nil, err
	}
	var out ceremony.State
	var reg *ceremony.Registry
	err := n.ceremonyStep(ctx, func(base ceremonyBase) error {
		st, err := n.readCeremonyState(ctx, id, raftstore.Stale)
		if err != nil {
			return err
		}
		st2, e, err := ceremony.Reject(base.reg, st, r, n.now())
		if err != nil {
			return err
		}
		if _, err := n.commitCeremony(ctx, base, ceremonyWrite{entry: e, state: &st2}); err != nil {
			return err
		}
		out, reg = st2, base.reg
		return nil
	})
	if err != nil {
		return ceremony.State{}, nil, err
	}
	last := out.Rejections[len(out.Rejections)-1]
	n.log.Info("ceremony rejected", "ceremony", id, "custodian", last.Custodian, "status", out.Status.String())
	return out, reg, nil
}

// expireCeremony closes pending ceremony id as expired if it is past its
// expiry and not ready.
func (n *Node) expireCeremony(ctx context.Context, id string) error {
	return n.ceremonyStep(ctx, func(base ceremonyBase) error {
		st, err := n.readCeremonyState(ctx, id, raftstore.Stale)
		if err != nil {
			return err
		}
		if st.Status != ceremony.StatusPending {
			return nil
		}
		st2, e, err := ceremony.Expire(base.reg, st, n.now())
		if err != nil {
			return err
		}
		if _, err := n.commitCeremony(ctx, base, ceremonyWrite{entry: e, state: &st2}); err != nil {
			return err
		}
		n.log.Info("ceremony expired", "ceremony", id)
		return nil
	})
}

// CeremonyLog returns up to limit log entries after seq, and the head's
// sequence number.
func (n *Node) CeremonyLog(ctx context.Context, after uint64, limit int) ([]ceremony.LogEntry, [][]byte, uint64, error) {
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return nil, nil, 0, err
	}
	kvs, _, err := n.store.Scan(ctx, bucketCeremonyLog, raftstore.ScanOptions{After: seqKey(after), Limit: limit, Mode: raftstore.Stale})
	if err != nil {
		return nil, nil, 0, err
	}
	var out []ceremony.LogEntry
	var raws [][]byte
	for _, kv := range kvs {
		e, err := ceremony.ParseEntry(kv.Value)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%w: ceremony log: %w", ErrCorruptRecord, err)
		}
		out = append(out, e)
		raws = append(raws, kv.Value)
	}
	return out, raws, base.last.Seq, nil
}

// AuditCeremonies replays the whole ceremony log (hash chain, signatures,
// quorums) and checks that it proves the stored registry and head.
func (n *Node) AuditCeremonies(ctx context.Context) (ceremony.Replayed, error) {
	base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
	if err != nil {
		return ceremony.Replayed{}, err
	}
	var entries []ceremony.LogEntry
	var after uint64
	for {
		es, _, _, err := n.CeremonyLog(ctx, after, 1000)
		if err != nil {
			return ceremony.Replayed{}, err
		}
		for _, e := range es {
			if e.Seq > base.last.Seq {
				break
			}
			entries = append(entries, e)
		}
		if len(es) == 0 || es[len(es)-1].Seq >= base.last.Seq {
			break
		}
		after = es[len(es)-1].Seq
	}
	rep, err := ceremony.Replay(entries)
	if err != nil {
		return ceremony.Replayed{}, err
	}
	if rep.Seq != base.last.Seq || rep.Head != base.last.Hash {
		return ceremony.Replayed{}, fmt.Errorf("%w: replay ends at entry %d, head is %d", ceremony.ErrReplay, rep.Seq, base.last.Seq)
	}
	rv, err := rep.Registry.Marshal()
	if err != nil {
		return ceremony.Replayed{}, err
	}
	if !bytes.Equal(rv, base.regRaw) {
		return ceremony.Replayed{}, fmt.Errorf("%w: stored custodian registry differs from the one the log proves", ceremony.ErrReplay)
	}
	for id, st := range rep.States {
		stored, err := n.readCeremonyState(ctx, id, raftstore.Stale)
		if err != nil {
			return ceremony.Replayed{}, fmt.Errorf("%w: ceremony %s: %w", ceremony.ErrReplay, id, err)
		}
		a, _ := stored.Marshal()
		b, _ := st.Marshal()
		if !bytes.Equal(a, b) {
			return ceremony.Replayed{}, fmt.Errorf("%w: stored state of ceremony %s differs from the log", ceremony.ErrReplay, id)
		}
	}
	return rep, nil
}
