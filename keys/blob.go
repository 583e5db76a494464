package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"fmt"
)

// Wrapped-key blob, format version 1. All integers big-endian.
//
//	magic     4  "PVWK"
//	format    1  = 1
//	type      1  KeyType
//	idLen     2  1..64, then id bytes
//	version   4  >= 1
//	mkKCV     3  KCV of the master key it is wrapped under
//	pubLen    2  0 for secret keys, else PKIX DER public key
//	wrapLen   2  16..blobMaxWrapped, multiple of 8, then the RFC 5649 ciphertext
//	tag      16  AES-CMAC under the master key of every byte before it
//
// The RFC 5649 unwrap authenticates the key material; the tag binds the
// header (id, version, type, public key, master-key KCV) to it, so a blob
// cannot be relabelled as another key or version. Parse checks structure
// only; LoadWrapped checks the tag, unwraps, and checks the result against
// the header.
const (
	blobMagic        = "PVWK"
	blobFormat       = 1
	blobTagLen       = 16
	blobMaxPublic    = 1024
	blobMaxWrapped   = 4096
	blobMinWrapped   = 16
	blobFixedHeader  = 4 + 1 + 1 + 2
	blobMinTotalSize = blobFixedHeader + 1 + 4 + 3 + 2 + 2 + blobMinWrapped + blobTagLen
)

// WrappedKey is a working key wrapped under the master key, plus the header
// that names it. It contains no key material in clear and may be stored and
// replicated freely. A WrappedKey is a plain value: not safe for concurrent
// mutation, safe for concurrent reads.
type WrappedKey struct {
	ID        string
	Version   uint32
	Type      KeyType
	MasterKCV KCV
	PublicKey []byte // PKIX DER, key pairs only
	Wrapped   []byte // RFC 5649 (CKM_AES_KEY_WRAP_PAD) ciphertext
	Tag       []byte // AES-CMAC under the master key over the marshalled bytes before it

	// CheckValue is the key's KCV (AES-CMAC of a zero block under the key
	// itself), set by GenerateKey for AES keys; nil otherwise and for a
	// parsed blob. It is not part of the blob: the loaded copy of a key may
	// only do its one operation, so the KCV can only be taken when the key
	// is made, and the caller keeps it with the key's other metadata.
	CheckValue *KCV
}

// Ref returns the key's id and version.
func (w *WrappedKey) Ref() KeyRef { return KeyRef{ID: w.ID, Version: w.Version} }

// authenticated returns the bytes the tag covers.
func (w *WrappedKey) authenticated() []byte {
	b := make([]byte, 0, blobMinTotalSize+len(w.ID)+len(w.PublicKey)+len(w.Wrapped))
	b = append(b, blobMagic...)
	b = append(b, blobFormat, byte(w.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(len(w.ID)))
	b = append(b, w.ID...)
	b = binary.BigEndian.AppendUint32(b, w.Version)
	b = append(b, w.MasterKCV[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w.PublicKey)))
	b = append(b, w.PublicKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w.Wrapped)))
	b = append(b, w.Wrapped...)
	return b
}

// Marshal encodes the blob. It fails only if the fields are invalid.
func (w *WrappedKey) Marshal() ([]byte, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	return append(w.authenticated(), w.Tag...), nil
}

func (w *WrappedKey) validate() error {
	if err := validKeyRef(w.Ref()); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedBlob, err)
	}
	if !w.Type.Valid() {
		return fmt.Errorf("%w: unknown key type %d", ErrMalformedBlob, w.Type)
	}
	if w.Type.IsPair() {
		if len(w.PublicKey) == 0 || len(w.PublicKey) > blobMaxPublic {
			return fmt.Errorf("%w: %s key needs a public key of 1..%d bytes", ErrMalformedBlob, w.Type, blobMaxPublic)
		}
		if _, err := parsePublic(w.Type, w.PublicKey); err != nil {
			return err
		}
	} else if len(w.PublicKey) != 0 {
		return fmt.Errorf("%w: %s key must not carry a public key", ErrMalformedBlob, w.Type)
	}
	if n := len(w.Wrapped); n < blobMinWrapped || n > blobMaxWrapped || n%8 != 0 {
		return fmt.Errorf("%w: wrapped key length %d (want %d..%d, multiple of 8)", ErrMalformedBlob, n, blobMinWrapped, blobMaxWrapped)
	}
	if !w.Type.IsPair() && len(w.Wrapped) != 40 {
		// 32 key bytes pad to 32, plus the 8-byte integrity block.
		return fmt.Errorf("%w: wrapped %s key must be 40 bytes, not %d", ErrMalformedBlob, w.Type, len(w.Wrapped))
	}
	if len(w.Tag) != blobTagLen {
		return fmt.Errorf("%w: tag must be %d bytes", ErrMalformedBlob, blobTagLen)
	}
	return nil
}

// ParseWrappedKey decodes and structurally validates a blob: magic, format
// version, lengths, key id, key type, and (for key pairs) that the public key
// parses and has the right algorithm and size. Trailing bytes are an error.
// Every error wraps ErrMalformedBlob.
func ParseWrappedKey(b []byte) (*WrappedKey, error) {
	r := reader{b: b}
	if !bytes.Equal(r.next(4), []byte(blobMagic)) {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformedBlob)
	}
	if f := r.u8(); f != blobFormat {
		if r.short {
			return nil, fmt.Errorf("%w: truncated", ErrMalformedBlob)
		}
		return nil, fmt.Errorf("%w: unsupported format version %d", ErrMalformedBlob, f)
	}
	w := &WrappedKey{Type: KeyType(r.u8())}
	w.ID = string(r.next(int(r.u16())))
	w.Version = r.u32()
	copy(w.MasterKCV[:], r.next(3))
	w.PublicKey = bytes.Clone(r.next(int(r.u16())))
	w.Wrapped = bytes.Clone(r.next(int(r.u16())))
	w.Tag = bytes.Clone(r.next(blobTagLen))
	if r.short {
		return nil, fmt.Errorf("%w: truncated", ErrMalformedBlob)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedBlob, len(r.b))
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// reader consumes a byte slice; once it runs short every read returns zeros
// and short stays set.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) next(n int) []byte {
	if r.short || n > len(r.b) {
		r.short = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8   { return r.next(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.next(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.next(4)) }

// parsePublic parses a PKIX DER public key and checks it fits the key type.
func parsePublic(t KeyType, der []byte) (any, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrMalformedBlob, err)
	}
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = t == KeyECDSAP256 && k.Curve == elliptic.P256() || t == KeyECDSAP384 && k.Curve == elliptic.P384()
	case *rsa.PublicKey:
		ok = t == KeyRSA3072PSS && k.N.BitLen() == 3072 && k.E >= 65537
	case ed25519.PublicKey:
		ok = t == KeyEd25519
	}
	if !ok {
		return nil, fmt.Errorf("%w: public key does not match key type %s", ErrMalformedBlob, t)
	}
	return pub, nil
}
