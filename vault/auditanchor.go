package vault

// Audit anchors. A hash chain shows that no record of a log was changed,
// removed or reordered between its first and last line, but not that lines
// were cut off the end, nor that someone with the file rewrote it from some
// line on and recomputed every hash after. Each node therefore records,
// through Raft, the seq and hash of its last durable audit record once per
// AuditAnchorInterval while its log grows. Anchors are only ever added
// (put-if-absent under chain and seq), so every node holds every node's
// anchors, and `panvault audit verify FILE --cluster` checks a file against
// all anchors of its chain: a record anchored once must still be there with
// the same hash.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// bucketAuditAnchors: chain (32 bytes: hash of a log file's first record),
// seq (8 bytes BE) -> AuditAnchor.
const bucketAuditAnchors = "audit-anchors"

// DefaultAuditAnchorInterval is Config.AuditAnchorInterval when zero.
const DefaultAuditAnchorInterval = time.Minute

// runAuditAnchors records an anchor every AuditAnchorInterval when the log
// has grown since the last one. A failed proposal (no leader, say) is
// logged and tried again at the next tick: anchoring never fails a request.
func (n *Node) runAuditAnchors() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.AuditAnchorInterval)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		seq, err := n.anchorAudit(n.ctx, last)
		if err != nil {
			if n.ctx.Err() == nil {
				n.anchorFailures.Add(1)
				n.log.Warn("audit anchor not recorded; trying again at the next interval", "seq", seq, "err", err)
			}
			continue
		}
		if seq != 0 && seq != last { // 0: nothing to anchor (an empty current file)
			n.anchors.Add(1)
		}
		last = seq
	}
}

// anchorAudit proposes the log's head as an anchor unless its seq is last
// (nothing new). It returns the head's seq.
func (n *Node) anchorAudit(ctx context.Context, last uint64) (uint64, error) {
	chain, head := n.audit.HeadAnchor()
	seq, hash := head.Seq, head.Hash
	if seq == 0 || seq == last {
		return seq, nil
	}
	c, err1 := hex.DecodeString(chain)
	h, err2 := hex.DecodeString(hash)
	if err1 != nil || err2 != nil || len(c) != 32 || len(h) != 32 {
		return seq, fmt.Errorf("vault: audit head is not 32-byte hex (chain %d, hash %d characters)", len(chain), len(hash))
	}
	v, err := encodeRecord(&vaultpb.AuditAnchor{NodeId: n.id, Hash: h, RecordedUnixNanos: n.now().UnixNano()})
	if err != nil {
		return seq, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := n.store.Propose(ctx, raftstore.PutIfAbsent(bucketAuditAnchors, anchorKey(c, seq), v))
	if err != nil {
		return seq, err
	}
	if !res.Applied {
		// Our own retry after an unknown outcome finds our anchor; anything
		// else under this chain and seq was written by someone else.
		old := &vaultpb.AuditAnchor{}
		if ex, ok := res.Existing(); !ok || decodeRecord(ex, old) != nil || !bytes.Equal(old.GetHash(), h) || old.GetNodeId() != n.id {
			return seq, fmt.Errorf("vault: an anchor of this audit log's seq %d already exists with another hash or node: it was not written by this node's log", seq)
		}
	}
	return seq, nil
}

func anchorKey(chain []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(chain)+8), chain...), seq)
}

// ListAuditAnchors returns one page of anchors, by chain then seq, of one
// chain (64 hex digits) or all, recorded by one node or any. A
// linearizable read.
func (n *Node) ListAuditAnchors(ctx context.Context, chain, nodeID string, pageSize uint32, pageToken string) ([]*pb.AuditAnchor, string, error) {
	var prefix []byte
	if chain != "" {
		c, err := hex.DecodeString(chain)
		if err != nil || len(c) != 32 {
			return nil, "", fieldError("chain", scheme.RuleFormat, "must be 64 hex digits (the hash of a log's first record)")
		}
		prefix = c
	}
	if nodeID != "" {
		if err := checkNodeID("node_id", nodeID); err != nil {
			return nil, "", err
		}
	}
	after := prefix
	if pageToken != "" {
		t, err := hex.DecodeString(pageToken)
		if err != nil || len(t) != 40 {
			return nil, "", fieldError("page_token", scheme.RuleFormat, "is not a token this server returned")
		}
		after = t
	}
	size := pageSize
	if size == 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	var out []*pb.AuditAnchor
	for {
		kvs, more, err := n.store.Scan(ctx, bucketAuditAnchors, raftstore.ScanOptions{
			Prefix: prefix, After: after, Limit: raftstore.MaxScanLimit, Mode: raftstore.Linearizable})
		if err != nil {
			return nil, "", err
		}
		for i, kv := range kvs {
			after = kv.Key
			a, err := anchorToAPI(kv)
			if err != nil {
				return nil, "", err
			}
			if a == nil || nodeID != "" && a.GetNodeId() != nodeID {
				continue
			}
			out = append(out, a)
			if len(out) == int(size) {
				if i < len(kvs)-1 || more {
					return out, hex.EncodeToString(kv.Key), nil
				}
				return out, "", nil
			}
		}
		if !more || len(kvs) == 0 {
			return out, "", nil
		}
	}
}

// anchorToAPI decodes one entry of the anchor bucket (nil for a key of
// another shape, which the vault never writes).
func anchorToAPI(kv raftstore.KV) (*pb.AuditAnchor, error) {
	if len(kv.Key) != 40 {
		return nil, nil
	}
	rec := &vaultpb.AuditAnchor{}
	if err := decodeRecord(kv.Value, rec); err != nil {
		return nil, err
	}
	return &pb.AuditAnchor{
		Chain:      hex.EncodeToString(kv.Key[:32]),
		NodeId:     rec.GetNodeId(),
		Seq:        binary.BigEndian.Uint64(kv.Key[32:]),
		Hash:       hex.EncodeToString(rec.GetHash()),
		RecordedAt: timestamppb.New(time.Unix(0, rec.GetRecordedUnixNanos()).UTC()),
	}, nil
}
