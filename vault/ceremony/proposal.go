package ceremony

import (
	"crypto/sha256"
	"fmt"
	"io"
	"time"
)

// Proposal lifetimes and clock tolerance.
const (
	// MinTTL and MaxTTL bound how long a proposal stays open for approval.
	MinTTL = time.Minute
	MaxTTL = 30 * 24 * time.Hour
	// DefaultTTL is the lifetime the CLI proposes unless told otherwise:
	// long enough to gather custodians across time zones, short enough
	// that approvals reflect a current decision.
	DefaultTTL = 72 * time.Hour
	// MaxClockSkew is how far a time from another machine (a proposal's
	// creation time, an acknowledgement's date) may be ahead of the time
	// it is checked against.
	MaxClockSkew = 5 * time.Minute
	// NonceSize is the length of a proposal's random nonce.
	NonceSize = 16
)

const (
	proposalPrefix = "panvault-ceremony-v1"
	maxParamsLen   = 1024
	// maxProposalLen bounds a whole canonical proposal.
	maxProposalLen = 4 + len(proposalPrefix) + 1 + NonceSize + 4 + MaxProposerLen + 8 + 8 + 4 + maxParamsLen
)

// Proposal is a ceremony proposal: what is to be done (Params), who asked
// for it, when, until when custodians may approve it, and a random nonce.
// Its canonical encoding (Marshal, FORMAT.md) is what custodians approve:
// they sign its SHA-256, the transcript hash, and its id is derived from
// that hash, so neither can be chosen apart from the content.
//
// A Proposal is a plain value: safe for concurrent reads; treat it as
// immutable once proposed.
type Proposal struct {
	Params Params
	// Proposer is who proposed it: a custodian's name when a custodian
	// proposes (then that custodian may not approve it), else the
	// proposing client's identity.
	Proposer string
	// Created and Expires are set by the vault; after Expires the
	// proposal takes no more approvals.
	Created time.Time
	Expires time.Time
	// Nonce makes every proposal's transcript (and id) unique and
	// unpredictable, even for identical parameters at the same time, so
	// an approval can never be carried over to a later proposal.
	Nonce [NonceSize]byte
}

// NewProposal makes a proposal created at now (normalised to UTC without a
// monotonic reading) that expires after ttl, with a nonce read from rand
// (crypto/rand.Reader). It validates the result.
func NewProposal(params Params, proposer string, now time.Time, ttl time.Duration, rand io.Reader) (Proposal, error) {
	p := Proposal{Params: params, Proposer: proposer}
	if !encodableTime(now) {
		return Proposal{}, fmt.Errorf("%w: creation time out of range", ErrInvalid)
	}
	p.Created = time.Unix(0, now.UnixNano()).UTC()
	if ttl < MinTTL || ttl > MaxTTL {
		return Proposal{}, fmt.Errorf("%w: lifetime must be %s to %s", ErrInvalid, MinTTL, MaxTTL)
	}
	p.Expires = p.Created.Add(ttl)
	if _, err := io.ReadFull(rand, p.Nonce[:]); err != nil {
		return Proposal{}, fmt.Errorf("proposal nonce: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Proposal{}, err
	}
	return p, nil
}

// Kind returns the kind of the proposal's parameters (0 if none).
func (p Proposal) Kind() Kind {
	if p.Params == nil {
		return 0
	}
	return p.Params.Kind()
}

// Validate checks the proposal: known, valid parameters; a proposer
// identity; creation and expiry times with MinTTL <= Expires-Created <=
// MaxTTL; a non-zero nonce; and for AddCustodian an acknowledgement dated
// no later than the creation time (plus MaxClockSkew).
func (p Proposal) Validate() error {
	if p.Params == nil || !p.Params.Kind().Valid() {
		return fmt.Errorf("%w: proposal has no known kind", ErrInvalid)
	}
	if err := p.Params.Validate(); err != nil {
		return fmt.Errorf("%s: %w", p.Params.Kind(), err)
	}
	if err := checkIdentity("proposer", p.Proposer); err != nil {
		return err
	}
	if !encodableTime(p.Created) || !encodableTime(p.Expires) {
		return fmt.Errorf("%w: creation and expiry times are required", ErrInvalid)
	}
	if ttl := p.Expires.Sub(p.Created); ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("%w: lifetime must be %s to %s", ErrInvalid, MinTTL, MaxTTL)
	}
	if p.Nonce == [NonceSize]byte{} {
		return fmt.Errorf("%w: nonce is required", ErrInvalid)
	}
	if ac, ok := p.Params.(AddCustodian); ok && ac.Acknowledged.After(p.Created.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: acknowledgement dated after the proposal", ErrInvalid)
	}
	return nil
}

// Marshal returns the canonical encoding (FORMAT.md):
//
//	lp("panvault-ceremony-v1") u8(kind) nonce(16) lp(proposer)
//	i64(created ns) i64(expires ns) lp(params)
//
// with the parameters of each kind in their fixed order (see the Params
// types). It fails on an invalid proposal.
func (p Proposal) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var params encoder
	p.Params.encode(&params)
	if len(params.b) > maxParamsLen {
		return nil, fmt.Errorf("%w: parameters longer than %d bytes", ErrInvalid, maxParamsLen)
	}
	var e encoder
	e.str(proposalPrefix)
	e.u8(uint8(p.Params.Kind()))
	e.fixed(p.Nonce[:])
	e.str(p.Proposer)
	e.time(p.Created)
	e.time(p.Expires)
	e.lp(params.b)
	return e.b, nil
}

// ParseProposal decodes a canonical encoding strictly: the prefix, a known
// kind, every length within its limit, parameters that fill their field
// exactly, no trailing bytes, and a result that passes Validate. Whatever
// it accepts, Marshal encodes back to the same bytes. Errors wrap
// ErrMalformed.
func ParseProposal(b []byte) (Proposal, error) {
	d := &decoder{b: b}
	d.prefix(proposalPrefix)
	k := Kind(d.u8("kind"))
	if d.err == nil && !k.Valid() {
		d.fail("unknown kind %d", k)
	}
	var p Proposal
	d.fixed(p.Nonce[:], "nonce")
	p.Proposer = d.str(MaxProposerLen, "proposer")
	p.Created = d.time("created")
	p.Expires = d.time("expires")
	raw := d.lp(maxParamsLen, "params")
	if err := d.finish(); err != nil {
		return Proposal{}, err
	}
	params, err := decodeParams(k, raw)
	if err != nil {
		return Proposal{}, fmt.Errorf("%s: %w", k, err)
	}
	p.Params = params
	if err := p.Validate(); err != nil {
		return Proposal{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return p, nil
}

// Transcript returns the transcript hash: SHA-256 of the canonical
// encoding. Custodians sign it (see ApprovalMessage).
func (p Proposal) Transcript() (Hash, error) {
	b, err := p.Marshal()
	if err != nil {
		return Hash{}, err
	}
	return sha256.Sum256(b), nil
}

// ID returns the proposal id: the first 16 hex digits of the transcript
// hash.
func (p Proposal) ID() (string, error) {
	h, err := p.Transcript()
	if err != nil {
		return "", err
	}
	return h.ID(), nil
}

// transcriptOf hashes a canonical proposal encoding.
func transcriptOf(canon []byte) Hash { return sha256.Sum256(canon) }
