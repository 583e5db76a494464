package ceremony

import (
	"fmt"
	"time"
)

const (
	statePrefix = "panvault-ceremony-state-v1"
	// maxVotes bounds approvals plus rejections of one proposal: every
	// registered custodian votes at most once, and custodians can change
	// while a proposal is open.
	maxVotes = 2 * MaxCustodians
)

// Validate checks a State's consistency: a valid proposal whose id and
// transcript match; a known status, with Closed and Outcome set exactly
// when closed; approvals and rejections well formed, each custodian voting
// at most once, and no approval by the proposer. It does not re-verify
// signatures (see Replay for a full audit).
func (st State) Validate() error {
	canon, err := st.Proposal.Marshal()
	if err != nil {
		return err
	}
	h := transcriptOf(canon)
	if h != st.Transcript || h.ID() != st.ID {
		return fmt.Errorf("%w: id or transcript hash does not match the proposal", ErrInvalid)
	}
	if !st.Status.Valid() {
		return fmt.Errorf("%w: unknown status", ErrInvalid)
	}
	if st.Status == StatusPending {
		if !st.Closed.IsZero() || st.Outcome != "" {
			return fmt.Errorf("%w: pending proposal has a closing time or outcome", ErrInvalid)
		}
	} else {
		if !encodableTime(st.Closed) {
			return fmt.Errorf("%w: closed proposal needs a closing time", ErrInvalid)
		}
		if err := checkText("outcome", st.Outcome, MaxOutcomeLen, true); err != nil {
			return err
		}
	}
	if len(st.Approvals)+len(st.Rejections) > maxVotes {
		return fmt.Errorf("%w: more than %d votes", ErrInvalid, maxVotes)
	}
	voted := make(map[string]bool, len(st.Approvals)+len(st.Rejections))
	vote := func(name string, key Fingerprint, sig []byte, at string) error {
		if err := checkName("custodian", name); err != nil {
			return err
		}
		if voted[name] {
			return fmt.Errorf("%w: %s voted twice", ErrInvalid, name)
		}
		voted[name] = true
		if key.IsZero() {
			return fmt.Errorf("%w: vote by %s has no key", ErrInvalid, name)
		}
		if len(sig) == 0 || len(sig) > maxSignatureLen {
			return fmt.Errorf("%w: vote by %s: signature must be 1 to %d bytes", ErrInvalid, name, maxSignatureLen)
		}
		if at != "" {
			return fmt.Errorf("%w: vote by %s: %s", ErrInvalid, name, at)
		}
		return nil
	}
	for _, a := range st.Approvals {
		if err := vote(a.Custodian, a.Key, a.Signature, timeProblem(a.At)); err != nil {
			return err
		}
		if a.Custodian == st.Proposal.Proposer {
			return fmt.Errorf("%w: %s approved own proposal", ErrInvalid, a.Custodian)
		}
	}
	for _, r := range st.Rejections {
		if err := vote(r.Custodian, r.Key, r.Signature, timeProblem(r.At)); err != nil {
			return err
		}
		if err := checkText("reason", r.Reason, MaxReasonLen, false); err != nil {
			return err
		}
	}
	return nil
}

func timeProblem(t time.Time) string {
	if !encodableTime(t) {
		return "time is required"
	}
	return ""
}

// Marshal returns the stored form of a State (FORMAT.md):
//
//	lp("panvault-ceremony-state-v1") lp(canonical proposal) u8(status)
//	i64(closed ns, 0 while pending) lp(outcome)
//	u32(n) n * ( lp(custodian) key(32) lp(signature) i64(at ns) )
//	u32(n) n * ( lp(custodian) key(32) lp(reason) lp(signature) i64(at ns) )
//
// It fails on an invalid State.
func (st State) Marshal() ([]byte, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	canon, err := st.Proposal.Marshal()
	if err != nil {
		return nil, err
	}
	var e encoder
	e.str(statePrefix)
	e.lp(canon)
	e.u8(uint8(st.Status))
	if st.Closed.IsZero() {
		e.i64(0)
	} else {
		e.time(st.Closed)
	}
	e.str(st.Outcome)
	e.u32(uint32(len(st.Approvals)))
	for _, a := range st.Approvals {
		e.str(a.Custodian)
		e.fixed(a.Key[:])
		e.lp(a.Signature)
		e.time(a.At)
	}
	e.u32(uint32(len(st.Rejections)))
	for _, r := range st.Rejections {
		e.str(r.Custodian)
		e.fixed(r.Key[:])
		e.str(r.Reason)
		e.lp(r.Signature)
		e.time(r.At)
	}
	return e.b, nil
}

// ParseState decodes a stored State strictly, recomputes ID and
// Transcript from the proposal, and validates the result. Errors wrap
// ErrMalformed.
func ParseState(b []byte) (State, error) {
	d := &decoder{b: b}
	d.prefix(statePrefix)
	canon := d.lp(maxProposalLen, "proposal")
	var st State
	st.Status = Status(d.u8("status"))
	st.Closed = d.time("closed")
	st.Outcome = d.str(MaxOutcomeLen, "outcome")
	na := d.u32("approval count")
	if d.err == nil && na > maxVotes {
		d.fail("more than %d approvals", maxVotes)
	}
	if d.err == nil && na > 0 {
		st.Approvals = make([]Approval, na)
	}
	for i := range st.Approvals {
		a := &st.Approvals[i]
		a.Custodian = d.str(MaxNameLen, "approval custodian")
		d.fixed(a.Key[:], "approval key")
		a.Signature = d.lp(maxSignatureLen, "approval signature")
		a.At = d.time("approval time")
	}
	nr := d.u32("rejection count")
	if d.err == nil && nr > maxVotes {
		d.fail("more than %d rejections", maxVotes)
	}
	if d.err == nil && nr > 0 {
		st.Rejections = make([]Rejection, nr)
	}
	for i := range st.Rejections {
		r := &st.Rejections[i]
		r.Custodian = d.str(MaxNameLen, "rejection custodian")
		d.fixed(r.Key[:], "rejection key")
		r.Reason = d.str(MaxReasonLen, "rejection reason")
		r.Signature = d.lp(maxSignatureLen, "rejection signature")
		r.At = d.time("rejection time")
	}
	if err := d.finish(); err != nil {
		return State{}, err
	}
	p, err := ParseProposal(canon)
	if err != nil {
		return State{}, err
	}
	st.Proposal = p
	st.Transcript = transcriptOf(canon)
	st.ID = st.Transcript.ID()
	if err := st.Validate(); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return st, nil
}
