package ceremony

import (
	"fmt"
	"strconv"
)

// Kind says what a proposal does. The numbers are part of the canonical
// encoding (and so of every transcript hash): never reuse or renumber
// them. A plain value, safe for concurrent use.
type Kind uint8

const (
	// KindCreateKey creates a working key (version 1).
	KindCreateKey Kind = 1
	// KindRotateKey adds a new version to a key and makes it the one that
	// encrypts and signs.
	KindRotateKey Kind = 2
	// KindSetMinDecryptionVersion retires every version below a given one.
	KindSetMinDecryptionVersion Kind = 3
	// KindDestroyVersion destroys one retired version of a key.
	KindDestroyVersion Kind = 4
	// KindChangeSchemeKey points a token scheme at another key.
	KindChangeSchemeKey Kind = 5
	// KindAddCustodian registers a custodian.
	KindAddCustodian Kind = 6
	// KindRemoveCustodian unregisters a custodian.
	KindRemoveCustodian Kind = 7
	// KindChangeQuorum changes M, the number of approvals a ceremony needs.
	KindChangeQuorum Kind = 8
	// KindRotateMasterKey replaces the master key with one made from new
	// components and rewraps every working key under it.
	KindRotateMasterKey Kind = 9
)

var kindNames = map[Kind]string{
	KindCreateKey:               "create-key",
	KindRotateKey:               "rotate-key",
	KindSetMinDecryptionVersion: "set-min-decryption-version",
	KindDestroyVersion:          "destroy-version",
	KindChangeSchemeKey:         "change-scheme-key",
	KindAddCustodian:            "add-custodian",
	KindRemoveCustodian:         "remove-custodian",
	KindChangeQuorum:            "change-quorum",
	KindRotateMasterKey:         "rotate-master-key",
}

// String returns the kind's stable name, e.g. "rotate-key" (the CLI's
// `ceremony propose KIND`).
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { _, ok := kindNames[k]; return ok }

// ChangesRegistry reports whether executing a proposal of this kind
// changes the custodian registry (see Execute).
func (k Kind) ChangesRegistry() bool {
	return k == KindAddCustodian || k == KindRemoveCustodian || k == KindChangeQuorum
}

// ParseKind is the inverse of String.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown ceremony kind", ErrInvalid)
}

// Purpose says what a working key is for. The numbers mirror
// vaultpb.KeyPurpose and are part of the canonical encoding: never reuse
// or renumber them. A plain value, safe for concurrent use.
type Purpose uint8

const (
	// PurposePANEncryption: AES-256-GCM encryption of PANs in vaulted schemes.
	PurposePANEncryption Purpose = 1
	// PurposeFPE: the FF1 round function.
	PurposeFPE Purpose = 2
	// PurposeFingerprint: HMAC fingerprints of PANs.
	PurposeFingerprint Purpose = 3
	// PurposeSigning: signing payment messages.
	PurposeSigning Purpose = 4
)

var purposeNames = map[Purpose]string{
	PurposePANEncryption: "pan-encryption",
	PurposeFPE:           "fpe",
	PurposeFingerprint:   "fingerprint",
	PurposeSigning:       "signing",
}

// String returns the purpose's stable name, e.g. "pan-encryption".
func (p Purpose) String() string {
	if n, ok := purposeNames[p]; ok {
		return n
	}
	return "purpose(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool { _, ok := purposeNames[p]; return ok }

// ParsePurpose is the inverse of String.
func ParsePurpose(s string) (Purpose, error) {
	for p, n := range purposeNames {
		if n == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown key purpose", ErrInvalid)
}
