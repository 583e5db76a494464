package ceremony

import (
	"crypto"
	"fmt"
	"time"
)

// Signer is a custodian's signing key. Sign signs the whole message (the
// signer hashes it as its algorithm requires: pure Ed25519, or ECDSA P-256
// over SHA-256 with an ASN.1 DER signature); Public returns an
// ed25519.PublicKey or *ecdsa.PublicKey on P-256.
//
// FileSigner implements it for dev mode and tests. A PKCS#11 signer (the
// custodian's key as a private-key object in their own token, found by
// label, signing with CKM_EDDSA, or CKM_ECDSA over a SHA-256 digest made in
// Go with the r||s result converted to ASN.1) implements the same two
// methods and drops in unchanged; package keys does not offer signing with
// a token object by label yet (its Sign works on wrapped working keys), so
// that signer is not here.
//
// Implementations say whether they are safe for concurrent use.
type Signer interface {
	Public() crypto.PublicKey
	Sign(msg []byte) ([]byte, error)
}

// signChecked signs msg with s and verifies the result with s's public key,
// so that a faulty token is caught on the custodian's machine rather than
// as a refused approval. It returns the signature and the key's
// fingerprint.
func signChecked(s Signer, msg []byte) ([]byte, Fingerprint, error) {
	der, err := MarshalPublicKey(s.Public())
	if err != nil {
		return nil, Fingerprint{}, err
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, Fingerprint{}, fmt.Errorf("custodian key: sign: %w", err)
	}
	if err := Verify(s.Public(), msg, sig); err != nil {
		return nil, Fingerprint{}, fmt.Errorf("custodian key made a signature that does not verify: %w", err)
	}
	return sig, FingerprintOf(der), nil
}

// SignApproval signs an approval of proposal p with custodian key s, for
// custodian name (empty: let the vault find the custodian by key). The CLI
// shows Describe(p) and the transcript hash before calling it.
func SignApproval(s Signer, name string, p Proposal) (Approval, error) {
	h, err := p.Transcript()
	if err != nil {
		return Approval{}, err
	}
	sig, fp, err := signChecked(s, ApprovalMessage(h.ID(), h))
	if err != nil {
		return Approval{}, err
	}
	return Approval{Custodian: name, Key: fp, Signature: sig}, nil
}

// SignRejection signs a rejection of proposal p, with a reason (printable
// ASCII, at most MaxReasonLen characters; may be empty).
func SignRejection(s Signer, name string, p Proposal, reason string) (Rejection, error) {
	if err := checkText("reason", reason, MaxReasonLen, false); err != nil {
		return Rejection{}, err
	}
	h, err := p.Transcript()
	if err != nil {
		return Rejection{}, err
	}
	sig, fp, err := signChecked(s, RejectionMessage(h.ID(), h, reason))
	if err != nil {
		return Rejection{}, err
	}
	return Rejection{Custodian: name, Key: fp, Reason: reason, Signature: sig}, nil
}

// SignAcknowledgement makes the registration of custodian name with key s:
// it signs AcknowledgementMessage for the key's fingerprint at time at
// (the CLI shows AcknowledgementStatement first). The result has no
// registration time; use it in NewRegistry or as an AddCustodian proposal
// (Custodian.AddProposal).
func SignAcknowledgement(s Signer, name string, at time.Time) (Custodian, error) {
	if err := checkName("custodian name", name); err != nil {
		return Custodian{}, err
	}
	at, err := normalNow(at)
	if err != nil {
		return Custodian{}, err
	}
	der, err := MarshalPublicKey(s.Public())
	if err != nil {
		return Custodian{}, err
	}
	sig, _, err := signChecked(s, AcknowledgementMessage(name, FingerprintOf(der), at))
	if err != nil {
		return Custodian{}, err
	}
	c := Custodian{Name: name, PublicKey: der, Acknowledged: at, AckSignature: sig}
	return c, c.validate(true)
}

// AddProposal returns the parameters of a proposal to register c.
func (c Custodian) AddProposal() AddCustodian {
	return AddCustodian{Name: c.Name, PublicKey: c.PublicKey, Acknowledged: c.Acknowledged, AckSignature: c.AckSignature}
}
