package ceremony

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Status is where a proposal is in its life. The numbers are part of the
// stored encodings: never reuse or renumber them. A plain value, safe for
// concurrent use.
type Status uint8

const (
	// StatusPending: open for approvals and rejections.
	StatusPending Status = 1
	// StatusExecuted: carried out (closed).
	StatusExecuted Status = 2
	// StatusFailed: had its quorum but could not be carried out, e.g. the
	// key it names no longer exists (closed).
	StatusFailed Status = 3
	// StatusRejected: rejected by enough custodians that M approvals can no
	// longer be reached, or withdrawn by its proposer (closed).
	StatusRejected Status = 4
	// StatusExpired: expired before reaching its quorum (closed).
	StatusExpired Status = 5
)

var statusNames = map[Status]string{
	StatusPending:  "pending",
	StatusExecuted: "executed",
	StatusFailed:   "failed",
	StatusRejected: "rejected",
	StatusExpired:  "expired",
}

// String returns the status's name, e.g. "pending".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := statusNames[s]; return ok }

// Approval is a custodian's signature over ApprovalMessage(id,
// transcript). Custodian may be empty in a request to Approve, which then
// finds the custodian by Key. At is set by Approve. A plain value, safe
// for concurrent reads.
type Approval struct {
	Custodian string
	Key       Fingerprint
	Signature []byte
	At        time.Time
}

// Rejection is a custodian's signature over RejectionMessage(id,
// transcript, Reason). Custodian may be empty in a request to Reject,
// which then finds the custodian by Key. At is set by Reject. A plain
// value, safe for concurrent reads.
type Rejection struct {
	Custodian string
	Key       Fingerprint
	Reason    string
	Signature []byte
	At        time.Time
}

// State is a proposal and everything that has happened to it: the
// approvals and rejections in the order they were accepted, and how it
// closed. ID and Transcript are derived from Proposal (ParseState
// recomputes them).
//
// The functions that change a State (Approve, Reject, Expire, Execute,
// Fail) first check it with Validate, so a State whose ID or Transcript do
// not belong to its Proposal is refused (ErrInvalid) rather than have
// signatures attach to other content. They are pure: they read no clock (the caller passes now), no
// randomness and no global state, never modify their arguments, and
// return a new State plus the LogEntry that records the step. The same
// inputs always give the same result, so every node and every replay of
// the ceremony log reaches the same decision. A State is a plain value:
// safe for concurrent reads.
type State struct {
	Proposal   Proposal
	ID         string
	Transcript Hash
	Status     Status
	Approvals  []Approval
	Rejections []Rejection
	// Closed is when the proposal left StatusPending (zero while pending).
	Closed time.Time
	// Outcome says how it closed: the executed operation's summary, the
	// failure reason, "rejected: ...", "expired". Empty while pending.
	Outcome string
}

// normalNow checks and normalises a caller's clock reading.
func normalNow(now time.Time) (time.Time, error) {
	if !encodableTime(now) {
		return time.Time{}, fmt.Errorf("%w: time out of range", ErrInvalid)
	}
	return time.Unix(0, now.UnixNano()).UTC(), nil
}

// Propose opens proposal p at now against registry reg. It checks that p
// is valid, created no later than now (plus MaxClockSkew) and not yet
// expired; that an added custodian is new by name and by key, a removed
// one exists and the rest still make up M, a quorum change stays within
// MinQuorum..N; and that enough custodians other than the proposer are
// registered to reach M (ErrQuorumUnreachable).
//
// Checks against keys and schemes (does the key exist, may this version be
// destroyed) are the vault's.
func Propose(reg *Registry, p Proposal, now time.Time) (State, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	canon, err := p.Marshal()
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if p.Created.After(now.Add(MaxClockSkew)) {
		return State{}, LogEntry{}, fmt.Errorf("%w: proposal created in the future", ErrInvalid)
	}
	if !now.Before(p.Expires) {
		return State{}, LogEntry{}, ErrExpired
	}
	if err := reg.checkProposal(p); err != nil {
		return State{}, LogEntry{}, err
	}
	h := transcriptOf(canon)
	st := State{Proposal: p, ID: h.ID(), Transcript: h, Status: StatusPending}
	if !st.Reachable(reg) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %d custodians other than the proposer for a quorum of %d", ErrQuorumUnreachable, st.potential(reg), reg.Quorum)
	}
	e := st.entry(EntryProposed, now)
	e.Data = canon
	return st, e, nil
}

// Approve records custodian approval a of proposal st at now. The rules,
// in the order they are checked:
//
//   - the proposal is pending (ErrClosed) and now is before its expiry
//     (ErrExpired);
//   - a.Custodian is registered (ErrUnknownCustodian) and a.Key is that
//     custodian's key; with no name, a.Key must be some registered
//     custodian's key (ErrUnknownKey);
//   - the custodian is not the proposer (ErrSelfApproval): whoever asks
//     for an operation cannot also be one of the people who allow it,
//     unlike control groups that let a requester approve their own
//     request;
//   - the custodian has not approved (ErrDuplicateApproval) or rejected
//     (ErrAlreadyVoted) it before: each custodian counts once;
//   - a.Signature verifies over ApprovalMessage(st.ID, st.Transcript) with
//     the registered key (ErrBadSignature), so a signature over any other
//     proposal's transcript, or any other message, is refused.
//
// On success the approval is appended with At = now. Ready tells whether
// the quorum is reached.
func Approve(reg *Registry, st State, a Approval, now time.Time) (State, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	c, err := st.voter(reg, a.Custodian, a.Key, now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if !eligible(c, st.Proposal) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s proposed %s", ErrSelfApproval, c.Name, st.ID)
	}
	if st.approvedBy(c.Name) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s, proposal %s", ErrDuplicateApproval, c.Name, st.ID)
	}
	if st.rejectedBy(c.Name) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s rejected proposal %s", ErrAlreadyVoted, c.Name, st.ID)
	}
	if err := checkSignature(c, ApprovalMessage(st.ID, st.Transcript), a.Signature); err != nil {
		return State{}, LogEntry{}, fmt.Errorf("approval of %s by %s: %w", st.ID, c.Name, err)
	}
	next := st.clone()
	rec := Approval{Custodian: c.Name, Key: a.Key, Signature: slices.Clone(a.Signature), At: now}
	next.Approvals = append(next.Approvals, rec)
	e := next.entry(EntryApproved, now)
	e.Custodian, e.Key, e.Signature = rec.Custodian, rec.Key, rec.Signature
	return next, e, nil
}

// Reject records custodian rejection r of proposal st at now, with the
// same checks as Approve except that the proposer may reject their own
// proposal, and a custodian who approved may not then reject
// (ErrAlreadyVoted). r.Signature must verify over RejectionMessage(st.ID,
// st.Transcript, r.Reason).
//
// The proposal closes as rejected when its proposer rejects it
// (withdrawal), or when so many custodians have rejected it that M
// approvals can no longer be reached (see Reachable). One custodian alone
// therefore cannot veto what M others approve unless M == N, just as one
// custodian alone cannot approve anything.
func Reject(reg *Registry, st State, r Rejection, now time.Time) (State, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if err := checkText("reason", r.Reason, MaxReasonLen, false); err != nil {
		return State{}, LogEntry{}, err
	}
	c, err := st.voter(reg, r.Custodian, r.Key, now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if st.approvedBy(c.Name) || st.rejectedBy(c.Name) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s, proposal %s", ErrAlreadyVoted, c.Name, st.ID)
	}
	if err := checkSignature(c, RejectionMessage(st.ID, st.Transcript, r.Reason), r.Signature); err != nil {
		return State{}, LogEntry{}, fmt.Errorf("rejection of %s by %s: %w", st.ID, c.Name, err)
	}
	next := st.clone()
	rec := Rejection{Custodian: c.Name, Key: r.Key, Reason: r.Reason, Signature: slices.Clone(r.Signature), At: now}
	next.Rejections = append(next.Rejections, rec)
	switch {
	case c.Name == st.Proposal.Proposer:
		next.close(StatusRejected, now, "rejected: withdrawn by its proposer "+c.Name)
	case !next.Reachable(reg):
		next.close(StatusRejected, now, "rejected: quorum can no longer be reached")
	}
	e := next.entry(EntryRejected, now)
	e.Custodian, e.Key, e.Signature, e.Detail = rec.Custodian, rec.Key, rec.Signature, rec.Reason
	return next, e, nil
}

// Expire closes pending proposal st as expired at now. It fails with
// ErrNotExpired before the expiry, and also for a proposal that is Ready:
// expiry stops the gathering of approvals, not the execution of a
// proposal whose approvals all came in time.
func Expire(reg *Registry, st State, now time.Time) (State, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if err := st.Validate(); err != nil {
		return State{}, LogEntry{}, err
	}
	if st.Status != StatusPending {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s is %s", ErrClosed, st.ID, st.Status)
	}
	if now.Before(st.Proposal.Expires) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s expires at %s", ErrNotExpired, st.ID, st.Proposal.Expires.Format(time.RFC3339))
	}
	if st.Ready(reg) {
		return State{}, LogEntry{}, fmt.Errorf("%w: %s has its quorum and must be executed", ErrNotExpired, st.ID)
	}
	next := st.clone()
	next.close(StatusExpired, now, "expired")
	return next, next.entry(EntryExpired, now), nil
}

// Execute closes proposal st as executed at now, with outcome (printable
// text, e.g. "key payments version 3 created"). It requires Ready
// (ErrNotReady); the vault calls it once it has carried the operation out
// (for kinds that need the HSM, after the HSM work and in the same atomic
// replicated write as its results).
//
// For kinds that change the registry (Kind.ChangesRegistry) it returns the
// new registry, otherwise reg itself. If the registry has changed since
// the proposal so that it can no longer be applied (say two removals that
// together go below M), it fails with that error and the vault should
// close the proposal with Fail.
func Execute(reg *Registry, st State, now time.Time, outcome string) (State, *Registry, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, nil, LogEntry{}, err
	}
	if err := checkText("outcome", outcome, MaxOutcomeLen, true); err != nil {
		return State{}, nil, LogEntry{}, err
	}
	if err := st.readyCheck(reg); err != nil {
		return State{}, nil, LogEntry{}, err
	}
	nextReg, err := reg.apply(st.Proposal, now)
	if err != nil {
		return State{}, nil, LogEntry{}, fmt.Errorf("execute %s: %w", st.ID, err)
	}
	next := st.clone()
	next.close(StatusExecuted, now, outcome)
	e := next.entry(EntryExecuted, now)
	e.Detail = outcome
	if st.Proposal.Kind().ChangesRegistry() {
		if e.Data, err = nextReg.Marshal(); err != nil {
			return State{}, nil, LogEntry{}, err
		}
	}
	return next, nextReg, e, nil
}

// Fail closes proposal st, which has its quorum, as failed at now with
// reason (printable text). The vault uses it when the approved operation
// cannot be carried out for a lasting reason (the key was deleted
// meanwhile); a passing one (HSM unavailable) is retried instead.
func Fail(reg *Registry, st State, now time.Time, reason string) (State, LogEntry, error) {
	now, err := normalNow(now)
	if err != nil {
		return State{}, LogEntry{}, err
	}
	if err := checkText("reason", reason, MaxOutcomeLen, true); err != nil {
		return State{}, LogEntry{}, err
	}
	if err := st.readyCheck(reg); err != nil {
		return State{}, LogEntry{}, err
	}
	next := st.clone()
	next.close(StatusFailed, now, reason)
	e := next.entry(EntryFailed, now)
	e.Detail = reason
	return next, e, nil
}

// Ready reports whether st is pending and has M valid approvals under reg:
// approvals by custodians still registered with the key they signed with,
// each counted once. Approvals by custodians removed since, or re-keyed,
// no longer count; a quorum change applies to pending proposals.
func (st State) Ready(reg *Registry) bool {
	return st.Status == StatusPending && st.validApprovals(reg) >= reg.Quorum
}

// Reachable reports whether st can still reach M valid approvals: the
// valid approvals plus the registered custodians other than the proposer
// who have not voted are at least M.
func (st State) Reachable(reg *Registry) bool { return st.potential(reg) >= reg.Quorum }

// ValidApprovals returns how many of st's approvals count under reg.
func (st State) ValidApprovals(reg *Registry) int { return st.validApprovals(reg) }

func (st State) validApprovals(reg *Registry) int {
	n := 0
	for _, a := range st.Approvals {
		if c, ok := reg.Lookup(a.Custodian); ok && c.Fingerprint() == a.Key && eligible(c, st.Proposal) {
			n++
		}
	}
	return n
}

func (st State) potential(reg *Registry) int {
	n := st.validApprovals(reg)
	for _, c := range reg.Custodians {
		if eligible(c, st.Proposal) && !st.approvedBy(c.Name) && !st.rejectedBy(c.Name) {
			n++
		}
	}
	return n
}

func (st State) approvedBy(name string) bool {
	return slices.ContainsFunc(st.Approvals, func(a Approval) bool { return a.Custodian == name })
}

func (st State) rejectedBy(name string) bool {
	return slices.ContainsFunc(st.Rejections, func(r Rejection) bool { return r.Custodian == name })
}

// voter checks that st takes votes at now and returns the registered
// custodian that name and key identify.
func (st State) voter(reg *Registry, name string, key Fingerprint, now time.Time) (Custodian, error) {
	if err := st.Validate(); err != nil {
		return Custodian{}, err
	}
	if st.Status != StatusPending {
		return Custodian{}, fmt.Errorf("%w: %s is %s", ErrClosed, st.ID, st.Status)
	}
	if !now.Before(st.Proposal.Expires) {
		return Custodian{}, fmt.Errorf("%w: %s expired at %s", ErrExpired, st.ID, st.Proposal.Expires.Format(time.RFC3339))
	}
	if name == "" {
		c, ok := reg.LookupKey(key)
		if !ok {
			return Custodian{}, fmt.Errorf("%w: no custodian has key %s", ErrUnknownKey, key.Short())
		}
		return c, nil
	}
	if err := checkName("custodian name", name); err != nil {
		return Custodian{}, err
	}
	c, ok := reg.Lookup(name)
	if !ok {
		return Custodian{}, fmt.Errorf("%w: %s", ErrUnknownCustodian, name)
	}
	if c.Fingerprint() != key {
		return Custodian{}, fmt.Errorf("%w: %s has key %s, not %s", ErrUnknownKey, name, c.Fingerprint().Short(), key.Short())
	}
	return c, nil
}

// checkSignature verifies sig over msg with c's registered key.
func checkSignature(c Custodian, msg, sig []byte) error {
	if len(sig) == 0 || len(sig) > maxSignatureLen {
		return fmt.Errorf("%w: signature must be 1 to %d bytes", ErrBadSignature, maxSignatureLen)
	}
	return verifyDER(c.PublicKey, msg, sig)
}

func (st State) readyCheck(reg *Registry) error {
	if err := st.Validate(); err != nil {
		return err
	}
	if st.Status != StatusPending {
		return fmt.Errorf("%w: %s is %s", ErrClosed, st.ID, st.Status)
	}
	if n := st.validApprovals(reg); n < reg.Quorum {
		return fmt.Errorf("%w: %s has %d of %d approvals", ErrNotReady, st.ID, n, reg.Quorum)
	}
	return nil
}

func (st *State) close(s Status, now time.Time, outcome string) {
	st.Status, st.Closed, st.Outcome = s, now, outcome
}

// clone returns a copy of st whose slices can be appended to without
// touching st's.
func (st State) clone() State {
	st.Approvals = slices.Clip(slices.Clone(st.Approvals))
	st.Rejections = slices.Clip(slices.Clone(st.Rejections))
	return st
}

// entry returns the (unchained) log entry for a step that left st as it
// is.
func (st State) entry(t EntryType, now time.Time) LogEntry {
	return LogEntry{Type: t, Time: now, ProposalID: st.ID, Transcript: st.Transcript, Status: st.Status}
}
