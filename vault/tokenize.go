package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// maxDraws bounds how many rounds a vaulted tokenization redraws a token
// that collided with an existing one (or re-resolves a concurrent change of
// the fingerprint index) before giving up with ErrTokenSpace.
const maxDraws = 8

// methodTokenize scopes Tokenize (and TokenizeBatch item) request ids.
const methodTokenize = "tokenize"

// tokItem is one PAN of a tokenization, single or batch.
type tokItem struct {
	pan  card.PAN
	idem []byte // idempotency record key; nil without a request id
	// The stored idempotency record when its token expired (or was
	// deleted): the new record replaces it with compare-and-set.
	expectIdem []byte

	// Deterministic schemes, filled as the item progresses.
	fp       []byte // key in bucketFP
	expectFP []byte // token the index points to (a dead one), for CompareAndSet; nil: absent
	deadTok  []byte // stored record of expectFP when it is expired, removed with the swap
}

// tokResult is the outcome of one item.
type tokResult struct {
	resp *pb.TokenizeResponse
	err  error
}

// response builds the reply for pan's token.
func tokenResponse(e *schemeEntry, pan card.PAN, token string, keyVersion uint32, created bool, expireUnixNanos int64) *pb.TokenizeResponse {
	return &pb.TokenizeResponse{
		Token:      token,
		Scheme:     e.name(),
		KeyVersion: keyVersion,
		MaskedPan:  pan.Masked(),
		Brand:      brandToAPI(pan.Brand()),
		Created:    created,
		ExpireTime: timestampOrNil(expireUnixNanos),
	}
}

// tokenize tokenizes items under e for identity (the idempotency scope) and
// returns one result per item, in order. Item failures are in the results;
// nothing fails the whole call.
func (n *Node) tokenize(ctx context.Context, e *schemeEntry, items []*tokItem) []tokResult {
	if e.s.Mode() == scheme.ModeFF1 {
		return n.tokenizeFF1(ctx, e, items)
	}
	return n.tokenizeVaulted(ctx, e, items)
}

// tokenizeVaulted is the vaulted flow of docs/vault-design.md for a batch:
// idempotency lookups, fingerprint lookups (deterministic schemes), then
// rounds of draw + seal + one ProposeBatch until every item is decided.
func (n *Node) tokenizeVaulted(ctx context.Context, e *schemeEntry, items []*tokItem) []tokResult {
	res := make([]tokResult, len(items))
	pending := make([]int, 0, len(items))
	for i := range items {
		pending = append(pending, i)
	}
	fail := func(idx []int, err error) {
		for _, i := range idx {
			res[i].err = err
		}
	}

	pending = n.lookupIdem(ctx, e, items, res, pending)
	if len(pending) == 0 {
		return res
	}
	kv, err := n.keyring.resolve(ctx, e.rec.GetKey(), 0, vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION, useEncrypt)
	if err != nil {
		fail(pending, err)
		return res
	}
	if e.rec.GetDeterministic() {
		pending = n.lookupFingerprints(ctx, e, items, res, pending)
	}

	ttl := time.Duration(e.rec.GetTtlNanos())
	for round := 0; round < maxDraws && len(pending) > 0; round++ {
		cmds := make([][]raftstore.Op, 0, len(pending))
		plans := make([]tokPlan, 0, len(pending))
		var drawn []int
		for _, i := range pending {
			it := items[i]
			plan, err := n.planToken(ctx, e, kv.ref, it, ttl)
			if err != nil {
				res[i].err = err
				continue
			}
			plan.cmdOps(e, it)
			cmds = append(cmds, plan.ops)
			plans = append(plans, plan)
			drawn = append(drawn, i)
		}
		if len(cmds) == 0 {
			return res
		}
		results, errs := n.store.ProposeBatch(ctx, cmds)
		var again []int
		for j, i := range drawn {
			if errs[j] != nil {
				res[i].err = errs[j]
				continue
			}
			retry := n.settleToken(ctx, e, items[i], plans[j], results[j], &res[i])
			if retry {
				again = append(again, i)
			}
		}
		pending = again
	}
	fail(pending, ErrTokenSpace)
	return res
}

// tokPlan is one drawn token and the command that stores it.
type tokPlan struct {
	token   string
	version uint32
	rec     []byte // encoded TokenRecord
	idem    []byte // encoded IdemRecord, when the item has a request id
	expire  int64
	ops     []raftstore.Op
	opTok   int // index of each op in ops, or -1
	opFP    int
	opDead  int // the compare-and-set of the dead record; opDead+1 deletes it
	opIdem  int
}

// planToken draws a token for it and seals its PAN. Everything random,
// secret or clock-dependent happens here, before the proposal.
func (n *Node) planToken(ctx context.Context, e *schemeEntry, ref keys.KeyRef, it *tokItem, ttl time.Duration) (tokPlan, error) {
	version := ref.Version
	tok, err := e.s.NewRandomToken(it.pan, nil)
	if err != nil {
		return tokPlan{}, err
	}
	digits := it.pan.AppendDigits(make([]byte, 0, card.MaxLength))
	sealed, err := n.hsm.Seal(ctx, ref, digits, panAAD(e.name(), tok, version))
	clear(digits)
	if err != nil {
		return tokPlan{}, fmt.Errorf("seal: %w", err)
	}
	now := n.now()
	rec := &vaultpb.TokenRecord{
		Key:             recordKeyField(e.rec, e.rec.GetKey()),
		KeyVersion:      version,
		Sealed:          sealed,
		CreateUnixNanos: now.UnixNano(),
		Fingerprint:     it.fp,
		IdemKey:         it.idem,
	}
	if ttl > 0 {
		rec.ExpireUnixNanos = now.Add(ttl).UnixNano()
	}
	v, err := encodeRecord(rec)
	if err != nil {
		return tokPlan{}, err
	}
	p := tokPlan{token: tok, version: version, rec: v, expire: rec.ExpireUnixNanos}
	if it.idem != nil {
		p.idem, err = encodeRecord(&vaultpb.IdemRecord{
			CreateUnixNanos: now.UnixNano(),
			Reply: &vaultpb.IdemRecord_Tokenize{Tokenize: &vaultpb.TokenizeReply{
				Token: tok, KeyVersion: version, Created: true, ExpireUnixNanos: rec.ExpireUnixNanos,
			}},
		})
		if err != nil {
			return tokPlan{}, err
		}
	}
	return p, nil
}

// cmdOps builds the atomic command of a plan: put-if-absent of the token
// record; for deterministic schemes the index entry (put-if-absent, or a
// compare-and-set away from a dead token, whose expired record goes with
// it); and put-if-absent of the idempotency record.
func (p *tokPlan) cmdOps(e *schemeEntry, it *tokItem) {
	p.opTok, p.opFP, p.opDead, p.opIdem = -1, -1, -1, -1
	p.ops = append(p.ops[:0], raftstore.PutIfAbsent(bucketTokens, tokenKey(e.name(), p.token), p.rec))
	p.opTok = 0
	if it.fp != nil {
		p.opFP = len(p.ops)
		if it.expectFP == nil {
			p.ops = append(p.ops, raftstore.PutIfAbsent(bucketFP, it.fp, []byte(p.token)))
		} else {
			p.ops = append(p.ops, raftstore.CompareAndSet(bucketFP, it.fp, it.expectFP, []byte(p.token)))
			if it.deadTok != nil {
				dead := tokenKey(e.name(), string(it.expectFP))
				p.opDead = len(p.ops)
				p.ops = append(p.ops,
					raftstore.CompareAndSet(bucketTokens, dead, it.deadTok, it.deadTok),
					raftstore.Delete(bucketTokens, dead))
			}
		}
	}
	if it.idem != nil {
		p.opIdem = len(p.ops)
		if it.expectIdem != nil {
			p.ops = append(p.ops, raftstore.CompareAndSet(bucketIdem, it.idem, it.expectIdem, p.idem))
		} else {
			p.ops = append(p.ops, raftstore.PutIfAbsent(bucketIdem, it.idem, p.idem))
		}
	}
}

// settleToken interprets the outcome of one item's command. It fills r, or
// returns true when the item must go another round.
func (n *Node) settleToken(ctx context.Context, e *schemeEntry, it *tokItem, p tokPlan, out raftstore.Result, r *tokResult) bool {
	if out.Applied {
		r.resp = tokenResponse(e, it.pan, p.token, p.version, true, p.expire)
		return false
	}
	existing, _ := out.Existing()
	f := out.FailedOp
	switch {
	case f == p.opTok:
		return true // token collision: draw again
	case f == p.opIdem:
		if existing == nil { // the record we expected was removed since
			it.expectIdem = nil
			return true
		}
		resp, ok, err := n.resolveIdem(ctx, e, it, existing)
		if err != nil || ok {
			r.resp, r.err = resp, err
			return false
		}
		it.expectIdem = existing // its token is gone or expired: replace it
		return true
	case f == p.opFP:
		// Another request indexed this PAN first (or the dead entry we saw
		// changed). Use its token if it is live.
		if existing == nil {
			it.expectFP, it.deadTok = nil, nil
			return true
		}
		return n.adoptIndexed(ctx, e, it, existing, r)
	case p.opDead >= 0 && (f == p.opDead || f == p.opDead+1):
		it.deadTok = nil // the dead record changed or vanished; just swap the index
		return true
	}
	r.err = fmt.Errorf("%w: unexpected failed op %d", ErrCorruptRecord, f)
	return false
}

// adoptIndexed answers it with the token the fingerprint index holds, if
// that token is live; otherwise it prepares a swap of the index entry and
// asks for another round.
func (n *Node) adoptIndexed(ctx context.Context, e *schemeEntry, it *tokItem, token []byte, r *tokResult) bool {
	v, found, err := n.store.Get(ctx, bucketTokens, tokenKey(e.name(), string(token)), raftstore.Linearizable)
	if err != nil {
		r.err = err
		return false
	}
	return n.decideIndexed(e, it, token, v, found, r)
}

// decideIndexed is adoptIndexed once the token record is read.
func (n *Node) decideIndexed(e *schemeEntry, it *tokItem, token, v []byte, found bool, r *tokResult) bool {
	it.expectFP, it.deadTok = append([]byte(nil), token...), nil
	if !found {
		return true
	}
	rec, err := decodeToken(v)
	if err != nil {
		r.err = err
		return false
	}
	if n.expired(rec) {
		it.deadTok = v
		return true
	}
	r.resp = tokenResponse(e, it.pan, string(token), rec.GetKeyVersion(), false, rec.GetExpireUnixNanos())
	return false
}

// expired reports whether a token record's TTL has passed.
func (n *Node) expired(rec *vaultpb.TokenRecord) bool {
	exp := rec.GetExpireUnixNanos()
	return exp != 0 && n.now().UnixNano() >= exp
}

// lookupIdem answers items whose request id is already recorded and returns
// the indexes still pending.
func (n *Node) lookupIdem(ctx context.Context, e *schemeEntry, items []*tokItem, res []tokResult, pending []int) []int {
	var idx []int
	var ks [][]byte
	for _, i := range pending {
		if items[i].idem != nil {
			idx = append(idx, i)
			ks = append(ks, items[i].idem)
		}
	}
	if len(ks) == 0 {
		return pending
	}
	// A local read: a miss is settled by the put-if-absent in the command.
	got, err := n.store.GetMany(ctx, bucketIdem, ks, raftstore.Stale)
	if err != nil {
		for _, i := range idx {
			res[i].err = err
		}
		return without(pending, idx)
	}
	var done []int
	for j, i := range idx {
		if !got[j].Found {
			continue
		}
		resp, ok, err := n.resolveIdem(ctx, e, items[i], got[j].Value)
		if !ok && err == nil {
			// Its token was deleted or expired: proceed as a new request
			// that replaces the record.
			items[i].expectIdem = got[j].Value
			continue
		}
		res[i].resp, res[i].err = resp, err
		done = append(done, i)
	}
	return without(pending, done)
}

// resolveIdem answers a tokenization whose request id is recorded: with the
// recorded reply if the recorded token's PAN is the item's PAN, else
// ErrAlreadyExists. ok is false when the recorded token no longer exists
// (DeleteToken removes it together with its idempotency record, after our
// read of the latter) or has expired: the item then proceeds as a new
// request that replaces the record (tokItem.expectIdem).
func (n *Node) resolveIdem(ctx context.Context, e *schemeEntry, it *tokItem, v []byte) (*pb.TokenizeResponse, bool, error) {
	rec, err := decodeIdem(v)
	if err != nil {
		return nil, true, err
	}
	reply := rec.GetTokenize()
	if reply == nil {
		return nil, true, fmt.Errorf("%w: request_id already used by another method", ErrAlreadyExists)
	}
	tv, found, err := n.store.Get(ctx, bucketTokens, tokenKey(e.name(), reply.GetToken()), raftstore.Linearizable)
	if err != nil {
		return nil, true, err
	}
	if !found {
		return nil, false, nil
	}
	trec, err := decodeToken(tv)
	if err != nil {
		return nil, true, err
	}
	if n.expired(trec) {
		return nil, false, nil
	}
	pan, err := n.openPAN(ctx, e, reply.GetToken(), trec)
	if err != nil {
		return nil, true, err
	}
	same := pan.Equal(it.pan)
	pan.Wipe()
	if !same {
		return nil, true, fmt.Errorf("%w: request_id was already used for a different pan", ErrAlreadyExists)
	}
	return tokenResponse(e, it.pan, reply.GetToken(), reply.GetKeyVersion(), reply.GetCreated(), reply.GetExpireUnixNanos()), true, nil
}

// lookupFingerprints computes the fingerprint of every pending item and
// answers those whose PAN already has a live token. Items whose index entry
// points to a dead token are prepared for a swap.
//
// An answer from the index needs no command, so the put-if-absent of its
// request id never runs: the request ids of every item it answered are read
// again (behind the read barrier the lookups took), so that a request id
// reused for another PAN is refused on a lagging follower as on the leader,
// whichever fingerprint version answered.
func (n *Node) lookupFingerprints(ctx context.Context, e *schemeEntry, items []*tokItem, res []tokResult, pending []int) []int {
	left := n.lookupIndexed(ctx, e, items, res, pending)
	var answered []int
	for _, i := range without(pending, left) {
		if res[i].err == nil && items[i].idem != nil {
			answered = append(answered, i)
		}
	}
	if len(answered) > 0 {
		n.lookupIdem(ctx, e, items, res, answered)
	}
	return left
}

// lookupIndexed is lookupFingerprints without the request-id recheck.
func (n *Node) lookupIndexed(ctx context.Context, e *schemeEntry, items []*tokItem, res []tokResult, pending []int) []int {
	fk, err := n.keyring.resolve(ctx, e.rec.GetFingerprintKey(), 0, vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT, useEncrypt)
	if err != nil {
		for _, i := range pending {
			res[i].err = err
		}
		return nil
	}
	var ok []int
	var ks [][]byte
	var scratch []byte
	for _, i := range pending {
		fp, err := n.fingerprint(ctx, fk.ref, e.name(), items[i].pan, &scratch)
		if err != nil {
			res[i].err = err
			continue
		}
		items[i].fp = fp
		ok = append(ok, i)
		ks = append(ks, fp)
	}
	if len(ks) == 0 {
		return nil
	}
	got, err := n.store.GetMany(ctx, bucketFP, ks, raftstore.Stale)
	if err == nil && anyFound(got) {
		// A local hit may be stale (its token deleted since): confirm every
		// hit after one read barrier, then read the tokens it points to.
		if err = n.store.ReadBarrier(ctx); err == nil {
			got, err = n.store.GetMany(ctx, bucketFP, ks, raftstore.Stale)
		}
	}
	if err != nil {
		for _, i := range ok {
			res[i].err = err
		}
		return nil
	}
	var hitIdx, missIdx []int
	var tks [][]byte
	for j, i := range ok {
		switch {
		case got[j].Found:
			hitIdx = append(hitIdx, i)
			tks = append(tks, tokenKey(e.name(), string(got[j].Value)))
			items[i].expectFP = got[j].Value
		default:
			missIdx = append(missIdx, i)
		}
	}
	// A PAN not indexed under the latest fingerprint version may have a
	// live token indexed under an older one (not re-indexed yet).
	ok = without(ok, n.lookupOlderFingerprints(ctx, e, fk.ref.Version, items, res, missIdx))
	if len(tks) == 0 {
		return ok
	}
	recs, err := n.store.GetMany(ctx, bucketTokens, tks, raftstore.Stale) // after the barrier above
	if err != nil {
		for _, i := range hitIdx {
			res[i].err = err
		}
		return without(ok, hitIdx)
	}
	var done []int
	for j, i := range hitIdx {
		if !n.decideIndexed(e, items[i], items[i].expectFP, recs[j].Value, recs[j].Found, &res[i]) {
			done = append(done, i)
		}
	}
	return without(ok, done)
}

func anyFound(items []raftstore.Item) bool {
	for _, it := range items {
		if it.Found {
			return true
		}
	}
	return false
}

// without returns xs minus the values in drop (both in ascending order of
// appearance; small slices).
func without(xs, drop []int) []int {
	if len(drop) == 0 {
		return xs
	}
	skip := make(map[int]bool, len(drop))
	for _, d := range drop {
		skip[d] = true
	}
	out := xs[:0:0]
	for _, x := range xs {
		if !skip[x] {
			out = append(out, x)
		}
	}
	return out
}
