package ceremony

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"
)

// EntryType is the kind of step a ceremony log entry records. The numbers
// are part of the log encoding: never reuse or renumber them. A plain
// value, safe for concurrent use.
type EntryType uint8

const (
	// EntryInitialised: the first entry; Data holds the initial registry.
	EntryInitialised EntryType = 1
	// EntryProposed: a proposal was opened; Data holds its canonical bytes.
	EntryProposed EntryType = 2
	// EntryApproved: a custodian's approval, with their signature.
	EntryApproved EntryType = 3
	// EntryRejected: a custodian's rejection, with their signature and
	// reason (Detail); Status says whether it closed the proposal.
	EntryRejected EntryType = 4
	// EntryExpired: the proposal expired.
	EntryExpired EntryType = 5
	// EntryExecuted: the proposal was carried out; Detail is the outcome,
	// Data the new registry for kinds that change it.
	EntryExecuted EntryType = 6
	// EntryFailed: the proposal could not be carried out; Detail says why.
	EntryFailed EntryType = 7
)

var entryTypeNames = map[EntryType]string{
	EntryInitialised: "initialised",
	EntryProposed:    "proposed",
	EntryApproved:    "approved",
	EntryRejected:    "rejected",
	EntryExpired:     "expired",
	EntryExecuted:    "executed",
	EntryFailed:      "failed",
}

// String returns the entry type's name, e.g. "approved".
func (t EntryType) String() string {
	if n, ok := entryTypeNames[t]; ok {
		return n
	}
	return "entry(" + strconv.Itoa(int(t)) + ")"
}

const (
	logPrefix      = "panvault-ceremony-log-v1"
	maxLogDataLen  = 32 << 10
	maxLogEntryLen = maxLogDataLen + 4096
)

// LogEntry is one step of the append-only ceremony log. Entries are
// chained: Hash = SHA-256(Prev || canonical body), where the body is every
// field but Prev and Hash (FORMAT.md) and Prev is the previous entry's
// Hash (zero for the first, Seq 1). Altering, dropping, inserting or
// reordering any entry breaks the chain from there on (VerifyChain). The
// entries carry the custodians' signatures and the proposals' canonical
// bytes, so the log alone is the evidence of every ceremony (Replay).
//
// The transition functions (Propose, Approve, ...) return unchained
// entries; Chain links one after the log's last. A LogEntry is a plain
// value: safe for concurrent reads.
type LogEntry struct {
	Seq  uint64
	Type EntryType
	Time time.Time
	// ProposalID and Transcript name the proposal (empty and zero for
	// EntryInitialised).
	ProposalID string
	Transcript Hash
	// Status is the proposal's status after this step (0 for
	// EntryInitialised).
	Status Status
	// Custodian, Key and Signature: who approved or rejected, with which
	// key, and their signature.
	Custodian string
	Key       Fingerprint
	Signature []byte
	// Detail: a rejection's reason, an execution's outcome, a failure's
	// reason.
	Detail string
	// Data: the initial registry, a proposal's canonical bytes, or the
	// registry after an executed change.
	Data []byte
	Prev Hash
	Hash Hash
}

// Initialise returns the first, unchained entry of a ceremony log: the
// registry the cluster starts with, at now.
func Initialise(reg *Registry, now time.Time) (LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return LogEntry{}, err
	}
	b, err := reg.Marshal()
	if err != nil {
		return LogEntry{}, err
	}
	return LogEntry{Type: EntryInitialised, Time: now, Data: b}, nil
}

// Chain links e after prev (nil when e is the first entry): it sets Seq,
// Prev and Hash and checks e's fields.
func Chain(prev *LogEntry, e LogEntry) (LogEntry, error) {
	e.Seq, e.Prev = 1, Hash{}
	if prev != nil {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	if err := e.validate(); err != nil {
		return LogEntry{}, err
	}
	e.Hash = e.sum()
	return e, nil
}

// body returns the canonical encoding of every field but Prev and Hash:
//
//	lp("panvault-ceremony-log-v1") u64(seq) u8(type) i64(time ns)
//	lp(proposal id) transcript(32) u8(status) lp(custodian) key(32)
//	lp(signature) lp(detail) lp(data)
func (e LogEntry) body() []byte {
	var enc encoder
	enc.str(logPrefix)
	enc.u64(e.Seq)
	enc.u8(uint8(e.Type))
	enc.time(e.Time)
	enc.str(e.ProposalID)
	enc.fixed(e.Transcript[:])
	enc.u8(uint8(e.Status))
	enc.str(e.Custodian)
	enc.fixed(e.Key[:])
	enc.lp(e.Signature)
	enc.str(e.Detail)
	enc.lp(e.Data)
	return enc.b
}

// sum returns SHA-256(Prev || body).
func (e LogEntry) sum() Hash {
	h := sha256.New()
	h.Write(e.Prev[:])
	h.Write(e.body())
	var out Hash
	h.Sum(out[:0])
	return out
}

// Marshal returns the stored form: body || prev(32) || hash(32). It fails
// on an invalid or unchained entry.
func (e LogEntry) Marshal() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	if e.Hash != e.sum() {
		return nil, fmt.Errorf("%w: entry %d: hash does not match its contents", ErrChain, e.Seq)
	}
	b := e.body()
	b = append(b, e.Prev[:]...)
	return append(b, e.Hash[:]...), nil
}

// ParseEntry decodes a stored entry strictly and checks that its Hash
// matches its contents and Prev (ErrChain); whether Prev is the previous
// entry's hash is for ChainVerifier. Errors wrap ErrMalformed or ErrChain.
func ParseEntry(b []byte) (LogEntry, error) {
	if len(b) > maxLogEntryLen {
		return LogEntry{}, fmt.Errorf("%w: log entry longer than %d bytes", ErrMalformed, maxLogEntryLen)
	}
	d := &decoder{b: b}
	var e LogEntry
	d.prefix(logPrefix)
	e.Seq = d.u64("seq")
	e.Type = EntryType(d.u8("type"))
	e.Time = d.time("time")
	e.ProposalID = d.str(IDLen, "proposal id")
	d.fixed(e.Transcript[:], "transcript")
	e.Status = Status(d.u8("status"))
	e.Custodian = d.str(MaxNameLen, "custodian")
	d.fixed(e.Key[:], "key")
	e.Signature = d.lp(maxSignatureLen, "signature")
	e.Detail = d.str(MaxOutcomeLen, "detail")
	e.Data = d.lp(maxLogDataLen, "data")
	d.fixed(e.Prev[:], "prev")
	d.fixed(e.Hash[:], "hash")
	if err := d.finish(); err != nil {
		return LogEntry{}, err
	}
	if err := e.validate(); err != nil {
		return LogEntry{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.Hash != e.sum() {
		return LogEntry{}, fmt.Errorf("%w: entry %d: hash does not match its contents", ErrChain, e.Seq)
	}
	return e, nil
}

// validate checks the fields each entry type must and must not have.
func (e LogEntry) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: log entry %d (%s): "+format, append([]any{ErrInvalid, e.Seq, e.Type}, args...)...)
	}
	if e.Seq == 0 {
		return bad("sequence numbers start at 1")
	}
	if _, ok := entryTypeNames[e.Type]; !ok {
		return bad("unknown type")
	}
	if !encodableTime(e.Time) {
		return bad("time is required")
	}
	if len(e.Data) > maxLogDataLen {
		return bad("data longer than %d bytes", maxLogDataLen)
	}
	vote := e.Type == EntryApproved || e.Type == EntryRejected
	if e.Type == EntryInitialised {
		if e.ProposalID != "" || !e.Transcript.IsZero() || e.Status != 0 {
			return bad("names a proposal")
		}
	} else {
		if err := CheckID(e.ProposalID); err != nil {
			return bad("%w", err)
		}
		if e.Transcript.ID() != e.ProposalID {
			return bad("proposal id does not match the transcript hash")
		}
	}
	if vote {
		if err := checkName("custodian", e.Custodian); err != nil {
			return bad("%w", err)
		}
		if e.Key.IsZero() {
			return bad("custodian key is required")
		}
		if len(e.Signature) == 0 || len(e.Signature) > maxSignatureLen {
			return bad("signature must be 1 to %d bytes", maxSignatureLen)
		}
	} else if e.Custodian != "" || !e.Key.IsZero() || len(e.Signature) != 0 {
		return bad("only approvals and rejections carry a custodian")
	}
	wantStatus := map[EntryType][]Status{
		EntryProposed: {StatusPending}, EntryApproved: {StatusPending},
		EntryRejected: {StatusPending, StatusRejected}, EntryExpired: {StatusExpired},
		EntryExecuted: {StatusExecuted}, EntryFailed: {StatusFailed},
	}
	if want, ok := wantStatus[e.Type]; ok {
		found := false
		for _, s := range want {
			found = found || s == e.Status
		}
		if !found {
			return bad("status %s does not fit", e.Status)
		}
	}
	switch e.Type {
	case EntryInitialised:
		if e.Detail != "" {
			return bad("has a detail")
		}
		if _, err := ParseRegistry(e.Data); err != nil {
			return bad("registry: %w", err)
		}
	case EntryProposed:
		if e.Detail != "" {
			return bad("has a detail")
		}
		if _, err := ParseProposal(e.Data); err != nil {
			return bad("proposal: %w", err)
		}
		if transcriptOf(e.Data) != e.Transcript {
			return bad("transcript hash does not match the proposal")
		}
	case EntryApproved, EntryExpired:
		if e.Detail != "" || len(e.Data) != 0 {
			return bad("has a detail or data")
		}
	case EntryRejected:
		if err := checkText("reason", e.Detail, MaxReasonLen, false); err != nil {
			return bad("%w", err)
		}
		if len(e.Data) != 0 {
			return bad("has data")
		}
	case EntryExecuted, EntryFailed:
		if err := checkText("outcome", e.Detail, MaxOutcomeLen, true); err != nil {
			return bad("%w", err)
		}
		if e.Type == EntryFailed && len(e.Data) != 0 {
			return bad("has data")
		}
		if len(e.Data) != 0 {
			if _, err := ParseRegistry(e.Data); err != nil {
				return bad("registry: %w", err)
			}
		}
	}
	return nil
}

// ChainVerifier checks a ceremony log entry by entry, in order, so that a
// long log can be verified while it is read from storage. Not safe for
// concurrent use.
type ChainVerifier struct {
	seq  uint64
	prev Hash
}

// NewChainVerifier returns a verifier expecting entry 1.
func NewChainVerifier() *ChainVerifier { return &ChainVerifier{} }

// ResumeChain returns a verifier that continues after a trusted entry
// (sequence seq, hash h), e.g. one checked earlier or kept off-line.
func ResumeChain(seq uint64, h Hash) *ChainVerifier { return &ChainVerifier{seq: seq, prev: h} }

// Next checks that e is the next entry: its Seq follows, its Prev is the
// previous entry's Hash, its Hash matches its contents, and its fields fit
// its type. Errors wrap ErrChain or ErrInvalid; after an error the
// verifier stays where it was.
func (v *ChainVerifier) Next(e LogEntry) error {
	if e.Seq != v.seq+1 {
		return fmt.Errorf("%w: expected entry %d, got %d", ErrChain, v.seq+1, e.Seq)
	}
	if e.Prev != v.prev {
		return fmt.Errorf("%w: entry %d does not follow entry %d", ErrChain, e.Seq, v.seq)
	}
	if e.Hash != e.sum() {
		return fmt.Errorf("%w: entry %d: hash does not match its contents", ErrChain, e.Seq)
	}
	if err := e.validate(); err != nil {
		return err
	}
	v.seq, v.prev = e.Seq, e.Hash
	return nil
}

// Head returns the sequence number and hash of the last entry checked
// (0 and the zero hash before any).
func (v *ChainVerifier) Head() (uint64, Hash) { return v.seq, v.prev }

// VerifyChain checks a whole log from its first entry.
func VerifyChain(entries []LogEntry) error {
	v := NewChainVerifier()
	for _, e := range entries {
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return nil
}

// sameStep reports whether two entries record the same step (every field
// but Seq, Prev and Hash).
func sameStep(a, b LogEntry) bool {
	a.Seq, a.Prev, a.Hash = 0, Hash{}, Hash{}
	b.Seq, b.Prev, b.Hash = 0, Hash{}, Hash{}
	return bytes.Equal(a.body(), b.body())
}
