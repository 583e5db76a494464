package vault

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Replicated buckets (raftstore). See docs/vault-design.md for what each
// holds and who writes it.
const (
	bucketSchemes = "schemes" // scheme name -> SchemeRecord
	bucketKeys    = "keys"    // key name -> KeyRecord
	bucketTokens  = "tokens"  // scheme \x00 token -> TokenRecord
	bucketFP      = "fp"      // scheme \x00 fingerprint key version (4 bytes BE) HMAC -> token
	bucketIdem    = "idem"    // SHA-256(identity, method, scheme, request id) -> IdemRecord
)

// recordFormat is the first byte of every stored value: the version of the
// record encoding. A reader refuses any other value rather than guess.
const recordFormat byte = 1

// encodeRecord returns recordFormat followed by m in deterministic encoding
// (so that CompareAndSet on a re-encoded record compares equal).
func encodeRecord(m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrCorruptRecord, err)
	}
	return append([]byte{recordFormat}, b...), nil
}

// decodeRecord parses a stored value into m.
func decodeRecord(b []byte, m proto.Message) error {
	if len(b) == 0 || b[0] != recordFormat {
		return fmt.Errorf("%w: unknown record format", ErrCorruptRecord)
	}
	if err := proto.Unmarshal(b[1:], m); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	return nil
}

func decodeScheme(b []byte) (*vaultpb.SchemeRecord, error) {
	r := &vaultpb.SchemeRecord{}
	return r, decodeRecord(b, r)
}

func decodeKey(b []byte) (*vaultpb.KeyRecord, error) {
	r := &vaultpb.KeyRecord{}
	return r, decodeRecord(b, r)
}

func decodeToken(b []byte) (*vaultpb.TokenRecord, error) {
	r := &vaultpb.TokenRecord{}
	return r, decodeRecord(b, r)
}

func decodeIdem(b []byte) (*vaultpb.IdemRecord, error) {
	r := &vaultpb.IdemRecord{}
	return r, decodeRecord(b, r)
}

// tokenKey is a token's key in bucketTokens. Scheme names never contain
// \x00, so the prefix is unambiguous.
func tokenKey(schemeName, token string) []byte {
	k := make([]byte, 0, len(schemeName)+1+len(token))
	k = append(k, schemeName...)
	k = append(k, 0)
	return append(k, token...)
}

// fingerprintKey is a fingerprint's key in bucketFP: the HMAC is prefixed
// with the fingerprint key version that made it, so a rotated fingerprint
// key starts a new index instead of mixing MACs.
func fingerprintKey(schemeName string, keyVersion uint32, mac []byte) []byte {
	k := make([]byte, 0, len(schemeName)+1+4+len(mac))
	k = append(k, schemeName...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, keyVersion)
	return append(k, mac...)
}

// idemKey scopes a request id by caller identity, method and scheme. It is a
// hash so that long identities cannot push it past raftstore.MaxKeySize;
// each part is length-prefixed so that no two scopes collide.
func idemKey(identity, method, schemeName, requestID string) []byte {
	h := sha256.New()
	for _, part := range []string{"panvault-idem-v1", identity, method, schemeName, requestID} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(part)))
		h.Write(l[:])
		h.Write([]byte(part))
	}
	return h.Sum(nil)
}

// panAAD is the associated data sealed with a PAN: it binds the ciphertext to
// its scheme, its token and the key version, so a record copied under
// another token or scheme, or relabelled with another version, fails to open.
func panAAD(schemeName, token string, keyVersion uint32) []byte {
	const label = "panvault/pan/v1"
	a := make([]byte, 0, len(label)+1+len(schemeName)+1+len(token)+1+4)
	a = append(a, label...)
	a = append(a, 0)
	a = append(a, schemeName...)
	a = append(a, 0)
	a = append(a, token...)
	a = append(a, 0)
	return binary.BigEndian.AppendUint32(a, keyVersion)
}

// appendFingerprintMsg appends what the fingerprint HMAC covers (scheme
// and PAN digits) to dst.
func appendFingerprintMsg(dst []byte, schemeName string, pan card.PAN) []byte {
	const label = "panvault/fp/v1"
	dst = append(dst, label...)
	dst = append(dst, 0)
	dst = append(dst, schemeName...)
	dst = append(dst, 0)
	return pan.AppendDigits(dst)
}

// fingerprint returns pan's key in bucketFP for scheme sc under the
// fingerprint key version ref (HMAC in the HSM over appendFingerprintMsg).
// The message, PAN digits included, is built in *scratch, which callers
// reuse across items; it is cleared before fingerprint returns, so no copy
// of the digits is left to the collector.
func (n *Node) fingerprint(ctx context.Context, ref keys.KeyRef, sc string, pan card.PAN, scratch *[]byte) ([]byte, error) {
	msg := appendFingerprintMsg((*scratch)[:0], sc, pan)
	*scratch = msg
	mac, err := n.hsm.HMAC(ctx, ref, msg)
	clear(msg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	return fingerprintKey(sc, ref.Version, mac), nil
}
