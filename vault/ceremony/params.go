package ceremony

import (
	"fmt"
	"time"

	"github.com/panvault/panvault/keys"
)

// Params are the parameters of one kind of proposal. The set is closed: the
// implementations are the types of this file, each a plain value (safe for
// concurrent use when not mutated). Validate checks a value on its own;
// Propose checks it against the custodian registry; the vault checks it
// against its keys and schemes.
type Params interface {
	// Kind returns the proposal kind these parameters belong to.
	Kind() Kind
	// Validate checks the parameters' own rules; errors wrap ErrInvalid
	// (or ErrUnsupportedKey, ErrBadSignature for AddCustodian).
	Validate() error
	// encode appends the canonical parameter fields.
	encode(e *encoder)
}

// MaxCryptoperiod bounds a key's cryptoperiod.
const MaxCryptoperiod = 10 * 365 * 24 * time.Hour

// CreateKey creates working key Name, version 1, generated in the HSM.
// Cryptoperiod is how long a version may be used to encrypt or sign before
// it must be rotated (PCI DSS 3.6.4, NIST SP 800-57).
//
// Encoding: lp(name) u8(type) u8(purpose) i64(cryptoperiod ns).
//
// A plain value, safe for concurrent reads.
type CreateKey struct {
	Name         string
	Type         keys.KeyType
	Purpose      Purpose
	Cryptoperiod time.Duration
}

// Kind returns KindCreateKey.
func (CreateKey) Kind() Kind { return KindCreateKey }

// Validate checks the name, that type and purpose go together (AES-GCM for
// PAN encryption, AES-FF1 for FPE, HMAC for fingerprints or signing, key
// pairs for signing), and 0 < Cryptoperiod <= MaxCryptoperiod.
func (p CreateKey) Validate() error {
	if err := checkName("key name", p.Name); err != nil {
		return err
	}
	if !p.Type.Valid() {
		return fmt.Errorf("%w: unknown key type", ErrInvalid)
	}
	if !p.Purpose.Valid() {
		return fmt.Errorf("%w: unknown key purpose", ErrInvalid)
	}
	ok := false
	switch p.Type {
	case keys.KeyAES256GCM:
		ok = p.Purpose == PurposePANEncryption
	case keys.KeyAES256FF1:
		ok = p.Purpose == PurposeFPE
	case keys.KeyHMACSHA256:
		ok = p.Purpose == PurposeFingerprint || p.Purpose == PurposeSigning
	default:
		ok = p.Type.IsPair() && p.Purpose == PurposeSigning
	}
	if !ok {
		return fmt.Errorf("%w: key type %s cannot be used for %s", ErrInvalid, p.Type, p.Purpose)
	}
	if p.Cryptoperiod <= 0 || p.Cryptoperiod > MaxCryptoperiod {
		return fmt.Errorf("%w: cryptoperiod must be positive and at most %s", ErrInvalid, MaxCryptoperiod)
	}
	return nil
}

func (p CreateKey) encode(e *encoder) {
	e.str(p.Name)
	e.u8(uint8(p.Type))
	e.u8(uint8(p.Purpose))
	e.i64(int64(p.Cryptoperiod))
}

// RotateKey adds a new version to key Name; the new version encrypts and
// signs from then on, older versions still decrypt and verify.
//
// Encoding: lp(name).
//
// A plain value, safe for concurrent reads.
type RotateKey struct {
	Name string
}

// Kind returns KindRotateKey.
func (RotateKey) Kind() Kind { return KindRotateKey }

// Validate checks the name.
func (p RotateKey) Validate() error { return checkName("key name", p.Name) }

func (p RotateKey) encode(e *encoder) { e.str(p.Name) }

// SetMinDecryptionVersion retires every version of key Name below Version:
// they no longer decrypt or verify.
//
// Encoding: lp(name) u32(version).
//
// A plain value, safe for concurrent reads.
type SetMinDecryptionVersion struct {
	Name    string
	Version uint32
}

// Kind returns KindSetMinDecryptionVersion.
func (SetMinDecryptionVersion) Kind() Kind { return KindSetMinDecryptionVersion }

// Validate checks the name and Version >= 1.
func (p SetMinDecryptionVersion) Validate() error {
	if err := checkName("key name", p.Name); err != nil {
		return err
	}
	if p.Version == 0 {
		return fmt.Errorf("%w: version must be >= 1", ErrInvalid)
	}
	return nil
}

func (p SetMinDecryptionVersion) encode(e *encoder) {
	e.str(p.Name)
	e.u32(p.Version)
}

// DestroyVersion destroys version Version of key Name: its wrapped blob is
// deleted from replicated state and unloaded from every HSM. Data that only
// this version can decrypt is lost for good. The vault allows it only for
// a retired version.
//
// Encoding: lp(name) u32(version).
//
// A plain value, safe for concurrent reads.
type DestroyVersion struct {
	Name    string
	Version uint32
}

// Kind returns KindDestroyVersion.
func (DestroyVersion) Kind() Kind { return KindDestroyVersion }

// Validate checks the name and Version >= 1.
func (p DestroyVersion) Validate() error {
	if err := checkName("key name", p.Name); err != nil {
		return err
	}
	if p.Version == 0 {
		return fmt.Errorf("%w: version must be >= 1", ErrInvalid)
	}
	return nil
}

func (p DestroyVersion) encode(e *encoder) {
	e.str(p.Name)
	e.u32(p.Version)
}

// ChangeSchemeKey makes token scheme Scheme use key Key from now on.
//
// Encoding: lp(scheme) lp(key).
//
// A plain value, safe for concurrent reads.
type ChangeSchemeKey struct {
	Scheme string
	Key    string
}

// Kind returns KindChangeSchemeKey.
func (ChangeSchemeKey) Kind() Kind { return KindChangeSchemeKey }

// Validate checks both names.
func (p ChangeSchemeKey) Validate() error {
	if err := checkName("scheme name", p.Scheme); err != nil {
		return err
	}
	return checkName("key name", p.Key)
}

func (p ChangeSchemeKey) encode(e *encoder) {
	e.str(p.Scheme)
	e.str(p.Key)
}

// AddCustodian registers custodian Name with public key PublicKey (PKIX
// DER, Ed25519 or ECDSA P-256) and their signed acknowledgement of the
// custodian duties (see AcknowledgementStatement), made at Acknowledged.
// SignAcknowledgement produces these fields.
//
// Encoding: lp(name) lp(public key DER) i64(acknowledged ns) lp(ack signature).
//
// A plain value, safe for concurrent reads.
type AddCustodian struct {
	Name         string
	PublicKey    []byte
	Acknowledged time.Time
	AckSignature []byte
}

// Kind returns KindAddCustodian.
func (AddCustodian) Kind() Kind { return KindAddCustodian }

// Validate checks the name and key, and verifies the acknowledgement.
func (p AddCustodian) Validate() error { return p.custodian().validate(true) }

// custodian returns the custodian the proposal registers (without a
// registration time).
func (p AddCustodian) custodian() Custodian {
	return Custodian{Name: p.Name, PublicKey: p.PublicKey, Acknowledged: p.Acknowledged, AckSignature: p.AckSignature}
}

func (p AddCustodian) encode(e *encoder) {
	e.str(p.Name)
	e.lp(p.PublicKey)
	e.time(p.Acknowledged)
	e.lp(p.AckSignature)
}

// RemoveCustodian unregisters custodian Name. Their approvals of pending
// proposals stop counting.
//
// Encoding: lp(name).
//
// A plain value, safe for concurrent reads.
type RemoveCustodian struct {
	Name string
}

// Kind returns KindRemoveCustodian.
func (RemoveCustodian) Kind() Kind { return KindRemoveCustodian }

// Validate checks the name.
func (p RemoveCustodian) Validate() error { return checkName("custodian name", p.Name) }

func (p RemoveCustodian) encode(e *encoder) { e.str(p.Name) }

// ChangeQuorum sets M, the number of distinct custodian approvals a
// ceremony needs.
//
// Encoding: u32(m).
//
// A plain value, safe for concurrent reads.
type ChangeQuorum struct {
	M uint32
}

// Kind returns KindChangeQuorum.
func (ChangeQuorum) Kind() Kind { return KindChangeQuorum }

// Validate checks MinQuorum <= M <= MaxCustodians.
func (p ChangeQuorum) Validate() error {
	if p.M < MinQuorum || p.M > MaxCustodians {
		return fmt.Errorf("%w: quorum must be %d to %d", ErrQuorum, MinQuorum, MaxCustodians)
	}
	return nil
}

func (p ChangeQuorum) encode(e *encoder) { e.u32(p.M) }

// RotateMasterKey replaces the master key by the one made from components
// whose KCVs are ComponentKCVs (in custodian order) and whose own KCV is
// MasterKCV, then rewraps every working key under it. The components were
// made beforehand from the HSM's RNG (`panvault mk components`); custodians
// approve the KCVs they were handed, never the component values.
//
// Encoding: kcv(3) u32(count) count*kcv(3).
//
// A plain value, safe for concurrent reads.
type RotateMasterKey struct {
	MasterKCV     keys.KCV
	ComponentKCVs []keys.KCV
}

// Kind returns KindRotateMasterKey.
func (RotateMasterKey) Kind() Kind { return KindRotateMasterKey }

// Validate checks keys.MinComponents <= len(ComponentKCVs) <=
// keys.MaxComponents and that no KCV repeats: a component given twice
// cancels itself in the XOR, and a master key equal to a component means
// the other components cancel out.
func (p RotateMasterKey) Validate() error {
	if n := len(p.ComponentKCVs); n < keys.MinComponents || n > keys.MaxComponents {
		return fmt.Errorf("%w: a master key needs %d to %d components", ErrInvalid, keys.MinComponents, keys.MaxComponents)
	}
	seen := make(map[keys.KCV]bool, len(p.ComponentKCVs))
	for i, k := range p.ComponentKCVs {
		if seen[k] {
			return fmt.Errorf("%w: component %d repeats kcv %s", ErrInvalid, i+1, k)
		}
		if k == p.MasterKCV {
			return fmt.Errorf("%w: component %d has the master key's kcv %s", ErrInvalid, i+1, k)
		}
		seen[k] = true
	}
	return nil
}

func (p RotateMasterKey) encode(e *encoder) {
	e.fixed(p.MasterKCV[:])
	e.u32(uint32(len(p.ComponentKCVs)))
	for _, k := range p.ComponentKCVs {
		e.fixed(k[:])
	}
}

// decodeParams reads the parameters of kind k from b, which must hold
// exactly them, and validates them.
func decodeParams(k Kind, b []byte) (Params, error) {
	d := &decoder{b: b}
	var p Params
	switch k {
	case KindCreateKey:
		name := d.str(MaxNameLen, "key name")
		t := keys.KeyType(d.u8("key type"))
		pur := Purpose(d.u8("purpose"))
		cp := time.Duration(d.i64("cryptoperiod"))
		p = CreateKey{Name: name, Type: t, Purpose: pur, Cryptoperiod: cp}
	case KindRotateKey:
		p = RotateKey{Name: d.str(MaxNameLen, "key name")}
	case KindSetMinDecryptionVersion:
		name := d.str(MaxNameLen, "key name")
		p = SetMinDecryptionVersion{Name: name, Version: d.u32("version")}
	case KindDestroyVersion:
		name := d.str(MaxNameLen, "key name")
		p = DestroyVersion{Name: name, Version: d.u32("version")}
	case KindChangeSchemeKey:
		s := d.str(MaxNameLen, "scheme name")
		p = ChangeSchemeKey{Scheme: s, Key: d.str(MaxNameLen, "key name")}
	case KindAddCustodian:
		name := d.str(MaxNameLen, "custodian name")
		pub := d.lp(maxPublicKeyLen, "public key")
		at := d.time("acknowledged")
		sig := d.lp(maxSignatureLen, "acknowledgement signature")
		p = AddCustodian{Name: name, PublicKey: pub, Acknowledged: at, AckSignature: sig}
	case KindRemoveCustodian:
		p = RemoveCustodian{Name: d.str(MaxNameLen, "custodian name")}
	case KindChangeQuorum:
		p = ChangeQuorum{M: d.u32("quorum")}
	case KindRotateMasterKey:
		var rm RotateMasterKey
		d.fixed(rm.MasterKCV[:], "master kcv")
		n := d.u32("component count")
		if d.err == nil && n > keys.MaxComponents {
			d.fail("more than %d components", keys.MaxComponents)
		}
		if d.err == nil {
			rm.ComponentKCVs = make([]keys.KCV, n)
			for i := range rm.ComponentKCVs {
				d.fixed(rm.ComponentKCVs[i][:], "component kcv")
			}
		}
		p = rm
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, k)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return p, nil
}
