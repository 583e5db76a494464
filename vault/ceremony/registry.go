package ceremony

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Quorum limits.
const (
	// MinQuorum is the least M allowed. Dual control (PCI DSS 3.6.1.2,
	// 3.7.6) means no one person can carry out a key-management operation
	// alone, so a ceremony always needs at least two custodians' approvals;
	// there is no single-custodian mode, not even for tests.
	MinQuorum = 2
	// MaxCustodians bounds N.
	MaxCustodians = 32
)

const registryPrefix = "panvault-custodian-registry-v1"

// Registry is the set of registered custodians and the quorum M: a
// ceremony is carried out once M distinct custodians (other than its
// proposer) have approved it. N is the number of custodians; always
// MinQuorum <= M <= N <= MaxCustodians. Names are unique and so are public
// keys: one key shared by two custodians would let one person approve
// twice.
//
// A Registry is a value: no function of this package modifies one; changes
// produce a new Registry (see Execute). Safe for concurrent reads.
type Registry struct {
	// Custodians, in strictly ascending order of name.
	Custodians []Custodian
	// Quorum is M.
	Quorum int
}

// NewRegistry makes the registry a cluster starts with (at initialisation,
// before any ceremony can run): the given custodians, all registered at
// now, with quorum m. Every custodian's acknowledgement of duties is
// verified and must be dated no later than now (plus MaxClockSkew).
func NewRegistry(custodians []Custodian, m int, now time.Time) (*Registry, error) {
	if !encodableTime(now) {
		return nil, fmt.Errorf("%w: registration time out of range", ErrInvalid)
	}
	now = time.Unix(0, now.UnixNano()).UTC()
	r := &Registry{Custodians: slices.Clone(custodians), Quorum: m}
	for i := range r.Custodians {
		r.Custodians[i].Registered = now
		if r.Custodians[i].Acknowledged.After(now.Add(MaxClockSkew)) {
			return nil, fmt.Errorf("%w: custodian %d: acknowledgement dated in the future", ErrInvalid, i+1)
		}
	}
	slices.SortFunc(r.Custodians, func(a, b Custodian) int { return strings.Compare(a.Name, b.Name) })
	if err := r.Verify(); err != nil {
		return nil, err
	}
	return r, nil
}

// N returns the number of registered custodians.
func (r *Registry) N() int { return len(r.Custodians) }

// Lookup returns the custodian named name.
func (r *Registry) Lookup(name string) (Custodian, bool) {
	i, ok := slices.BinarySearchFunc(r.Custodians, name, func(c Custodian, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		return Custodian{}, false
	}
	return r.Custodians[i], true
}

// LookupKey returns the custodian whose public key has fingerprint fp.
func (r *Registry) LookupKey(fp Fingerprint) (Custodian, bool) {
	for _, c := range r.Custodians {
		if c.Fingerprint() == fp {
			return c, true
		}
	}
	return Custodian{}, false
}

// Validate checks the registry's structure: each custodian well formed
// with a registration time, names strictly ascending, keys unique, and
// MinQuorum <= M <= N. It does not verify acknowledgements (see Verify).
func (r *Registry) Validate() error {
	n := len(r.Custodians)
	if n > MaxCustodians {
		return fmt.Errorf("%w: more than %d custodians", ErrQuorum, MaxCustodians)
	}
	if r.Quorum < MinQuorum || r.Quorum > n {
		return fmt.Errorf("%w: quorum %d of %d custodians: need %d <= M <= N", ErrQuorum, r.Quorum, n, MinQuorum)
	}
	keys := make(map[Fingerprint]string, n)
	for i, c := range r.Custodians {
		if err := c.validate(false); err != nil {
			return fmt.Errorf("custodian %d: %w", i+1, err)
		}
		if !encodableTime(c.Registered) {
			return fmt.Errorf("%w: custodian %s: registration time is required", ErrInvalid, c.Name)
		}
		if i > 0 && r.Custodians[i-1].Name >= c.Name {
			if r.Custodians[i-1].Name == c.Name {
				return fmt.Errorf("%w: custodian %s listed twice", ErrCustodianExists, c.Name)
			}
			return fmt.Errorf("%w: custodians not in name order", ErrInvalid)
		}
		fp := c.Fingerprint()
		if other, dup := keys[fp]; dup {
			return fmt.Errorf("%w: custodians %s and %s share key %s", ErrCustodianExists, other, c.Name, fp.Short())
		}
		keys[fp] = c.Name
	}
	return nil
}

// Verify checks the structure (Validate) and every custodian's signed
// acknowledgement of duties.
func (r *Registry) Verify() error {
	if err := r.Validate(); err != nil {
		return err
	}
	for _, c := range r.Custodians {
		if err := c.VerifyAcknowledgement(); err != nil {
			return err
		}
	}
	return nil
}

// eligible reports whether custodian c may approve proposal p: anyone
// registered except the proposer.
func eligible(c Custodian, p Proposal) bool { return c.Name != p.Proposer }

// checkProposal checks a new proposal against the registry: an added
// custodian is new by name and key, a removed one exists and leaves at
// least M, a quorum change is a change within MinQuorum..N.
func (r *Registry) checkProposal(p Proposal) error {
	switch q := p.Params.(type) {
	case AddCustodian:
		if _, ok := r.Lookup(q.Name); ok {
			return fmt.Errorf("%w: %s", ErrCustodianExists, q.Name)
		}
		if other, ok := r.LookupKey(FingerprintOf(q.PublicKey)); ok {
			return fmt.Errorf("%w: key already registered for %s", ErrCustodianExists, other.Name)
		}
		if r.N() >= MaxCustodians {
			return fmt.Errorf("%w: already %d custodians", ErrQuorum, MaxCustodians)
		}
	case RemoveCustodian:
		if _, ok := r.Lookup(q.Name); !ok {
			return fmt.Errorf("%w: %s", ErrUnknownCustodian, q.Name)
		}
		if r.N()-1 < r.Quorum {
			return fmt.Errorf("%w: removing %s would leave %d custodians for a quorum of %d", ErrQuorum, q.Name, r.N()-1, r.Quorum)
		}
	case ChangeQuorum:
		if int(q.M) > r.N() {
			return fmt.Errorf("%w: quorum %d exceeds the %d custodians", ErrQuorum, q.M, r.N())
		}
		if int(q.M) == r.Quorum {
			return fmt.Errorf("%w: quorum is already %d", ErrInvalid, q.M)
		}
	}
	return nil
}

// apply returns the registry after executing proposal p at now. Kinds that
// do not change the registry return r itself.
func (r *Registry) apply(p Proposal, now time.Time) (*Registry, error) {
	if !p.Kind().ChangesRegistry() {
		return r, nil
	}
	if err := r.checkProposal(p); err != nil {
		return nil, err
	}
	next := &Registry{Custodians: slices.Clone(r.Custodians), Quorum: r.Quorum}
	switch q := p.Params.(type) {
	case AddCustodian:
		c := q.custodian()
		c.Registered = now
		next.Custodians = append(next.Custodians, c)
		slices.SortFunc(next.Custodians, func(a, b Custodian) int { return strings.Compare(a.Name, b.Name) })
	case RemoveCustodian:
		next.Custodians = slices.DeleteFunc(next.Custodians, func(c Custodian) bool { return c.Name == q.Name })
	case ChangeQuorum:
		next.Quorum = int(q.M)
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	return next, nil
}

// Marshal returns the registry's canonical encoding (FORMAT.md):
//
//	lp("panvault-custodian-registry-v1") u32(M) u32(N)
//	N * ( lp(name) lp(public key DER) i64(acknowledged ns)
//	      lp(ack signature) i64(registered ns) )
//
// for storage in replicated state. It fails on an invalid registry.
func (r *Registry) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var e encoder
	e.str(registryPrefix)
	e.u32(uint32(r.Quorum))
	e.u32(uint32(len(r.Custodians)))
	for _, c := range r.Custodians {
		e.str(c.Name)
		e.lp(c.PublicKey)
		e.time(c.Acknowledged)
		e.lp(c.AckSignature)
		e.time(c.Registered)
	}
	return e.b, nil
}

// ParseRegistry decodes a canonical registry strictly and validates its
// structure (not the acknowledgement signatures, which were verified when
// each custodian was registered; call Verify to check them again). Errors
// wrap ErrMalformed.
func ParseRegistry(b []byte) (*Registry, error) {
	d := &decoder{b: b}
	d.prefix(registryPrefix)
	m := d.u32("quorum")
	n := d.u32("custodian count")
	if d.err == nil && n > MaxCustodians {
		d.fail("more than %d custodians", MaxCustodians)
	}
	if d.err == nil && m > MaxCustodians {
		d.fail("quorum above %d", MaxCustodians)
	}
	r := &Registry{Quorum: int(m)}
	if d.err == nil {
		r.Custodians = make([]Custodian, n)
	}
	for i := range r.Custodians {
		c := &r.Custodians[i]
		c.Name = d.str(MaxNameLen, "custodian name")
		c.PublicKey = d.lp(maxPublicKeyLen, "public key")
		c.Acknowledged = d.time("acknowledged")
		c.AckSignature = d.lp(maxSignatureLen, "acknowledgement signature")
		c.Registered = d.time("registered")
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return r, nil
}
