package vault

import (
	"context"
	"fmt"
	"strconv"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
)

// Retokenization of FF1 tokens. An FF1 token has no room for its key
// version (every digit is format-preserving ciphertext, and a version
// digit would cost a tenth of the token space), so a rotation of an FPE key
// changes every token: the token of a PAN under version 2 differs from the
// one under version 1. After a rotation, tokenize returns tokens of the
// latest version; detokenize assumes the latest unless the caller names the
// version of the token (DetokenizeRequest.key_version). Callers that store
// FF1 tokens migrate them with Retokenize (old token and its version in,
// new token out; the PAN never leaves the vault, as the PCI tokenization
// guidelines require) before custodians retire the old version.

// retokenizeFF1 turns tokens made by key version from into tokens of the
// latest version, one result per token.
func (n *Node) retokenizeFF1(ctx context.Context, e *schemeEntry, from uint32, tokens []string) ([]*pb.RetokenizeResult, uint32, error) {
	if e.s.Mode() != scheme.ModeFF1 {
		return nil, 0, fmt.Errorf("%w: vaulted tokens do not change with a key rotation (their records are re-encrypted)", ErrWrongMode)
	}
	dec, err := n.ff1.engine(ctx, e, from, useDecrypt)
	if err != nil {
		return nil, 0, err
	}
	enc, err := n.ff1.engine(ctx, e, 0, useEncrypt)
	if err != nil {
		return nil, 0, err
	}
	to := enc.tok.KeyVersion()
	if to <= from {
		// This node's key cache may not have the rotation that committed
		// elsewhere yet: ask the replicated record before answering with
		// tokens that did not move.
		rec, err := n.keyring.record(ctx, e.rec.GetKey(), true)
		if err != nil {
			return nil, 0, err
		}
		if rec.GetLatestVersion() <= from {
			return nil, 0, fmt.Errorf("%w: version %d is the key's latest: retokenize moves tokens to a newer version (rotate the key first)", ErrKeyState, from)
		}
		if enc, err = n.ff1.engine(ctx, e, rec.GetLatestVersion(), useEncrypt); err != nil {
			return nil, 0, err
		}
		to = enc.tok.KeyVersion()
	}
	out := make([]*pb.RetokenizeResult, len(tokens))
	fail := func(i int, err error) {
		out[i] = &pb.RetokenizeResult{Index: uint32(i), Outcome: &pb.RetokenizeResult_Error{Error: itemErrorOf(err, i)}}
	}
	var idx []int
	var valid []string
	for i, t := range tokens {
		if err := e.s.CheckToken(t, "token"); err != nil {
			fail(i, err)
			continue
		}
		idx = append(idx, i)
		valid = append(valid, t)
	}
	if len(valid) == 0 {
		return out, to, nil
	}
	drs, err := dec.tok.DetokenizeBatch(valid)
	if err != nil {
		return nil, 0, err
	}
	var pans []card.PAN
	var pidx []int
	for j, r := range drs {
		if r.Err != nil {
			fail(idx[j], r.Err)
			continue
		}
		pans = append(pans, r.PAN)
		pidx = append(pidx, idx[j])
		drs[j].PAN.Wipe() // the copy in pans is wiped below
	}
	defer func() {
		for i := range pans {
			pans[i].Wipe()
		}
	}()
	if len(pans) == 0 {
		return out, to, nil
	}
	trs, err := enc.tok.TokenizeBatch(pans)
	if err != nil {
		return nil, 0, err
	}
	done := 0
	for j, r := range trs {
		i := pidx[j]
		if r.Err != nil {
			fail(i, r.Err)
			continue
		}
		out[i] = &pb.RetokenizeResult{Index: uint32(i), Outcome: &pb.RetokenizeResult_Success{Success: &pb.RetokenizeSuccess{
			Token: r.Token, KeyVersion: to, MaskedPan: pans[j].Masked()}}}
		done++
	}
	n.metrics.addRetokenized(done)
	return out, to, nil
}

// Retokenize migrates FF1 tokens of one key version to the latest (see
// the file comment).
func (s *tokenService) Retokenize(ctx context.Context, req *pb.RetokenizeRequest) (*pb.RetokenizeResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme, ri.items = logName(req.GetScheme()), len(req.GetItems())
	if err := batchSize(len(req.GetItems())); err != nil {
		return nil, err
	}
	if req.GetFromKeyVersion() == 0 {
		return nil, fieldError("from_key_version", scheme.RuleRequired, "is required (the key version that made the tokens)")
	}
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	tokens := make([]string, len(req.GetItems()))
	for i, it := range req.GetItems() {
		tokens[i] = it.GetToken()
	}
	results, to, err := s.n.retokenizeFF1(ctx, e, req.GetFromKeyVersion(), tokens)
	if err != nil {
		return nil, err
	}
	s.n.log.Info("tokens retokenized", "scheme", e.name(), "from_version", req.GetFromKeyVersion(),
		"to_version", to, "items", strconv.Itoa(len(tokens)), "identity", callerFrom(ctx).identity)
	return &pb.RetokenizeResponse{Results: results, ToKeyVersion: to}, nil
}
