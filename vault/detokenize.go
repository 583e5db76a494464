package vault

import (
	"context"
	"fmt"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// detResult is the outcome of one detokenized item.
type detResult struct {
	resp *pb.DetokenizeResponse
	err  error
}

// detokenizeResponse builds the reply for pan; the clear PAN only when
// masked is false.
func detokenizeResponse(e *schemeEntry, pan card.PAN, keyVersion uint32, expireUnixNanos int64, masked bool) *pb.DetokenizeResponse {
	r := &pb.DetokenizeResponse{
		MaskedPan:  pan.Masked(),
		Scheme:     e.name(),
		KeyVersion: keyVersion,
		Brand:      brandToAPI(pan.Brand()),
		ExpireTime: timestampOrNil(expireUnixNanos),
	}
	if !masked {
		r.Pan = pan.Reveal()
	}
	return r
}

// readMode maps the API's consistency to a raftstore read mode.
func readMode(c pb.Consistency) (raftstore.ReadMode, error) {
	switch c {
	case pb.Consistency_CONSISTENCY_UNSPECIFIED, pb.Consistency_CONSISTENCY_LINEARIZABLE:
		return raftstore.Linearizable, nil
	case pb.Consistency_CONSISTENCY_STALE:
		return raftstore.Stale, nil
	}
	return 0, fieldError("consistency", scheme.RuleAllowed, "unknown consistency")
}

// detokenize returns one result per token, in order. field(i) names token
// i's request field for validation errors. ff1Version is the key version of
// FF1 tokens (0: the latest); vaulted records name their own.
func (n *Node) detokenize(ctx context.Context, e *schemeEntry, tokens []string, field func(int) string, mode raftstore.ReadMode, masked bool, ff1Version uint32) []detResult {
	res := make([]detResult, len(tokens))
	var ok []int
	for i, t := range tokens {
		if err := e.s.CheckToken(t, field(i)); err != nil {
			res[i].err = err
			continue
		}
		ok = append(ok, i)
	}
	if len(ok) == 0 {
		return res
	}
	if e.s.Mode() == scheme.ModeFF1 {
		n.detokenizeFF1(ctx, e, tokens, ok, masked, ff1Version, res)
		return res
	}
	if mode == raftstore.Stale {
		if err := n.checkStaleness(); err != nil {
			for _, i := range ok {
				res[i].err = err
			}
			return res
		}
	}
	n.detokenizeVaulted(ctx, e, tokens, ok, mode, masked, res)
	return res
}

// detokenizeVaulted reads the token records (one GetMany; stale misses are
// checked again linearizably, so STALE never reports a false NOT_FOUND) and
// opens each sealed PAN in the HSM.
func (n *Node) detokenizeVaulted(ctx context.Context, e *schemeEntry, tokens []string, idx []int, mode raftstore.ReadMode, masked bool, res []detResult) {
	ks := make([][]byte, len(idx))
	for j, i := range idx {
		ks[j] = tokenKey(e.name(), tokens[i])
	}
	got, err := n.store.GetMany(ctx, bucketTokens, ks, mode)
	if err == nil && mode == raftstore.Stale {
		var missJ []int
		var missK [][]byte
		for j := range got {
			if !got[j].Found {
				missJ = append(missJ, j)
				missK = append(missK, ks[j])
			}
		}
		if len(missK) > 0 {
			var again []raftstore.Item
			if again, err = n.store.GetMany(ctx, bucketTokens, missK, raftstore.Linearizable); err == nil {
				for m, j := range missJ {
					got[j] = again[m]
				}
			}
		}
	}
	if err != nil {
		for _, i := range idx {
			res[i].err = err
		}
		return
	}
	for j, i := range idx {
		if !got[j].Found {
			res[i].err = ErrTokenNotFound
			continue
		}
		rec, err := decodeToken(got[j].Value)
		if err != nil {
			res[i].err = err
			continue
		}
		if n.expired(rec) {
			res[i].err = ErrTokenExpired
			continue
		}
		pan, err := n.openPAN(ctx, e, tokens[i], rec)
		if err != nil {
			res[i].err = err
			continue
		}
		res[i].resp = detokenizeResponse(e, pan, rec.GetKeyVersion(), rec.GetExpireUnixNanos(), masked)
		pan.Wipe()
	}
}

// openPAN decrypts a token record's PAN in the HSM with the key and version
// the record names (schemekey.go: not necessarily the scheme's key now).
func (n *Node) openPAN(ctx context.Context, e *schemeEntry, token string, rec *vaultpb.TokenRecord) (card.PAN, error) {
	digits, err := n.openSealed(ctx, e.rec, token, rec)
	if err != nil {
		return card.PAN{}, err
	}
	// The PAN was validated when it was sealed; parse it leniently (a
	// non-Luhn UnionPay PAN is legitimate where the scheme allowed it).
	pan, err := card.ParseBytes(digits, card.ParseOptions{AllowNonLuhnUnionPay: true})
	clear(digits)
	if err != nil {
		return card.PAN{}, fmt.Errorf("%w: sealed value is not a pan", ErrCorruptRecord)
	}
	return pan, nil
}

// openSealed returns the PAN digits sealed in rec, a record of scheme s
// under token: opened in the HSM with the key and version the record names.
// The caller clears them.
func (n *Node) openSealed(ctx context.Context, s *vaultpb.SchemeRecord, token string, rec *vaultpb.TokenRecord) ([]byte, error) {
	kv, err := n.keyring.resolve(ctx, recordKey(s, rec), rec.GetKeyVersion(), vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION, useDecrypt)
	if err != nil {
		return nil, err
	}
	digits, err := n.hsm.Open(ctx, kv.ref, rec.GetSealed(), panAAD(s.GetName(), token, rec.GetKeyVersion()))
	if err != nil {
		return nil, fmt.Errorf("open sealed pan: %w", err)
	}
	return digits, nil
}
