package vault

// FF1Coalesced returns how many FF1 batches the coalescers of n ran and how
// many single requests they carried.
func FF1Coalesced(n *Node) (batches, items uint64) {
	return n.ff1.batches.Load(), n.ff1.items.Load()
}
