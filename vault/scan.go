package vault

import (
	"context"

	"github.com/panvault/panvault/raftstore"
)

// scanAll hands every entry of bucket under prefix (nil: all) to fn a page
// at a time, in key order, until fn returns false or the bucket ends. It
// reads with mode; every page after the first starts after the last key of
// the one before, so nothing is cut off at a page size.
func (n *Node) scanAll(ctx context.Context, bucket string, prefix []byte, mode raftstore.ReadMode, fn func([]raftstore.KV) bool) error {
	after := prefix
	for {
		kvs, more, err := n.store.Scan(ctx, bucket, raftstore.ScanOptions{
			Prefix: prefix, After: after, Limit: raftstore.MaxScanLimit, Mode: mode})
		if err != nil {
			return err
		}
		if !fn(kvs) || !more || len(kvs) == 0 {
			return nil
		}
		after = kvs[len(kvs)-1].Key
	}
}
