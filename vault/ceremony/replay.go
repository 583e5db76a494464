package ceremony

import "fmt"

// Replayed is what a ceremony log proves: the registry and the state of
// every proposal after its last entry. A plain value, safe for
// concurrent reads.
type Replayed struct {
	Registry *Registry
	States   map[string]State // by proposal id
	Seq      uint64           // last entry's sequence number
	Head     Hash             // last entry's hash
}

// Replay audits a whole ceremony log: it verifies the hash chain, then
// re-runs every step from the initial registry with the same pure
// functions the vault used (Propose, Approve, Reject, Expire, Execute,
// Fail), at the times the entries record, and checks that each gives
// exactly the recorded entry. Every custodian signature is thereby checked
// again against the key registered at that point, every quorum recounted.
//
// It holds only if the vault wrote each step's state change, log entry
// and (for Execute) registry change in one atomic replicated write, in log
// order; a log that does not replay (ErrReplay) means it did not, or that
// the state was tampered with in a way that kept the chain intact.
func Replay(entries []LogEntry) (Replayed, error) {
	if err := VerifyChain(entries); err != nil {
		return Replayed{}, err
	}
	if len(entries) == 0 || entries[0].Type != EntryInitialised {
		return Replayed{}, fmt.Errorf("%w: the log must start with an %s entry", ErrReplay, EntryInitialised)
	}
	reg, err := ParseRegistry(entries[0].Data)
	if err != nil {
		return Replayed{}, fmt.Errorf("%w: entry 1: %w", ErrReplay, err)
	}
	if err := reg.Verify(); err != nil {
		return Replayed{}, fmt.Errorf("%w: entry 1: %w", ErrReplay, err)
	}
	out := Replayed{States: make(map[string]State)}
	for _, e := range entries[1:] {
		var (
			st, next State
			want     LogEntry
			err      error
		)
		if e.Type != EntryProposed && e.Type != EntryInitialised {
			var ok bool
			if st, ok = out.States[e.ProposalID]; !ok {
				return Replayed{}, fmt.Errorf("%w: entry %d: proposal %s was never proposed", ErrReplay, e.Seq, e.ProposalID)
			}
			if st.Transcript != e.Transcript {
				return Replayed{}, fmt.Errorf("%w: entry %d: %w", ErrReplay, e.Seq, ErrWrongProposal)
			}
		}
		switch e.Type {
		case EntryInitialised:
			err = fmt.Errorf("a second %s entry", EntryInitialised)
		case EntryProposed:
			var p Proposal
			if p, err = ParseProposal(e.Data); err != nil {
				break
			}
			if _, dup := out.States[e.ProposalID]; dup {
				err = fmt.Errorf("proposal %s proposed twice", e.ProposalID)
				break
			}
			next, want, err = Propose(reg, p, e.Time)
		case EntryApproved:
			next, want, err = Approve(reg, st, Approval{Custodian: e.Custodian, Key: e.Key, Signature: e.Signature}, e.Time)
		case EntryRejected:
			next, want, err = Reject(reg, st, Rejection{Custodian: e.Custodian, Key: e.Key, Reason: e.Detail, Signature: e.Signature}, e.Time)
		case EntryExpired:
			next, want, err = Expire(reg, st, e.Time)
		case EntryExecuted:
			var nextReg *Registry
			next, nextReg, want, err = Execute(reg, st, e.Time, e.Detail)
			if err == nil {
				reg = nextReg
			}
		case EntryFailed:
			next, want, err = Fail(reg, st, e.Time, e.Detail)
		}
		if err != nil {
			return Replayed{}, fmt.Errorf("%w: entry %d (%s): %w", ErrReplay, e.Seq, e.Type, err)
		}
		if !sameStep(want, e) {
			return Replayed{}, fmt.Errorf("%w: entry %d (%s) differs from what the step gives", ErrReplay, e.Seq, e.Type)
		}
		out.States[next.ID] = next
	}
	last := entries[len(entries)-1]
	out.Registry, out.Seq, out.Head = reg, last.Seq, last.Hash
	return out, nil
}
