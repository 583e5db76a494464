package ceremony

import "time"

// Duties is the statement of key-custodian duties every custodian signs
// when registered (PCI DSS v4.0 requirement 3.7.8: custodians formally
// acknowledge that they understand and accept their responsibilities).
// It is part of the signed acknowledgement: changing a single character
// is a new format version (a new ackPrefix), never an edit of this one.
const Duties = `I accept the duties of a panvault key custodian. I will:
1. Keep my custodian signing key, its PIN and any master-key component
   entrusted to me under my sole control; never disclose, copy, share or
   lend them, nor let anyone use them on my behalf.
2. Read every ceremony proposal in full, check it against an authorised
   change request, and approve only what I have verified myself. I will
   never approve on someone else's instruction alone.
3. Never hold, see or combine more than my own component of a master key,
   and never ask another custodian for theirs.
4. Keep components only in the protected form in which they were issued
   to me, and return or destroy them when the key-management procedure
   says so.
5. Report at once to security management any suspected loss, disclosure
   or compromise of my key, PIN or component, and any attempt to make me
   break these duties.
6. Hand back my role, token and components when I leave the role.
I understand that every approval and rejection I sign is recorded in the
vault's ceremony log and attributed to me.`

// Domain prefixes of the signed messages. Each names exactly one purpose,
// so a signature made for one can never be accepted as another (an
// approval is not a rejection, a registration is not an approval), and no
// custodian signature can be replayed into any other protocol that signs
// with the same key.
const (
	approvalPrefix  = "panvault-ceremony-approval-v1"
	rejectionPrefix = "panvault-ceremony-rejection-v1"
	ackPrefix       = "panvault-custodian-ack-v1"
)

// AcknowledgementStatement is the text a custodian reads and signs to be
// registered: a header naming them, their key's fingerprint and the date
// (UTC, to the second as shown; the signature covers the exact time), then
// Duties.
func AcknowledgementStatement(name string, key Fingerprint, at time.Time) string {
	return "panvault key custodian acknowledgement\n" +
		"Custodian: " + name + "\n" +
		"Signing key: " + key.String() + "\n" +
		"Date: " + at.UTC().Format(time.RFC3339Nano) + "\n\n" +
		Duties + "\n"
}

// AcknowledgementMessage is what the custodian's key signs to acknowledge
// the duties: lp("panvault-custodian-ack-v1") || lp(statement) ||
// i64(at ns), with the statement from AcknowledgementStatement.
func AcknowledgementMessage(name string, key Fingerprint, at time.Time) []byte {
	var e encoder
	e.str(ackPrefix)
	e.str(AcknowledgementStatement(name, key, at))
	e.i64(at.UnixNano())
	return e.b
}

// ApprovalMessage is what a custodian's key signs to approve a proposal:
// lp("panvault-ceremony-approval-v1") || transcript hash (32) || lp(id).
func ApprovalMessage(id string, transcript Hash) []byte {
	var e encoder
	e.str(approvalPrefix)
	e.fixed(transcript[:])
	e.str(id)
	return e.b
}

// RejectionMessage is what a custodian's key signs to reject a proposal:
// lp("panvault-ceremony-rejection-v1") || transcript hash (32) || lp(id)
// || lp(reason). The reason is signed so that it cannot be changed after
// the fact.
func RejectionMessage(id string, transcript Hash, reason string) []byte {
	var e encoder
	e.str(rejectionPrefix)
	e.fixed(transcript[:])
	e.str(id)
	e.str(reason)
	return e.b
}
