package ceremony

import (
	"fmt"
	"strings"
	"time"
)

const plainTime = "2006-01-02 15:04:05 UTC"

func plain(t time.Time) string { return t.UTC().Format(plainTime) }

// Describe says in plain words what proposal p does, who proposed it,
// when, until when it can be approved, and its transcript hash: what the
// CLI prints before a custodian signs. Every string in a valid proposal
// is printable ASCII, so the text shows exactly what is signed.
func Describe(p Proposal) (string, error) {
	h, err := p.Transcript()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Proposal %s (%s)\n", h.ID(), p.Kind())
	fmt.Fprintf(&b, "  %s\n", Sentence(p.Params))
	fmt.Fprintf(&b, "  Proposed by %s at %s.\n", p.Proposer, plain(p.Created))
	fmt.Fprintf(&b, "  Open for approval until %s.\n", plain(p.Expires))
	fmt.Fprintf(&b, "  Transcript hash: sha256:%s\n", h)
	return b.String(), nil
}

// Sentence says in one or two plain sentences what the parameters do.
func Sentence(params Params) string {
	switch q := params.(type) {
	case CreateKey:
		return fmt.Sprintf("Create key %s: type %s, for %s, cryptoperiod %s.", q.Name, q.Type, q.Purpose, period(q.Cryptoperiod))
	case RotateKey:
		return fmt.Sprintf("Rotate key %s to a new version. The new version encrypts and signs from then on; older versions still decrypt and verify.", q.Name)
	case SetMinDecryptionVersion:
		if q.Version == 1 {
			return fmt.Sprintf("Set the minimum decryption version of key %s to 1: no version is retired.", q.Name)
		}
		return fmt.Sprintf("Set the minimum decryption version of key %s to %d: versions below %d are retired and no longer decrypt or verify.", q.Name, q.Version, q.Version)
	case DestroyVersion:
		return fmt.Sprintf("DESTROY version %d of key %s. Data that only this version can decrypt becomes unrecoverable. This cannot be undone.", q.Version, q.Name)
	case ChangeSchemeKey:
		return fmt.Sprintf("Make token scheme %s use key %s from now on.", q.Scheme, q.Key)
	case AddCustodian:
		alg := "unsupported"
		if _, a, err := ParsePublicKey(q.PublicKey); err == nil {
			alg = a.String()
		}
		return fmt.Sprintf("Register %s as a key custodian with %s key %s. They signed the acknowledgement of custodian duties at %s.",
			q.Name, alg, FingerprintOf(q.PublicKey), plain(q.Acknowledged))
	case RemoveCustodian:
		return fmt.Sprintf("Remove custodian %s. Their approvals of open proposals stop counting.", q.Name)
	case ChangeQuorum:
		return fmt.Sprintf("Change the quorum: every ceremony will need %d custodian approvals.", q.M)
	case RotateMasterKey:
		kcvs := make([]string, len(q.ComponentKCVs))
		for i, k := range q.ComponentKCVs {
			kcvs[i] = k.String()
		}
		return fmt.Sprintf("Replace the master key with a new one (KCV %s) made from %d components with KCVs %s, and rewrap every working key under it.",
			q.MasterKCV, len(q.ComponentKCVs), strings.Join(kcvs, ", "))
	}
	return "Unknown operation."
}

// period renders a cryptoperiod in days when it is whole days.
func period(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		if d == day {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// DescribeState is Describe plus the proposal's status and votes under
// registry reg (for `panvault ceremony show ID`).
func DescribeState(st State, reg *Registry) (string, error) {
	head, err := Describe(st.Proposal)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(head)
	switch st.Status {
	case StatusPending:
		n := st.ValidApprovals(reg)
		ready := "waiting for approvals"
		switch {
		case st.Ready(reg):
			ready = "ready to be carried out"
		case !st.Reachable(reg):
			ready = "can no longer reach its quorum"
		}
		fmt.Fprintf(&b, "  Status: pending, %d of %d approvals, %s.\n", n, reg.Quorum, ready)
	default:
		fmt.Fprintf(&b, "  Status: %s at %s: %s.\n", st.Status, plain(st.Closed), st.Outcome)
	}
	for _, a := range st.Approvals {
		note := ""
		if c, ok := reg.Lookup(a.Custodian); !ok || c.Fingerprint() != a.Key {
			note = " (no longer counts: custodian removed or re-keyed)"
		}
		fmt.Fprintf(&b, "  Approved by %s at %s with key %s%s.\n", a.Custodian, plain(a.At), a.Key.Short(), note)
	}
	for _, r := range st.Rejections {
		reason := ""
		if r.Reason != "" {
			reason = ": " + r.Reason
		}
		fmt.Fprintf(&b, "  Rejected by %s at %s with key %s%s.\n", r.Custodian, plain(r.At), r.Key.Short(), reason)
	}
	return b.String(), nil
}
