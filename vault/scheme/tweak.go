package scheme

import (
	"crypto/sha256"
	"encoding/binary"
)

// FF1 tweak layout (version 1), fixed length per scheme, at most 19 bytes:
//
//	[0:8]   scheme id: SHA-256("panvault/ff1-tweak/v1" 0x00 name 0x00
//	        keep_leading keep_trailing luhn_rule)[:8]
//	[8:12]  key version, big-endian uint32
//	[12]    PAN length
//	[13:]   kept digits (leading then trailing) packed two per byte
//	        (BCD, high nibble first; the count is always even with the
//	        allowed shapes, an odd count would end with nibble 0xF)
//
// The scheme is bound through a 64-bit digest of its canonical identity rather
// than the raw name so that the tweak stays at most 19 bytes whatever the
// name's length: with FF1's Q = T || pad || i || NUM(B), a tweak of 19 bytes
// adds at most one tweak-only block, computed once per batch (see package
// keys/fpe), so every scheme costs the same number of AES (HSM) calls. A
// different scheme with a colliding id would need a 2^64 second-preimage
// search, and would also need the same key to matter.
const tweakVersion = "panvault/ff1-tweak/v1"

// schemeIDLen and the fixed part of the tweak.
const (
	schemeIDLen    = 8
	tweakFixedLen  = schemeIDLen + 4 + 1
	maxTweakLength = tweakFixedLen + (8+4+1)/2
)

// schemeID is the first 8 bytes of the digest of the scheme's identity.
func schemeID(d Definition) [schemeIDLen]byte {
	h := sha256.New()
	h.Write([]byte(tweakVersion))
	h.Write([]byte{0})
	h.Write([]byte(d.Name))
	h.Write([]byte{0, byte(d.KeepLeading), byte(d.KeepTrailing), byte(d.Luhn)})
	var id [schemeIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// tweakLen returns the tweak length of a layout.
func tweakLen(l *layout) int { return tweakFixedLen + (l.lead+l.trail+1)/2 }

// appendTweak appends the tweak for the digits in t (ASCII, len l.n, only the
// kept positions are read) to dst. prefix is schemeID || key version.
func appendTweak(dst []byte, prefix *[schemeIDLen + 4]byte, l *layout, t []byte) []byte {
	dst = append(dst, prefix[:]...)
	dst = append(dst, byte(l.n))
	var nib byte
	half := false
	put := func(d byte) {
		if half {
			dst = append(dst, nib<<4|d)
		} else {
			nib = d
		}
		half = !half
	}
	for i := 0; i < l.lead; i++ {
		put(t[i] - '0')
	}
	for i := l.freeEnd; i < l.n; i++ {
		put(t[i] - '0')
	}
	if half {
		put(0xF)
	}
	return dst
}

// tweakPrefix is schemeID || big-endian key version.
func tweakPrefix(d Definition, keyVersion uint32) (p [schemeIDLen + 4]byte) {
	id := schemeID(d)
	copy(p[:], id[:])
	binary.BigEndian.PutUint32(p[schemeIDLen:], keyVersion)
	return p
}
