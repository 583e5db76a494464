package loadgen

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// callResult is what one call achieved. itemErrs holds the gRPC codes of the
// items a batch reply refused; it aliases the worker's scratch slice.
type callResult struct {
	items    int
	itemErrs []int32
	mismatch bool
}

// caller sends one call of a workload. n is the worker's call number; the
// implementation derives unique PAN indexes from it. Each worker owns its
// caller: a caller is not safe for concurrent use.
type caller interface {
	call(ctx context.Context, n uint64) (callResult, error)
}

// stream numbers a worker's calls so that no two calls of a run, whatever
// their worker, use the same PAN index: call n of worker w gets the slot
// n*workers + w, and a batch call uses batch consecutive indexes from
// slot*batch.
type stream struct {
	worker, workers uint64
	batch           uint64
}

func (s stream) first(n uint64) uint64 { return (n*s.workers + s.worker) * s.batch }

type tokenizeCaller struct {
	c      pb.TokenServiceClient
	scheme string
	pans   *PANs
	st     stream
}

func (t *tokenizeCaller) call(ctx context.Context, n uint64) (callResult, error) {
	_, err := t.c.Tokenize(ctx, &pb.TokenizeRequest{Scheme: t.scheme, Pan: t.pans.PAN(t.st.first(n))})
	if err != nil {
		return callResult{}, err
	}
	return callResult{items: 1}, nil
}

type batchCaller struct {
	c        pb.TokenServiceClient
	scheme   string
	pans     *PANs
	st       stream
	items    []*pb.TokenizeBatchItem
	itemErrs []int32
}

func (b *batchCaller) call(ctx context.Context, n uint64) (callResult, error) {
	first := b.st.first(n)
	for i, it := range b.items {
		it.Pan = b.pans.PAN(first + uint64(i))
	}
	resp, err := b.c.TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: b.scheme, Items: b.items})
	for _, it := range b.items {
		it.Pan = ""
	}
	if err != nil {
		return callResult{}, err
	}
	res := callResult{itemErrs: b.itemErrs[:0]}
	for _, r := range resp.GetResults() {
		if e := r.GetError(); e != nil {
			res.itemErrs = append(res.itemErrs, e.GetCode())
			continue
		}
		if r.GetSuccess() != nil {
			res.items++
		}
	}
	// A reply with fewer results than items leaves items without an outcome.
	for range len(b.items) - len(resp.GetResults()) {
		res.itemErrs = append(res.itemErrs, missingResult)
	}
	b.itemErrs = res.itemErrs
	return res, nil
}

// missingResult is the pseudo item code of a batch item the reply did not
// answer (not a gRPC code: those are 0..16).
const missingResult = -1

// poolEntry is a token created during setup and the PAN behind it.
type poolEntry struct {
	token, pan string
}

type detokenizeCaller struct {
	c      pb.TokenServiceClient
	scheme string
	pool   []poolEntry
	st     stream
	cons   pb.Consistency
}

func (d *detokenizeCaller) call(ctx context.Context, n uint64) (callResult, error) {
	e := &d.pool[d.st.first(n)%uint64(len(d.pool))]
	resp, err := d.c.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: d.scheme, Token: e.token, Consistency: d.cons})
	if err != nil {
		return callResult{}, err
	}
	if resp.GetPan() != e.pan {
		return callResult{mismatch: true}, nil
	}
	return callResult{items: 1}, nil
}

type signCaller struct {
	c   pb.SigningServiceClient
	key string
	st  stream
	msg []byte
}

func newSignCaller(conn grpc.ClientConnInterface, key string, st stream, seed uint64) *signCaller {
	r := rand.New(rand.NewPCG(seed, st.worker))
	msg := make([]byte, SignMessageSize)
	for i := 0; i < len(msg); i += 8 {
		binary.LittleEndian.PutUint64(msg[i:], r.Uint64())
	}
	return &signCaller{c: pb.NewSigningServiceClient(conn), key: key, st: st, msg: msg}
}

func (s *signCaller) call(ctx context.Context, n uint64) (callResult, error) {
	// Every message differs: its first 8 bytes are the call's slot.
	binary.BigEndian.PutUint64(s.msg, s.st.first(n))
	_, err := s.c.Sign(ctx, &pb.SignRequest{Key: s.key, Message: s.msg})
	if err != nil {
		return callResult{}, err
	}
	return callResult{items: 1}, nil
}

// newCaller builds worker w's caller for o (already defaulted).
func newCaller(o Options, conn grpc.ClientConnInterface, w int, pans *PANs, pool []poolEntry) caller {
	st := stream{worker: uint64(w), workers: uint64(o.Concurrency), batch: uint64(o.Batch)}
	switch o.Op {
	case OpTokenizeBatch:
		items := make([]*pb.TokenizeBatchItem, o.Batch)
		for i := range items {
			items[i] = &pb.TokenizeBatchItem{}
		}
		return &batchCaller{c: pb.NewTokenServiceClient(conn), scheme: o.Scheme, pans: pans, st: st,
			items: items, itemErrs: make([]int32, 0, o.Batch)}
	case OpDetokenize:
		cons := pb.Consistency_CONSISTENCY_UNSPECIFIED
		if o.StaleReads {
			cons = pb.Consistency_CONSISTENCY_STALE
		}
		return &detokenizeCaller{c: pb.NewTokenServiceClient(conn), scheme: o.Scheme, pool: pool, st: st, cons: cons}
	case OpSign:
		return newSignCaller(conn, o.Key, st, o.Seed)
	default: // OpTokenize, OpTokenizeFF1
		return &tokenizeCaller{c: pb.NewTokenServiceClient(conn), scheme: o.Scheme, pans: pans, st: st}
	}
}
