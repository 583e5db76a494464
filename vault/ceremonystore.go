package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
)

// Replicated buckets of custodian ceremonies (vault/ceremony/DESIGN.md).
// Values are package ceremony's canonical encodings, not vaultpb records:
// they are what custodians signed and what Replay audits.
const (
	bucketCeremonies   = "ceremonies"    // proposal id -> ceremony.State
	bucketCeremonyLog  = "ceremony-log"  // seq (8 bytes BE) -> ceremony.LogEntry
	bucketCeremonyMeta = "ceremony-meta" // "registry", "head"

	metaRegistry = "registry" // ceremony.Registry
	metaHead     = "head"     // seq (8 bytes BE) || hash (32) of the last log entry
)

// maxCeremonyRetries bounds how often one ceremony step is re-run after its
// compare-and-set on the log head lost to a concurrent step.
const maxCeremonyRetries = 16

// ceremonyBase is what every ceremony decision is made against: the
// registry, and the log's last entry with the stored head that a write
// compares against. A plain value.
type ceremonyBase struct {
	reg     *ceremony.Registry
	regRaw  []byte
	headRaw []byte
	last    ceremony.LogEntry
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func headValue(e ceremony.LogEntry) []byte {
	v := seqKey(e.Seq)
	return append(v, e.Hash[:]...)
}

// readCeremonyBase reads registry, head and last entry (one read point for
// registry and head; the entry it names is immutable).
func (n *Node) readCeremonyBase(ctx context.Context, mode raftstore.ReadMode) (ceremonyBase, error) {
	got, err := n.store.GetMany(ctx, bucketCeremonyMeta, [][]byte{[]byte(metaRegistry), []byte(metaHead)}, mode)
	if err != nil {
		return ceremonyBase{}, err
	}
	if !got[0].Found || !got[1].Found {
		return ceremonyBase{}, ErrCustodiansNotInitialised
	}
	reg, err := ceremony.ParseRegistry(got[0].Value)
	if err != nil {
		return ceremonyBase{}, fmt.Errorf("%w: custodian registry: %w", ErrCorruptRecord, err)
	}
	h := got[1].Value
	if len(h) != 8+32 {
		return ceremonyBase{}, fmt.Errorf("%w: ceremony log head", ErrCorruptRecord)
	}
	seq := binary.BigEndian.Uint64(h)
	v, found, err := n.store.Get(ctx, bucketCeremonyLog, seqKey(seq), raftstore.Stale) // written with the head
	if err != nil {
		return ceremonyBase{}, err
	}
	if !found {
		return ceremonyBase{}, fmt.Errorf("%w: ceremony log entry %d missing", ErrCorruptRecord, seq)
	}
	last, err := ceremony.ParseEntry(v)
	if err != nil {
		return ceremonyBase{}, fmt.Errorf("%w: ceremony log entry %d: %w", ErrCorruptRecord, seq, err)
	}
	if last.Seq != seq || !bytes.Equal(last.Hash[:], h[8:]) {
		return ceremonyBase{}, fmt.Errorf("%w: ceremony log head does not match entry %d", ErrCorruptRecord, seq)
	}
	return ceremonyBase{reg: reg, regRaw: got[0].Value, headRaw: h, last: last}, nil
}

// readCeremonyState reads one proposal's state.
func (n *Node) readCeremonyState(ctx context.Context, id string, mode raftstore.ReadMode) (ceremony.State, error) {
	v, found, err := n.store.Get(ctx, bucketCeremonies, []byte(id), mode)
	if err != nil {
		return ceremony.State{}, err
	}
	if !found {
		return ceremony.State{}, ErrCeremonyNotFound
	}
	st, err := ceremony.ParseState(v)
	if err != nil {
		return ceremony.State{}, fmt.Errorf("%w: ceremony %s: %w", ErrCorruptRecord, id, err)
	}
	return st, nil
}

// errStale is returned by a ceremony step's write when its compare-and-set
// lost to a concurrent step: the step is re-run on fresh reads.
var errStale = errors.New("ceremony state changed concurrently")

// ceremonyWrite is one ceremony step's replicated write: the log entry, the
// new proposal state (nil for none), a new registry (nil: unchanged), and
// further operations (key records, jobs) that must commit atomically with
// it. The write compares the head of the log, so it commits only if
// nothing was decided since base was read.
type ceremonyWrite struct {
	entry    ceremony.LogEntry
	state    *ceremony.State
	registry *ceremony.Registry
	extra    []raftstore.Op
}

// commitCeremony chains w.entry after base.last and proposes the write as
// one command. It returns the chained entry, or errStale when the head, the
// registry or an extra operation's condition changed meanwhile.
func (n *Node) commitCeremony(ctx context.Context, base ceremonyBase, w ceremonyWrite) (ceremony.LogEntry, error) {
	e, err := ceremony.Chain(&base.last, w.entry)
	if err != nil {
		return ceremony.LogEntry{}, err
	}
	raw, err := e.Marshal()
	if err != nil {
		return ceremony.LogEntry{}, err
	}
	ops := []raftstore.Op{
		raftstore.CompareAndSet(bucketCeremonyMeta, []byte(metaHead), base.headRaw, headValue(e)),
		raftstore.PutIfAbsent(bucketCeremonyLog, seqKey(e.Seq), raw),
	}
	if w.state != nil {
		sv, err := w.state.Marshal()
		if err != nil {
			return ceremony.LogEntry{}, err
		}
		ops = append(ops, raftstore.Put(bucketCeremonies, []byte(w.state.ID), sv))
	}
	if w.registry != nil {
		rv, err := w.registry.Marshal()
		if err != nil {
			return ceremony.LogEntry{}, err
		}
		ops = append(ops, raftstore.CompareAndSet(bucketCeremonyMeta, []byte(metaRegistry), base.regRaw, rv))
	}
	ops = append(ops, w.extra...)
	res, err := n.store.Propose(ctx, ops...)
	if err != nil {
		return ceremony.LogEntry{}, err
	}
	if !res.Applied {
		return ceremony.LogEntry{}, errStale
	}
	n.metrics.ceremonyStep(e.Type.String())
	return e, nil
}

// ceremonyStep runs step on fresh reads until its write commits (or fails
// for another reason than a concurrent change).
func (n *Node) ceremonyStep(ctx context.Context, step func(base ceremonyBase) error) error {
	for try := 0; try < maxCeremonyRetries; try++ {
		base, err := n.readCeremonyBase(ctx, raftstore.Linearizable)
		if err != nil {
			return err
		}
		err = step(base)
		if !errors.Is(err, errStale) {
			return err
		}
	}
	return fmt.Errorf("%w: ceremony log", ErrConflict)
}
