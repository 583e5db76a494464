package vault

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/panvault/panvault/raftstore"
)

// Expiry sweep. Expired token records would otherwise keep their sealed PAN
// at rest forever, and idempotency records would grow without bound. The
// leader, every JobInterval, looks at up to SweepBatch records of each of
// the buckets "tokens" and "idem" after an in-memory cursor (a new leader
// starts from the beginning; a full pass takes size/SweepBatch intervals,
// which is the rate limit), and removes in one ProposeBatch:
//
//   - every token record whose TTL has passed, with its fingerprint entry
//     and its idempotency record when they still point to it (the same
//     operations as DeleteToken, tokenDeleteOps), compare-and-set on the
//     bytes read so that a record changed meanwhile is left for the next
//     pass;
//   - every idempotency record older than IdemRetention (a retry with that
//     request id after the retention is a new request).
//
// Reads are the leader's local state: a record committed but not yet
// applied here is seen on a later pass.

// Defaults of the expiry sweep (see Config).
const (
	DefaultIdemRetention = 24 * time.Hour
	DefaultSweepBatch    = 256
)

// expirySweeper holds the leader's cursors. Used by one goroutine.
type expirySweeper struct {
	n         *Node
	tokAfter  []byte
	idemAfter []byte
}

// runExpirySweep sweeps every JobInterval while this node is leader.
func (n *Node) runExpirySweep() {
	defer n.wg.Done()
	s := &expirySweeper{n: n}
	t := time.NewTicker(n.cfg.JobInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !n.store.IsLeader() || n.sweepPaused.Load() {
			s.tokAfter, s.idemAfter = nil, nil
			continue
		}
		if err := s.pass(n.ctx); err != nil && !n.closed() && !errors.Is(err, raftstore.ErrNotLeader) {
			n.log.Warn("expiry sweep", "err", err)
		}
	}
}

// pass does one batch of each bucket.
func (s *expirySweeper) pass(ctx context.Context) error {
	if err := s.tokens(ctx); err != nil {
		return err
	}
	return s.idem(ctx)
}

func (s *expirySweeper) tokens(ctx context.Context) error {
	n := s.n
	kvs, more, err := n.store.Scan(ctx, bucketTokens, raftstore.ScanOptions{After: s.tokAfter, Limit: n.cfg.SweepBatch, Mode: raftstore.Stale})
	if err != nil {
		return err
	}
	s.tokAfter = nextCursor(kvs, more)
	var cmds [][]raftstore.Op
	for _, kv := range kvs {
		rec, err := decodeToken(kv.Value)
		if err != nil || !n.expired(rec) {
			continue
		}
		sep := bytes.IndexByte(kv.Key, 0)
		if sep < 0 {
			continue
		}
		ops, err := n.tokenDeleteOps(ctx, kv.Key, string(kv.Key[sep+1:]), kv.Value, rec)
		if err != nil {
			return err
		}
		cmds = append(cmds, ops)
	}
	return s.propose(ctx, cmds)
}

func (s *expirySweeper) idem(ctx context.Context) error {
	n := s.n
	kvs, more, err := n.store.Scan(ctx, bucketIdem, raftstore.ScanOptions{After: s.idemAfter, Limit: n.cfg.SweepBatch, Mode: raftstore.Stale})
	if err != nil {
		return err
	}
	s.idemAfter = nextCursor(kvs, more)
	cutoff := n.now().Add(-n.cfg.IdemRetention).UnixNano()
	var cmds [][]raftstore.Op
	for _, kv := range kvs {
		rec, err := decodeIdem(kv.Value)
		if err != nil || rec.GetCreateUnixNanos() > cutoff {
			continue
		}
		cmds = append(cmds, []raftstore.Op{
			raftstore.CompareAndSet(bucketIdem, kv.Key, kv.Value, kv.Value),
			raftstore.Delete(bucketIdem, kv.Key),
		})
	}
	return s.propose(ctx, cmds)
}

// propose commits cmds in one batch; a command that is not applied (its
// record changed) is left for a later pass.
func (s *expirySweeper) propose(ctx context.Context, cmds [][]raftstore.Op) error {
	if len(cmds) == 0 {
		return nil
	}
	_, errs := s.n.store.ProposeBatch(ctx, cmds)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// nextCursor is where the next scan starts: after the last key, or from the
// beginning once the bucket was scanned to its end.
func nextCursor(kvs []raftstore.KV, more bool) []byte {
	if !more || len(kvs) == 0 {
		return nil
	}
	return append([]byte(nil), kvs[len(kvs)-1].Key...)
}
